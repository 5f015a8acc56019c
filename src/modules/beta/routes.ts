import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { created, errorResponses } from '../../shared/responses.js';
import {
  betaCheckSchema,
  betaUserPageSchema,
  betaUsersQuerySchema,
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

export interface BetaRoutesOptions {
  beta: BetaService;
  /** BETA_CHECK_LIMIT: the public key checks per client IP. */
  limits: { check: { max: number; windowMs: number } };
}

export const betaRoutes: FastifyPluginAsyncZod<BetaRoutesOptions> = async (app, { beta, limits }) => {
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

  app.get(
    '/admin/beta/users',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Who signed up with which invite key, and when (latest first)',
        description: '`?email=` looks one account up; an address without a live account gives an empty page.',
        querystring: betaUsersQuerySchema,
        response: { 200: betaUserPageSchema, ...adminErrors },
      },
    },
    async (request) => beta.listUsers({ email: request.query.email }, request.query.limit, request.query.cursor),
  );

  // Public checks for a sign-up form. Keys are 40 random bits; the per-IP limit (counted in
  // Redis, so across instances, and refused rather than skipped when Redis cannot count) keeps
  // them from being enumerated or used as a load lever.
  const publicLimit = { rateLimit: { max: limits.check.max, timeWindow: limits.check.windowMs, skipOnError: false } };
  app.post(
    '/beta/check',
    {
      config: publicLimit,
      schema: {
        tags,
        summary: 'Whether an invite key can be used now',
        description: 'Answers only `valid`: not why a key is not (unknown, used, expired), nor whom it is for.',
        body: checkInviteKeyBodySchema,
        response: { 200: betaCheckSchema, ...errorResponses(400, 429, 503) },
      },
    },
    async (request) => ({ valid: (await beta.check(request.body.key)).valid }),
  );

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
