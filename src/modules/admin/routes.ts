import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import type { AdminService } from './service.js';

const errors = (...statuses: Array<400 | 401 | 403 | 404>) => Object.fromEntries(statuses.map((status) => [status, errorResponseSchema]));
const userParams = z.object({ id: z.uuid() });

export const adminRoutes: FastifyPluginAsyncZod<{ admin: AdminService }> = async (app, { admin }) => {
  const tags = ['admin'];
  const config = { auth: 'admin' } as const;
  const security = [{ bearer: [] }];

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
};
