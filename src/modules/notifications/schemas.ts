import { z } from 'zod';
import { pageQuerySchema } from '../../shared/pagination.js';
import { ENGLISH_LEVELS } from '../users/index.js';
import { CHANNELS, NOTIFICATION_TYPES, PLATFORMS } from './entities.js';
import { isTimeZone, LOCKED_TYPES } from './preferences.js';

export const notificationSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(NOTIFICATION_TYPES),
    title: z.string(),
    body: z.string(),
    data: z.record(z.string(), z.string()).nullable().describe('Deep-link payload for the app (e.g. { screen, roomId })'),
    read: z.boolean(),
    readAt: z.date().nullable(),
    sentAt: z.date().nullable().describe('When a push or e-mail of it first went out'),
    createdAt: z.date(),
  })
  .meta({ id: 'Notification' });

export const notificationsQuerySchema = pageQuerySchema.extend({
  unread: z.stringbool().default(false).describe('Only unread notifications'),
});

export const notificationPageSchema = z.object({
  items: z.array(notificationSchema),
  nextCursor: z.string().nullable(),
  unreadCount: z.number().int().describe('Unread notifications in all, whatever the page'),
});

export const readAllSchema = z.object({ updated: z.number().int() });

export const deviceBodySchema = z.strictObject({
  deviceId: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .optional()
    .describe("Optional: the session's own device id (the one the app signed in with) is used; another is refused"),
  platform: z.enum(PLATFORMS),
  fcmToken: z.string().trim().min(20).max(4096).describe('The FCM registration token of the app on this device'),
});

export const deviceSchema = z
  .object({ deviceId: z.string(), platform: z.enum(PLATFORMS), createdAt: z.date(), updatedAt: z.date() })
  .meta({ id: 'PushDevice' });

export const deviceDeleteBodySchema = z.strictObject({ deviceId: z.string().trim().min(1).max(128) });

const switchesSchema = z.object(Object.fromEntries(CHANNELS.map((channel) => [channel, z.boolean()])) as Record<(typeof CHANNELS)[number], z.ZodBoolean>);
const switchesPatchSchema = z.strictObject(
  Object.fromEntries(CHANNELS.map((channel) => [channel, z.boolean().optional()])) as Record<(typeof CHANNELS)[number], z.ZodOptional<z.ZodBoolean>>,
);

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time as HH:MM (24 h)');

export const quietHoursSchema = z
  .strictObject({
    start: hhmm,
    end: hhmm,
    timeZone: z.string().max(64).refine(isTimeZone, 'an IANA time zone such as Europe/Berlin').describe('IANA time zone the times are in'),
  })
  .refine((quiet) => quiet.start !== quiet.end, { message: 'start and end must differ', path: ['end'] })
  .describe('Push waits from start until end (the window may cross midnight); in-app and e-mail are not delayed');

export const preferencesSchema = z
  .object({
    channels: z.object(
      Object.fromEntries(NOTIFICATION_TYPES.map((type) => [type, switchesSchema])) as Record<(typeof NOTIFICATION_TYPES)[number], typeof switchesSchema>,
    ),
    quietHours: quietHoursSchema.nullable(),
  })
  .meta({ id: 'NotificationPreferences' });

export const preferencesBodySchema = z
  .strictObject({
    channels: z
      .strictObject(
        Object.fromEntries(NOTIFICATION_TYPES.map((type) => [type, switchesPatchSchema.optional()])) as Record<
          (typeof NOTIFICATION_TYPES)[number],
          z.ZodOptional<typeof switchesPatchSchema>
        >,
      )
      .optional()
      .describe('Only the types and channels to change; the others keep their value'),
    quietHours: quietHoursSchema.nullable().optional().describe('null removes quiet hours; absent keeps them'),
  })
  .superRefine((body, ctx) => {
    for (const type of LOCKED_TYPES) {
      for (const [channel, on] of Object.entries(body.channels?.[type] ?? {})) {
        if (on === false) ctx.addIssue({ code: 'custom', path: ['channels', type, channel], message: `${type} notices cannot be turned off` });
      }
    }
  });

export const broadcastBodySchema = z
  .strictObject({
    title: z.string().trim().min(1).max(200),
    body: z.string().trim().min(1).max(2000),
    audience: z.enum(['all', 'level', 'userIds']).describe('Everyone, one English level (give level), or these users (give userIds)'),
    level: z.enum(ENGLISH_LEVELS).optional(),
    userIds: z.array(z.uuid()).min(1).max(10_000).optional(),
  })
  .superRefine((body, ctx) => {
    if (body.audience === 'level' && !body.level) ctx.addIssue({ code: 'custom', path: ['level'], message: 'required with audience level' });
    if (body.audience === 'userIds' && !body.userIds) ctx.addIssue({ code: 'custom', path: ['userIds'], message: 'required with audience userIds' });
  });

export const broadcastStartedSchema = z.object({
  broadcastId: z.uuid(),
  jobId: z.string().describe('Follow its progress at GET /admin/jobs/{jobId}'),
});

export const deliveryCountsSchema = z
  .object({
    push: z.object({ queued: z.number().int(), sent: z.number().int(), failed: z.number().int() }),
    email: z.object({ queued: z.number().int(), sent: z.number().int(), failed: z.number().int() }),
  })
  .describe('Deliveries by channel: queued (waiting, retrying or held for quiet hours), sent, failed');
