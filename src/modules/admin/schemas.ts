import { z } from 'zod';
import { deliveryCountsSchema } from '../notifications/index.js';
import { ROLES } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';

const flag = z.enum(['true', 'false']).transform((value) => value === 'true');
const role = z.enum(ROLES);

export const adminStatsSchema = z.object({
  users: z.object({ total: z.number().int(), newToday: z.number().int() }),
  onlineNow: z.number().int(),
  calls: z.object({ today: z.number().int(), practiceMinutesToday: z.number().int() }),
  pendingReports: z.number().int(),
  notifications: deliveryCountsSchema,
});

export const adminUserSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    role,
    username: z.string().nullable(),
    displayName: z.string().nullable(),
    isBanned: z.boolean(),
    banReason: z.string().nullable(),
    flaggedAt: z.date().nullable(),
    createdAt: z.date(),
    lastActiveAt: z.date().nullable(),
  })
  .meta({ id: 'AdminUser' });

export const adminUsersQuerySchema = pageQuerySchema.extend({
  search: z.string().trim().min(1).max(100).optional(),
  role: role.optional(),
  banned: flag.optional(),
  flagged: flag.optional(),
});

export const adminUserPageSchema = pageSchema(adminUserSchema).extend({ total: z.number().int() });

/** The nested objects are documented loosely (they are the other endpoints' shapes) and serialized whole. */
export const adminUserDetailSchema = z.object({
  user: z.looseObject({ id: z.uuid(), email: z.string() }).describe('As GET /users/me'),
  recentSessions: z.array(z.looseObject({ id: z.uuid() })).describe('As GET /sessions'),
  reportsMade: z.array(z.looseObject({ id: z.uuid() })).describe('Report'),
  reportsReceived: z.array(z.looseObject({ id: z.uuid() })).describe('Report'),
});

export const banBodySchema = z.strictObject({ reason: z.string().trim().min(3).max(500) });

export const reviewReportBodySchema = z.strictObject({
  status: z.enum(['reviewed', 'actioned', 'dismissed']),
  adminNote: z.string().trim().max(2000).optional(),
  ban: z.strictObject({ reason: z.string().trim().min(3).max(500) }).optional(),
});
