import { z } from 'zod';
import { CURRENCIES } from '../../shared/money.js';
import { INT4_MAX } from '../../shared/http-schemas.js';
import { pageQuerySchema } from '../../shared/pagination.js';
import { COURSE_LEVELS, VIDEO_STATUSES } from './entities.js';

/** An amount of money: integer minor units (cents) of an ISO 4217 currency. */
export const moneySchema = z
  .object({
    amount: z.number().int().describe('Integer minor units (cents; whole units for zero-decimal currencies such as JPY)'),
    currency: z.string().describe('ISO 4217 code, lower case'),
  })
  .meta({ id: 'Money' });

export const moneyInputSchema = z.strictObject({
  amount: z.number().int().min(0).max(INT4_MAX),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, 'an ISO 4217 code such as usd')
    .refine((code) => CURRENCIES.has(code.toUpperCase()), 'not an ISO 4217 currency')
    .transform((code) => code.toLowerCase()),
});

export const courseSchema = z
  .object({
    id: z.uuid(),
    title: z.string(),
    description: z.string(),
    level: z.enum(COURSE_LEVELS),
    price: moneySchema,
    free: z.boolean(),
    published: z.boolean(),
    thumbnailUrl: z.string().nullable().describe('The 16:9 thumbnail (1280x720 WebP): a short-lived signed URL, or a CDN URL when STORAGE_PUBLIC_URL is set'),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'Course' });

const title = z.string().trim().min(1).max(200);
const description = z.string().trim().max(10_000);

export const createCourseBodySchema = z.strictObject({
  title,
  description: description.default(''),
  level: z.enum(COURSE_LEVELS),
  price: moneyInputSchema.describe('0 makes the course free: students enroll without paying'),
  published: z.boolean().default(false),
});

export const updateCourseBodySchema = z
  .strictObject({
    title: title.optional(),
    description: description.optional(),
    level: z.enum(COURSE_LEVELS).optional(),
    price: moneyInputSchema.optional(),
    published: z.boolean().optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), { message: 'send at least one field to change' });

export const coursesQuerySchema = pageQuerySchema.extend({ level: z.enum(COURSE_LEVELS).optional() });

export const courseCheckoutSchema = z
  .object({
    orderId: z.uuid().describe('The order to follow (GET /payments/orders/{id})'),
    url: z.url().describe("The provider's page where the buyer pays"),
    provider: z.string(),
  })
  .meta({ id: 'CourseCheckout' });

export const enrollmentSchema = z
  .object({
    courseId: z.uuid(),
    enrolledAt: z.date(),
    orderId: z.uuid().nullable().describe('The order that paid for it; null for a free course'),
  })
  .meta({ id: 'Enrollment' });

export const lessonSchema = z
  .object({
    id: z.uuid(),
    courseId: z.uuid(),
    title: z.string(),
    position: z.number().int().describe('1 for the first lesson'),
    durationSeconds: z.number().int(),
    freePreview: z.boolean().describe('Open to everyone, enrolled or not'),
    videoStatus: z
      .enum(VIDEO_STATUSES)
      .describe('none → uploaded → transcoding → ready (or failed); transcoding_unavailable: stored, but ffmpeg is not installed'),
    videoProgress: z.number().int().describe('Transcoding progress, 0-100'),
    thumbnailUrl: z.string().nullable().describe("The video's poster frame (16:9 WebP), once transcoded"),
    videoJobId: z.string().nullable().optional().describe('Admins only: the transcoding job, for GET /admin/jobs/:id'),
    videoError: z.string().nullable().optional().describe('Admins only: why the video failed'),
    content: z.string().nullable().describe('Null where the lesson is locked (not enrolled, not a free preview)'),
    locked: z.boolean(),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'Lesson' });

const lessonTitle = z.string().trim().min(1).max(200);
const lessonContent = z.string().max(100_000);
const durationSeconds = z
  .number()
  .int()
  .min(0)
  .max(24 * 3600);

export const createLessonBodySchema = z.strictObject({
  title: lessonTitle,
  content: lessonContent.default(''),
  durationSeconds: durationSeconds.default(0).describe('Set by the video once transcoded; bounds the watch time'),
  freePreview: z.boolean().default(false),
});

export const updateLessonBodySchema = z
  .strictObject({
    title: lessonTitle.optional(),
    content: lessonContent.optional(),
    durationSeconds: durationSeconds.optional(),
    freePreview: z.boolean().optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), { message: 'send at least one field to change' });

export const reorderLessonsBodySchema = z.strictObject({
  lessonIds: z.array(z.uuid()).min(1).max(1000).describe('Every lesson of the course, once, in the new order'),
});

export const watchBodySchema = z.strictObject({
  watchSeconds: z
    .number()
    .int()
    .min(0)
    .max(24 * 3600),
});

export const watchSchema = z.object({ lessonId: z.uuid(), watchSeconds: z.number().int(), completed: z.boolean() }).meta({ id: 'LessonWatch' });

export const courseProgressSchema = z
  .object({
    courseId: z.uuid(),
    percent: z.number().int().describe('Completed lessons out of all, 0-100'),
    lessons: z.number().int(),
    completedLessonIds: z.array(z.uuid()),
    nextLesson: z.object({ id: z.uuid(), title: z.string(), position: z.number().int() }).nullable().describe('The first lesson not completed'),
    totalWatchSeconds: z.number().int(),
  })
  .meta({ id: 'CourseProgress' });

export const myCoursesSchema = z.object({
  items: z.array(z.object({ course: courseSchema, enrolledAt: z.date(), progress: courseProgressSchema })),
  nextCursor: z.null(),
});

export const courseIdParamsSchema = z.object({ courseId: z.uuid() });

export const videoUploadSchema = z
  .object({
    lessonId: z.uuid(),
    videoStatus: z.enum(VIDEO_STATUSES),
    jobId: z.string().nullable().describe('The transcoding job (GET /admin/jobs/:id); null when ffmpeg is not installed'),
    sizeBytes: z.number().int(),
  })
  .meta({ id: 'VideoUpload' });

export const videoUrlSchema = z
  .object({
    url: z.url().describe('The master playlist (HLS, application/vnd.apple.mpegurl): give it to the player as is'),
    expiresAt: z.date().describe('The playlists and segments it leads to load until then, for whoever holds the URL'),
  })
  .meta({ id: 'VideoUrl' });

/** A playback path: the lesson and its signed token. */
export const mediaParamsSchema = z.object({ lessonId: z.uuid(), token: z.string().max(200) });
export const variantParamsSchema = mediaParamsSchema.extend({ rendition: z.string().max(8) });

export const playlistResponse = {
  description: 'An HLS playlist',
  content: { 'application/vnd.apple.mpegurl': { schema: z.string() } },
};
