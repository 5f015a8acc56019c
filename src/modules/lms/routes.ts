import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageSchema } from '../../shared/pagination.js';
import { created, errorResponses, idParamsSchema, noContent, noContentSchema } from '../../shared/responses.js';
import { courseSchema, coursesQuerySchema, createCourseBodySchema, enrollmentSchema, updateCourseBodySchema } from './schemas.js';
import type { LmsService } from './service.js';

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
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'Enroll in a free course',
        description:
          'A free course enrolls at once (201; 200 when already enrolled). A paid course answers 402 `payment_required` with its price and the checkout to call (`POST /payments/create-checkout-session { courseId }`).',
        params: idParamsSchema,
        response: { 200: enrollmentSchema, 201: enrollmentSchema, ...errorResponses(400, 401, 402, 404) },
      },
    },
    async (request, reply) => {
      const { enrollment, created: isNew } = await lms.enrollFree(caller(request).userId, request.params.id);
      return isNew ? created(reply, enrollment) : enrollment;
    },
  );
};
