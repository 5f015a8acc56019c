import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller, ROLES } from '../../shared/auth.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import type { Clock } from '../../infra/clock.js';
import { pageQuerySchema } from '../../shared/pagination.js';
import { reportSchema } from '../reports/index.js';
import type { AdminService } from './service.js';

const flag = z.enum(['true', 'false']).transform((value) => value === 'true');

const adminUserSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    role: z.enum(ROLES),
    username: z.string().nullable(),
    displayName: z.string().nullable(),
    isBanned: z.boolean(),
    banReason: z.string().nullable(),
    flaggedAt: z.date().nullable(),
    createdAt: z.date(),
    lastActiveAt: z.date().nullable(),
  })
  .meta({ id: 'AdminUser' });

const errors = (...statuses: Array<400 | 401 | 403 | 404>) => Object.fromEntries(statuses.map((status) => [status, errorResponseSchema]));
const userParams = z.object({ id: z.uuid() });

export const adminRoutes: FastifyPluginAsyncZod<{ admin: AdminService; clock: Clock }> = async (app, { admin, clock }) => {
  const tags = ['admin'];
  const config = { auth: 'admin' } as const;
  const security = [{ bearer: [] }];

  app.get(
    '/admin/stats',
    {
      config,
      schema: {
        tags,
        summary: 'Dashboard numbers (today = the UTC day; online across every instance)',
        security,
        response: {
          200: z.object({
            users: z.object({ total: z.number().int(), newToday: z.number().int() }),
            onlineNow: z.number().int(),
            calls: z.object({ today: z.number().int(), practiceMinutesToday: z.number().int() }),
            pendingReports: z.number().int(),
          }),
          ...errors(401, 403),
        },
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
        security,
        querystring: pageQuerySchema.extend({
          search: z.string().trim().min(1).max(100).optional(),
          role: z.enum(ROLES).optional(),
          banned: flag.optional(),
          flagged: flag.optional(),
        }),
        response: { 200: z.object({ items: z.array(adminUserSchema), nextCursor: z.string().nullable(), total: z.number().int() }), ...errors(400, 401, 403) },
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
        security,
        params: userParams,
        response: {
          200: z.object({
            user: z.looseObject({ id: z.uuid(), email: z.string() }).describe('As GET /users/me'),
            recentSessions: z.array(z.looseObject({ id: z.uuid() })).describe('As GET /sessions'),
            reportsMade: z.array(z.looseObject({ id: z.uuid() })).describe('Report'),
            reportsReceived: z.array(z.looseObject({ id: z.uuid() })).describe('Report'),
          }),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    // the nested objects are documented loosely (they are the other endpoints' shapes) and serialized whole
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
        security,
        params: userParams,
        body: z.strictObject({ reason: z.string().trim().min(3).max(500) }),
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await admin.ban(caller(request).userId, request.params.id, request.body.reason);
      return reply.status(204).send(null);
    },
  );

  app.patch(
    '/admin/users/:id/unban',
    { config, schema: { tags, summary: 'Lift a ban', security, params: userParams, response: { 204: z.null(), ...errors(400, 401, 403, 404) } } },
    async (request, reply) => {
      await admin.unban(caller(request).userId, request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.patch(
    '/admin/reports/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Decide on a report; optionally ban the reported user in the same step',
        security,
        params: z.object({ id: z.uuid() }),
        body: z.strictObject({
          status: z.enum(['reviewed', 'actioned', 'dismissed']),
          adminNote: z.string().trim().max(2000).optional(),
          ban: z.strictObject({ reason: z.string().trim().min(3).max(500) }).optional(),
        }),
        response: { 200: reportSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => admin.reviewReport(caller(request).userId, request.params.id, request.body),
  );
};
