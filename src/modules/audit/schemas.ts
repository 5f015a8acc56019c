import { z } from 'zod';
import { isoDateTime } from '../../shared/http-schemas.js';
import { pageQuerySchema } from '../../shared/pagination.js';
import { ACTIVITY_TYPES, SECURITY_ACTIVITY_TYPES } from './service.js';

export const activitySchema = z
  .object({
    id: z.uuid(),
    type: z.enum(ACTIVITY_TYPES),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    createdAt: z.date(),
  })
  .meta({ id: 'Activity' });

/** An entry of the whole log, as admins see it: whose it is and who acted. */
export const adminActivitySchema = activitySchema.extend({ userId: z.uuid().nullable(), actorId: z.uuid().nullable() });

export const activityQuerySchema = pageQuerySchema.extend({
  userId: z.uuid().optional(),
  type: z.enum(ACTIVITY_TYPES).optional(),
  category: z
    .enum(['security'])
    .optional()
    .describe(
      `A group of types; with type, both must match. security: ${SECURITY_ACTIVITY_TYPES.join(', ')} (refused and suspicious traffic, each with the IP and the reason in metadata; at most one entry per IP and type a minute)`,
    ),
  from: isoDateTime.optional().describe('Oldest entry, ISO 8601 date-time (inclusive)'),
  to: isoDateTime.optional().describe('Newest entry, ISO 8601 date-time (exclusive)'),
});
