import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponseSchema, isoDateTime } from '../../shared/http-schemas.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { ACTIVITY_TYPES, type AuditService } from './service.js';

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

export const auditRoutes: FastifyPluginAsyncZod<{ audit: AuditService }> = async (app, { audit }) => {
  app.get(
    '/users/me/activity',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['account'],
        summary: 'My account activity: sign-ins, failed attempts, password changes (newest first)',
        security: [{ bearer: [] }],
        querystring: pageQuerySchema,
        response: { 200: pageSchema(activitySchema), 400: errorResponseSchema, 401: errorResponseSchema },
      },
    },
    async (request) => audit.listForUser(caller(request).userId, request.query.limit, request.query.cursor),
  );

  app.get(
    '/admin/activity',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'The activity log, newest first, by user, type and time range',
        security: [{ bearer: [] }],
        querystring: pageQuerySchema.extend({
          userId: z.uuid().optional(),
          type: z.enum(ACTIVITY_TYPES).optional(),
          from: isoDateTime.optional().describe('Oldest entry, ISO 8601 date-time (inclusive)'),
          to: isoDateTime.optional().describe('Newest entry, ISO 8601 date-time (exclusive)'),
        }),
        response: {
          200: pageSchema(activitySchema.extend({ userId: z.uuid().nullable(), actorId: z.uuid().nullable() })),
          400: errorResponseSchema,
          401: errorResponseSchema,
          403: errorResponseSchema,
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return audit.list(filter, limit, cursor);
    },
  );
};
