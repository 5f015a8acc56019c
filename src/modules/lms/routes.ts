import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageSchema } from '../../shared/pagination.js';
import { created, errorResponses, idParamsSchema, noContent, noContentSchema } from '../../shared/responses.js';
import { z } from 'zod';
import {
  courseIdParamsSchema,
  courseProgressSchema,
  courseCheckoutSchema,
  courseSchema,
  coursesQuerySchema,
  createCourseBodySchema,
  createLessonBodySchema,
  enrollmentSchema,
  lessonSchema,
  myCoursesSchema,
  reorderLessonsBodySchema,
  updateCourseBodySchema,
  updateLessonBodySchema,
  watchBodySchema,
  watchSchema,
} from './schemas.js';
import type { LmsService, Viewer } from './service.js';

/** Who makes a request on an optionally signed-in route. */
export const viewer = (request: { auth: { userId: string; role: string } | null }): Viewer => ({
  userId: request.auth?.userId ?? null,
  admin: request.auth?.role === 'admin',
});

export const lmsRoutes: FastifyPluginAsyncZod<{ lms: LmsService }> = async (app, { lms }) => {
  const tags = ['courses'];
  const adminOnly = { auth: 'admin' } as const;
  const anyone = { auth: 'optional' } as const;

  app.post(
    '/courses',
    {
      config: { ...adminOnly, idempotent: true },
      schema: {
        tags,
        summary: 'Create a course (admin)',
        description: 'Unpublished unless `published` is true. A price of 0 makes it free.',
        body: createCourseBodySchema,
        response: { 201: courseSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => created(reply, await lms.createCourse(caller(request).userId, request.body)),
  );

  app.patch(
    '/courses/:id',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Change a course (admin)',
        params: idParamsSchema,
        body: updateCourseBodySchema,
        response: { 200: courseSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => lms.updateCourse(request.params.id, request.body),
  );

  app.delete(
    '/courses/:id',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Delete a course (admin)',
        description: 'Soft: the course leaves the catalogue and can no longer be bought; enrollments and orders keep it.',
        params: idParamsSchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await lms.deleteCourse(request.params.id);
      return noContent(reply);
    },
  );

  app.get(
    '/courses',
    {
      config: anyone,
      schema: {
        tags,
        summary: 'The course catalogue, newest first',
        description: 'Published courses; an admin also sees unpublished ones.',
        querystring: coursesQuerySchema,
        response: { 200: pageSchema(courseSchema), ...errorResponses(400, 401) },
      },
    },
    async (request) => lms.listCourses({ level: request.query.level, asAdmin: request.auth?.role === 'admin' }, request.query.limit, request.query.cursor),
  );

  app.get(
    '/courses/:id',
    {
      config: anyone,
      schema: {
        tags,
        summary: 'One course',
        description: 'A published course; an admin also sees an unpublished one.',
        params: idParamsSchema,
        response: { 200: courseSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => lms.getCourse(request.params.id, { asAdmin: request.auth?.role === 'admin' }),
  );

  app.post(
    '/courses/:id/enroll',
    {
      config: { auth: 'user', idempotent: true },
      schema: {
        tags,
        summary: 'Enroll in a course',
        description:
          'A free course enrolls at once (201; 200 when already enrolled). A paid course opens a checkout (202 `{ orderId, url, provider }`, as `POST /payments/create-checkout-session`): pay at `url`; the provider’s webhook then enrolls you. A pending checkout of the course is answered again.',
        params: idParamsSchema,
        response: { 200: enrollmentSchema, 201: enrollmentSchema, 202: courseCheckoutSchema, ...errorResponses(400, 401, 402, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { userId, email } = caller(request);
      const outcome = await lms.enroll({ userId, email }, request.params.id);
      if (outcome.kind === 'checkout') return reply.status(202).send(outcome.checkout);
      return outcome.created ? created(reply, outcome.enrollment) : outcome.enrollment;
    },
  );

  app.post(
    '/courses/:id/lessons',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Add a lesson at the end of a course (admin)',
        params: idParamsSchema,
        body: createLessonBodySchema,
        response: { 201: lessonSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => created(reply, await lms.createLesson(request.params.id, request.body)),
  );

  app.get(
    '/courses/:id/lessons',
    {
      config: anyone,
      schema: {
        tags,
        summary: 'The lessons of a course, in order',
        description: 'Everyone sees titles, durations and free previews; the content is for the enrolled (and admins), and in free previews.',
        params: idParamsSchema,
        response: { 200: z.object({ items: z.array(lessonSchema) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => ({ items: await lms.listLessons(request.params.id, viewer(request)) }),
  );

  app.patch(
    '/courses/:id/lessons/order',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Reorder the lessons of a course (admin)',
        description: 'All lessons of the course, once each, in their new order; applied in one transaction.',
        params: idParamsSchema,
        body: reorderLessonsBodySchema,
        response: { 200: z.object({ items: z.array(lessonSchema) }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({ items: await lms.reorderLessons(request.params.id, request.body.lessonIds) }),
  );

  app.patch(
    '/lessons/:id',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Change a lesson (admin)',
        params: idParamsSchema,
        body: updateLessonBodySchema,
        response: { 200: lessonSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => lms.updateLesson(request.params.id, request.body),
  );

  app.delete(
    '/lessons/:id',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Delete a lesson (admin)',
        description: 'The lessons after it move up one place; the progress recorded in it goes with it.',
        params: idParamsSchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await lms.deleteLesson(request.params.id);
      return noContent(reply);
    },
  );

  app.post(
    '/lessons/:id/progress',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'Record how far the player got in a lesson',
        description:
          'Watch time only grows (a smaller or repeated report changes nothing) and never passes the lesson’s duration. Cheap: meant to be called every 10 s.',
        params: idParamsSchema,
        body: watchBodySchema,
        response: { 200: watchSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => lms.recordWatch(caller(request).userId, request.params.id, request.body.watchSeconds),
  );

  app.post(
    '/lessons/:id/complete',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'Mark a lesson completed',
        description: 'Answers the course progress; completing the last lesson sends an `achievement` notification (once).',
        params: idParamsSchema,
        response: { 200: courseProgressSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => lms.completeLesson(caller(request).userId, request.params.id),
  );

  app.get(
    '/my/courses',
    {
      config: { auth: 'user' },
      schema: { tags, summary: 'The courses I am enrolled in, with my progress', response: { 200: myCoursesSchema, ...errorResponses(401) } },
    },
    async (request) => lms.myCourses(caller(request).userId),
  );

  app.get(
    '/my/progress/:courseId',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'My progress in a course',
        params: courseIdParamsSchema,
        response: { 200: courseProgressSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => lms.myProgress(caller(request).userId, request.params.courseId),
  );
};
