import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { errorResponses } from '../../shared/responses.js';
import { activityQuerySchema, activitySchema, adminActivitySchema } from './schemas.js';
import type { AuditService } from './service.js';

export const auditRoutes: FastifyPluginAsyncZod<{ audit: AuditService }> = async (app, { audit }) => {
  app.get(
    '/users/me/activity',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['account'],
        summary: 'My account activity: sign-ins, failed attempts, password changes (newest first)',
        querystring: pageQuerySchema,
        response: { 200: pageSchema(activitySchema), ...errorResponses(400, 401) },
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
        summary: 'The activity log, newest first, by user, type, category (security events) and time range',
        querystring: activityQuerySchema,
        response: { 200: pageSchema(adminActivitySchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return audit.list(filter, limit, cursor);
    },
  );
};
