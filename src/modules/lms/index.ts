import multipart from '@fastify/multipart';
import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import { Course, Enrollment, Lesson, LessonAttachment, LessonProgress } from './entities.js';
import { lmsRoutes } from './routes.js';
import { moneySchema } from './schemas.js';
import { LmsService } from './service.js';

export type { CourseForSale, CourseSeller, LmsService, Money } from './service.js';
export { moneySchema };

/** Courses, their lessons, who is enrolled and how far they are (video builds on it). */
export const lmsModule = defineModule({
  name: 'lms',
  entities: [Course, Enrollment, Lesson, LessonProgress, LessonAttachment],
  tags: [{ name: 'courses', description: 'The course catalogue, lessons, enrollment and progress' }],
  create: ({ infra }: { infra: Infra }) => {
    const lms = new LmsService({ db: infra.db, clock: infra.clock, ids: infra.ids, events: infra.events, logger: infra.logger });
    return {
      service: lms,
      http: async (app) => {
        // uploads (thumbnails, attachments, videos): one file part each; sizes are limited per route
        await app.register(multipart, { limits: { files: 1, fields: 0, parts: 2 } });
        await app.register(lmsRoutes, { lms });
      },
    };
  },
});
