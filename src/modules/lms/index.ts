import multipart from '@fastify/multipart';
import type { Infra } from '../../infra/bundle.js';
import type { VideoTools } from '../../infra/video.js';
import { defineModule } from '../kit.js';
import { Course, Enrollment, Lesson, LessonAttachment, LessonProgress } from './entities.js';
import { lmsFileRoutes } from './file-routes.js';
import { LmsFilesService, type LmsFilesSettings } from './files.js';
import { lmsJobs } from './jobs.js';
import { lmsRoutes } from './routes.js';
import { moneySchema } from './schemas.js';
import { LmsService, type LmsSettings } from './service.js';
import { TRANSCODE_ATTEMPTS, VideoService } from './video.js';
import { videoRoutes } from './video-routes.js';

export type { CourseForSale, CourseSeller, LmsService, Money } from './service.js';
export type { LmsFilesService } from './files.js';
export type { VideoService } from './video.js';
export { moneySchema };

export interface LmsModuleSettings extends LmsSettings, LmsFilesSettings {
  thumbnailMaxBytes: number;
  attachmentMaxBytes: number;
  videoMaxBytes: number;
  videoUrlTtlSeconds: number;
  transcodeTimeoutMs: number;
  transcodeRetryDelayMs: number;
  appUrl: string;
  /** Signs video playback URLs. */
  videoUrlSecret: string;
}

/** The module's services: the catalogue and study (lms), its files, and lesson videos. */
export interface LmsModuleService {
  lms: LmsService;
  files: LmsFilesService;
  video: VideoService;
}

/** Courses, their lessons, files and videos, who is enrolled and how far they are. */
export const lmsModule = defineModule({
  name: 'lms',
  entities: [Course, Enrollment, Lesson, LessonProgress, LessonAttachment],
  tags: [{ name: 'courses', description: 'The course catalogue, lessons, videos and attachments, enrollment and progress' }],
  create: ({ infra, tools, settings }: { infra: Infra; tools: VideoTools; settings: LmsModuleSettings }) => {
    const { db, clock, ids, events, logger, storage, jobs } = infra;
    const lms = new LmsService({ db, clock, ids, events, logger, storage, jobs }, settings);
    const files = new LmsFilesService({ db, lms, storage, clock, ids, logger }, settings);
    const video = new VideoService(
      { db, storage, jobs, tools, lms, clock, ids, events, logger },
      { maxBytes: settings.videoMaxBytes, urlTtlSeconds: settings.videoUrlTtlSeconds, appUrl: settings.appUrl, secret: settings.videoUrlSecret },
    );
    const service: LmsModuleService = { lms, files, video };
    return {
      service,
      http: async (app) => {
        // uploads (thumbnails, attachments, videos): one file part each; sizes are limited per route
        await app.register(multipart, { limits: { files: 1, fields: 0, parts: 2 } });
        await app.register(lmsRoutes, { lms });
        await app.register(lmsFileRoutes, { files, thumbnailMaxBytes: settings.thumbnailMaxBytes, attachmentMaxBytes: settings.attachmentMaxBytes });
        await app.register(videoRoutes, { video, maxBytes: settings.videoMaxBytes });
      },
      jobs: lmsJobs(video, storage, {
        transcodeTimeoutMs: settings.transcodeTimeoutMs,
        retryDelayMs: settings.transcodeRetryDelayMs,
        attempts: TRANSCODE_ATTEMPTS,
      }),
    };
  },
});
