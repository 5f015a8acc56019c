import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { created, errorResponses } from '../../shared/responses.js';
import {
  checkInviteKeyBodySchema,
  createInviteKeyBodySchema,
  createInviteKeysBodySchema,
  inviteKeyCheckSchema,
  inviteKeyListSchema,
  inviteKeyParamsSchema,
  inviteKeySchema,
  verifyInviteKeyBodySchema,
} from './schemas.js';
import type { BetaService } from './service.js';

export const betaRoutes: FastifyPluginAsyncZod<{ beta: BetaService }> = async (app, { beta }) => {
  const admin = { auth: 'admin' } as const;
  const tags = ['private beta'];
  const adminErrors = errorResponses(400, 401, 403);

  app.post(
    '/admin/invite-keys',
    {
      config: admin,
      schema: { tags, summary: 'Create one invite key', body: createInviteKeyBodySchema, response: { 201: inviteKeySchema, ...adminErrors } },
    },
    async (request, reply) => {
      const invites = await beta.create(caller(request).userId, { count: 1, ...request.body });
      return created(reply, invites[0]!);
    },
  );

  app.post(
    '/admin/invite-keys/bulk',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Create 1-100 invite keys at once',
        body: createInviteKeysBodySchema,
        response: { 201: inviteKeyListSchema, ...adminErrors },
      },
    },
    async (request, reply) => created(reply, { items: await beta.create(caller(request).userId, request.body) }),
  );

  app.get(
    '/admin/invite-keys',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Unused, unexpired invite keys (newest first)',
        querystring: pageQuerySchema,
        response: { 200: pageSchema(inviteKeySchema), ...adminErrors },
      },
    },
    async (request) => beta.listUnused(request.query.limit, request.query.cursor),
  );

  app.get(
    '/admin/invite-keys/:key',
    {
      config: admin,
      schema: {
        tags,
        summary: "An invite key's status",
        params: inviteKeyParamsSchema,
        response: { 200: inviteKeySchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => beta.status(request.params.key),
  );

  // Public checks for a sign-up form. Keys are 40 random bits, so guessing is hopeless; the
  // limit keeps the checks from being used as a load lever.
  const publicLimit = { rateLimit: { max: 30, timeWindow: 15 * 60_000 } };
  app.post(
    '/api/private-beta/check-validity',
    {
      config: publicLimit,
      schema: {
        tags,
        summary: 'Whether an invite key can be used',
        body: checkInviteKeyBodySchema,
        response: { 200: inviteKeyCheckSchema, ...errorResponses(400) },
      },
    },
    async (request) => beta.check(request.body.key),
  );

  app.post(
    '/api/private-beta/verify',
    {
      config: publicLimit,
      schema: {
        tags,
        summary: 'Whether an invite key can be used by this e-mail',
        body: verifyInviteKeyBodySchema,
        response: { 200: inviteKeyCheckSchema, ...errorResponses(400) },
      },
    },
    async (request) => beta.check(request.body.key, request.body.email),
  );
};
