import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import type { Clock } from '../../infra/clock.js';
import { errorResponses, idParamsSchema, noContent, noContentSchema } from '../../shared/responses.js';
import { reportSchema } from '../reports/index.js';
import { adminStatsSchema, adminUserDetailSchema, adminUserPageSchema, adminUsersQuerySchema, banBodySchema, reviewReportBodySchema } from './schemas.js';
import type { AdminService } from './service.js';

export const adminRoutes: FastifyPluginAsyncZod<{ admin: AdminService; clock: Clock }> = async (app, { admin, clock }) => {
  const tags = ['admin'];
  const config = { auth: 'admin' } as const;

  app.get(
    '/admin/stats',
    {
      config,
      schema: {
        tags,
        summary: 'Dashboard numbers (today = the UTC day; online across every instance)',
        response: { 200: adminStatsSchema, ...errorResponses(401, 403) },
      },
    },
    async () => admin.stats(clock.now()),
  );

  app.get(
    '/admin/users',
    {
      config,
      schema: {
        tags,
        summary: 'Users, newest first: search by e-mail or username, filter by role, banned, flagged',
        querystring: adminUsersQuerySchema,
        response: { 200: adminUserPageSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return admin.searchUsers(filter, limit, cursor);
    },
  );

  app.get(
    '/admin/users/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One user: account and profile, recent calls, reports made and received',
        params: idParamsSchema,
        response: { 200: adminUserDetailSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    // serialized whole under the loose schema (see adminUserDetailSchema)
    async (request) =>
      (await admin.userDetail(request.params.id)) as unknown as {
        user: { id: string; email: string };
        recentSessions: [];
        reportsMade: [];
        reportsReceived: [];
      },
  );

  app.patch(
    '/admin/users/:id/ban',
    {
      config,
      schema: {
        tags,
        summary: 'Ban a user: signed out everywhere at once, sockets closed, any call ended',
        params: idParamsSchema,
        body: banBodySchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await admin.ban(caller(request).userId, request.params.id, request.body.reason);
      return noContent(reply);
    },
  );

  app.patch(
    '/admin/users/:id/unban',
    {
      config,
      schema: { tags, summary: 'Lift a ban', params: idParamsSchema, response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404) } },
    },
    async (request, reply) => {
      await admin.unban(caller(request).userId, request.params.id);
      return noContent(reply);
    },
  );

  app.patch(
    '/admin/reports/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Decide on a report; optionally ban the reported user in the same step',
        params: idParamsSchema,
        body: reviewReportBodySchema,
        response: { 200: reportSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => admin.reviewReport(caller(request).userId, request.params.id, request.body),
  );
};
