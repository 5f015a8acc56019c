import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import type { BetaService } from './service.js';

const keySchema = z.string().trim().min(6).max(32).describe('An invite key such as PARLEY-AB3D-7KQ2 (case-insensitive)');

const inviteSchema = z
  .object({
    key: z.string(),
    status: z.enum(['unused', 'used', 'expired']),
    email: z.string().nullable(),
    expiresAt: z.date().nullable(),
    usedAt: z.date().nullable(),
    usedBy: z.uuid().nullable(),
    createdAt: z.date(),
  })
  .meta({ id: 'InviteKey' });

const createSchema = z.strictObject({
  email: z.email().optional().describe('Only this address may use the key'),
  expiresInDays: z.number().int().min(1).max(365).optional(),
});

const checkResultSchema = z.object({ valid: z.boolean(), reason: z.enum(['not_found', 'used', 'expired', 'email_mismatch']).optional() });

const adminErrors = { 400: errorResponseSchema, 401: errorResponseSchema, 403: errorResponseSchema };

export const betaRoutes: FastifyPluginAsyncZod<{ beta: BetaService }> = async (app, { beta }) => {
  const admin = { auth: 'admin' } as const;
  const tags = ['private beta'];

  app.post(
    '/admin/invite-keys',
    {
      config: admin,
      schema: { tags, summary: 'Create one invite key', security: [{ bearer: [] }], body: createSchema, response: { 201: inviteSchema, ...adminErrors } },
    },
    async (request, reply) => {
      const invites = await beta.create(caller(request).userId, { count: 1, ...request.body });
      return reply.status(201).send(invites[0]!);
    },
  );

  app.post(
    '/admin/invite-keys/bulk',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Create 1-100 invite keys at once',
        security: [{ bearer: [] }],
        body: createSchema.extend({ count: z.number().int().min(1).max(100) }),
        response: { 201: z.object({ items: z.array(inviteSchema) }), ...adminErrors },
      },
    },
    async (request, reply) => reply.status(201).send({ items: await beta.create(caller(request).userId, request.body) }),
  );

  app.get(
    '/admin/invite-keys',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Unused, unexpired invite keys (newest first)',
        security: [{ bearer: [] }],
        querystring: pageQuerySchema,
        response: { 200: pageSchema(inviteSchema), ...adminErrors },
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
        security: [{ bearer: [] }],
        params: z.object({ key: keySchema }),
        response: { 200: inviteSchema, 404: errorResponseSchema, ...adminErrors },
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
        body: z.strictObject({ key: keySchema }),
        response: { 200: checkResultSchema, 400: errorResponseSchema },
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
        body: z.strictObject({ key: keySchema, email: z.email() }),
        response: { 200: checkResultSchema, 400: errorResponseSchema },
      },
    },
    async (request) => beta.check(request.body.key, request.body.email),
  );
};
