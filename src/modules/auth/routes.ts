import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { caller } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import type { UsersService } from '../users/service.js';
import { PLATFORMS } from './entities.js';
import type { AuthService, RequestMeta } from './service.js';
import type { TokenService } from './tokens.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  tokens: TokenService;
  users: UsersService;
  limits: { login: RateLimit; register: RateLimit; forgotPassword: RateLimit; refresh: RateLimit };
}

interface RateLimit {
  max: number;
  windowMs: number;
}

const email = z.email().max(254).trim().toLowerCase();
// Every character counts (the hasher pre-hashes before bcrypt); the cap only bounds the work.
const password = z.string().min(8, 'at least 8 characters').max(1024, 'at most 1024 characters');
const device = {
  deviceId: z.string().trim().min(1).max(128).describe('Stable id of the installation; a new sign-in on the same device replaces its session'),
  platform: z.enum(PLATFORMS),
};
const opaque = z.string().min(20).max(200);

const tokenPairSchema = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().describe('Access-token lifetime in seconds'),
    user: z.object({ id: z.uuid(), email: z.string(), role: z.enum(['student', 'admin']) }),
  })
  .meta({ id: 'TokenPair' });

const sessionSchema = z
  .object({
    id: z.uuid(),
    deviceId: z.string(),
    platform: z.enum(PLATFORMS),
    userAgent: z.string().nullable(),
    ip: z.string().nullable(),
    createdAt: z.date(),
    lastUsedAt: z.date(),
    current: z.boolean().describe('The session of the access token making this request'),
  })
  .meta({ id: 'DeviceSession' });

const meSchema = z.object({ id: z.uuid(), email: z.string(), role: z.enum(['student', 'admin']), isVerified: z.boolean(), createdAt: z.date() });

const errors = (...statuses: Array<400 | 401 | 403 | 404 | 409 | 429 | 503>) => Object.fromEntries(statuses.map((status) => [status, errorResponseSchema]));

function meta(request: FastifyRequest): RequestMeta {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null };
}

/** A per-IP limit that protects accounts: when Redis cannot count, it answers 503 rather than let requests through. */
function limit({ max, windowMs }: RateLimit) {
  return { rateLimit: { max, timeWindow: windowMs, skipOnError: false } };
}

export const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (app, { auth, tokens, users, limits }) => {
  const tags = ['auth'];
  const signedIn = { auth: 'user' } as const;
  const security = [{ bearer: [] }];

  app.post(
    '/auth/register',
    {
      config: limit(limits.register),
      schema: {
        tags,
        summary: 'Create an account and sign this device in',
        description: 'With BETA_MODE=on an unused invite key is required. A confirmation e-mail is sent.',
        body: z.strictObject({ email, password, ...device, inviteKey: z.string().trim().min(6).max(32).optional() }),
        response: { 201: tokenPairSchema, ...errors(400, 403, 409, 429, 503) },
      },
    },
    async (request, reply) => reply.status(201).send(await auth.register(request.body, meta(request))),
  );

  app.post(
    '/auth/login',
    {
      config: limit(limits.login),
      schema: {
        tags,
        summary: 'Sign in with e-mail and password',
        description: 'Wrong e-mail and wrong password give the same answer. Too many failures for one account answer 429 for a while, from any IP.',
        body: z.strictObject({ email, password: z.string().min(1).max(1024), ...device }),
        response: { 200: tokenPairSchema, ...errors(400, 401, 403, 429, 503) },
      },
    },
    async (request) => auth.login(request.body, meta(request)),
  );

  app.post(
    '/auth/refresh',
    {
      config: limit(limits.refresh),
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (the old one stops working)',
        description:
          'Presenting an already-rotated token again revokes its whole device session (token_reused), except the immediately previous token within a few seconds of its rotation, which gets the current pair again.',
        body: z.strictObject({ refreshToken: opaque }),
        response: { 200: tokenPairSchema, ...errors(400, 401, 403, 409, 429, 503) },
      },
    },
    async (request) => auth.refresh(request.body.refreshToken, meta(request)),
  );

  app.post(
    '/auth/logout',
    { config: signedIn, schema: { tags, summary: 'Sign this device out', security, response: { 204: z.null(), ...errors(401, 403, 503) } } },
    async (request, reply) => {
      await auth.logout(caller(request), meta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/auth/logout-all',
    { config: signedIn, schema: { tags, summary: 'Sign every device out', security, response: { 204: z.null(), ...errors(401, 403, 503) } } },
    async (request, reply) => {
      await auth.logoutAll(caller(request), meta(request));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    { config: signedIn, schema: { tags, summary: 'The signed-in account', security, response: { 200: meSchema, ...errors(401, 403) } } },
    async (request) => {
      const account = await users.findSummary(caller(request).userId);
      if (!account) throw new AppError('session_revoked', 'This account no longer exists');
      return { id: account.id, email: account.email, role: account.role, isVerified: account.isVerified, createdAt: account.createdAt };
    },
  );

  app.get(
    '/auth/sessions',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My signed-in devices, most recently used first',
        security,
        response: { 200: z.object({ items: z.array(sessionSchema), nextCursor: z.null() }), ...errors(401, 403) },
      },
    },
    async (request) => ({ items: await auth.listSessions(caller(request)), nextCursor: null }),
  );

  app.delete(
    '/auth/sessions/:id',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Sign one of my devices out',
        security,
        params: z.object({ id: z.uuid() }),
        response: { 204: z.null(), ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      await auth.revokeSession(caller(request), request.params.id, meta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/auth/forgot-password',
    {
      config: limit(limits.forgotPassword),
      schema: {
        tags,
        summary: 'E-mail a password-reset link (valid 1 hour, single use)',
        description:
          'Always answers 202 at once, whether or not the address has an account; the link is sent after the response. One account receives at most 3 links per hour, whatever the IPs asking.',
        body: z.strictObject({ email }),
        response: { 202: z.object({ accepted: z.literal(true) }), ...errors(400, 429, 503) },
      },
    },
    async (request, reply) => {
      await auth.requestPasswordReset(request.body.email, meta(request));
      return reply.status(202).send({ accepted: true as const });
    },
  );

  app.post(
    '/auth/reset-password',
    {
      config: limit(limits.forgotPassword),
      schema: {
        tags,
        summary: 'Set a new password with the e-mailed token; signs every device out',
        body: z.strictObject({ token: opaque, newPassword: password }),
        response: { 204: z.null(), ...errors(400, 429, 503) },
      },
    },
    async (request, reply) => {
      await auth.resetPassword(request.body.token, request.body.newPassword, meta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/auth/verify-email',
    {
      schema: {
        tags,
        summary: 'Confirm the e-mail address with the e-mailed token',
        body: z.strictObject({ token: opaque }),
        response: { 204: z.null(), ...errors(400) },
      },
    },
    async (request, reply) => {
      await auth.verifyEmail(request.body.token, meta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/auth/verify-email/resend',
    {
      config: { ...signedIn, ...limit(limits.forgotPassword) },
      schema: {
        tags,
        summary: 'Send the confirmation e-mail again',
        security,
        response: { 202: z.object({ accepted: z.literal(true) }), ...errors(401, 403, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      await auth.resendVerification(caller(request));
      return reply.status(202).send({ accepted: true as const });
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags,
        summary: 'Public keys that verify Parley access tokens (RS256), by kid',
        response: {
          200: z.object({ keys: z.array(z.object({ kty: z.string(), kid: z.string(), alg: z.string(), use: z.string(), n: z.string(), e: z.string() })) }),
        },
      },
    },
    async (_request, reply) => {
      const { keys } = await tokens.jwks();
      reply.header('cache-control', 'public, max-age=300');
      return {
        keys: keys.map((key) => ({
          kty: key.kty ?? 'RSA',
          kid: key.kid ?? '',
          alg: key.alg ?? 'RS256',
          use: key.use ?? 'sig',
          n: key.n ?? '',
          e: key.e ?? '',
        })),
      };
    },
  );
};
