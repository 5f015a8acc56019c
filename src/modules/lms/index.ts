import multipart from '@fastify/multipart';
import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import { Course, Enrollment, Lesson, LessonAttachment, LessonProgress } from './entities.js';
import { lmsFileRoutes } from './file-routes.js';
import { LmsFilesService, type LmsFilesSettings } from './files.js';
import { lmsRoutes } from './routes.js';
import { moneySchema } from './schemas.js';
import { LmsService, type LmsSettings } from './service.js';

export type { CourseForSale, CourseSeller, LmsService, Money } from './service.js';
export { moneySchema };

export interface LmsModuleSettings extends LmsSettings, LmsFilesSettings {
  thumbnailMaxBytes: number;
  attachmentMaxBytes: number;
}

/** Courses, their lessons, who is enrolled and how far they are (video builds on it). */
export const lmsModule = defineModule({
  name: 'lms',
  entities: [Course, Enrollment, Lesson, LessonProgress, LessonAttachment],
  tags: [{ name: 'courses', description: 'The course catalogue, lessons, enrollment and progress' }],
  create: ({ infra, settings }: { infra: Infra; settings: LmsModuleSettings }) => {
    const lms = new LmsService(
      { db: infra.db, clock: infra.clock, ids: infra.ids, events: infra.events, logger: infra.logger, storage: infra.storage },
      settings,
    );
    const files = new LmsFilesService({ db: infra.db, lms, storage: infra.storage, clock: infra.clock, ids: infra.ids, logger: infra.logger }, settings);
    return {
      service: lms,
      http: async (app) => {
        // uploads (thumbnails, attachments, videos): one file part each; sizes are limited per route
        await app.register(multipart, { limits: { files: 1, fields: 0, parts: 2 } });
        await app.register(lmsRoutes, { lms });
        await app.register(lmsFileRoutes, { files, thumbnailMaxBytes: settings.thumbnailMaxBytes, attachmentMaxBytes: settings.attachmentMaxBytes });
      },
    };
  },
});
