import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { REPLAYED_HEADER } from '../../http/idempotency/plugin.js';
import { caller } from '../../shared/auth.js';
import { accepted, acceptedSchema, created, errorResponses, idParamsSchema, noContent, noContentSchema } from '../../shared/responses.js';
import {
  accountSchema,
  deleteAccountBodySchema,
  deviceSessionListSchema,
  extendedSessionSchema,
  forgotPasswordBodySchema,
  jwksSchema,
  loginBodySchema,
  refreshBodySchema,
  registerBodySchema,
  resetPasswordBodySchema,
  sessionStatsSchema,
  signInHeadersSchema,
  tokenPairSchema,
  verifyEmailBodySchema,
} from './schemas.js';
import type { AuthService, RequestMeta, SignInResult, TokenPair } from './service.js';
import type { TokenService } from './tokens.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  tokens: TokenService;
  limits: { login: RateLimit; register: RateLimit; forgotPassword: RateLimit; refresh: RateLimit; github: RateLimit };
}

interface RateLimit {
  max: number;
  windowMs: number;
}

function meta(request: FastifyRequest): RequestMeta {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null };
}

/** The pair, marked when it repeats the answer to an earlier request with the same Idempotency-Key. */
function answer(reply: FastifyReply, { pair, replayed }: SignInResult): TokenPair {
  if (replayed) reply.header(REPLAYED_HEADER, 'true');
  return pair;
}

/** A per-IP limit that protects accounts: when Redis cannot count, it answers 503 rather than let requests through. */
function limit({ max, windowMs }: RateLimit) {
  return { rateLimit: { max, timeWindow: windowMs, skipOnError: false } };
}

export const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (app, { auth, tokens, limits }) => {
  const tags = ['auth'];
  const signedIn = { auth: 'user' } as const;

  app.post(
    '/auth/register',
    {
      config: limit(limits.register),
      schema: {
        tags,
        summary: 'Create an account and sign this device in',
        description: 'With BETA_MODE=on an unused invite key is required. A confirmation e-mail is sent.',
        body: registerBodySchema,
        response: { 201: tokenPairSchema, ...errorResponses(400, 403, 409, 429, 503) },
      },
    },
    async (request, reply) => created(reply, await auth.register(request.body, meta(request))),
  );

  app.post(
    '/auth/login',
    {
      config: limit(limits.login),
      schema: {
        tags,
        summary: 'Sign in with e-mail and password',
        description:
          'Wrong e-mail and wrong password give the same answer. Too many failures for one account answer 429 for a while, from any IP. With an Idempotency-Key, a retry gets the same session (409 conflict once that session is in use, signed out or expired).',
        headers: signInHeadersSchema,
        body: loginBodySchema,
        response: { 200: tokenPairSchema, ...errorResponses(400, 401, 403, 409, 422, 429, 503) },
      },
    },
    async (request, reply) => answer(reply, await auth.login(request.body, meta(request), request.headers['idempotency-key'])),
  );

  app.post(
    '/auth/refresh',
    {
      config: limit(limits.refresh),
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (the old one stops working)',
        description:
          'Presenting an already-rotated token again revokes its whole device session (token_reused), except the immediately previous token within a few seconds of its rotation, which gets the current pair again. With an Idempotency-Key, a retry with the same token gets the pair the first rotation issued for 24 h, while that pair is unused.',
        headers: signInHeadersSchema,
        body: refreshBodySchema,
        response: { 200: tokenPairSchema, ...errorResponses(400, 401, 403, 409, 422, 429, 503) },
      },
    },
    async (request, reply) => answer(reply, await auth.refresh(request.body.refreshToken, meta(request), request.headers['idempotency-key'])),
  );

  app.post(
    '/auth/logout',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Sign this device (or this browser) out',
        description:
          'With a bearer token, its device session ends. With the session cookie (and its X-CSRF-Token), the browser session ends and the cookie is cleared.',
        response: { 204: noContentSchema, ...errorResponses(401, 403, 503) },
      },
    },
    async (request, reply) => {
      await auth.logout(caller(request), meta(request));
      if (request.authenticatedBy === 'cookie') auth.cookies.clearCookie(reply);
      return noContent(reply);
    },
  );

  app.post(
    '/auth/logout-all',
    {
      config: signedIn,
      schema: { tags, summary: 'Sign every device and browser out', response: { 204: noContentSchema, ...errorResponses(401, 403, 503) } },
    },
    async (request, reply) => {
      await auth.logoutAll(caller(request), meta(request));
      if (request.authenticatedBy === 'cookie') auth.cookies.clearCookie(reply);
      return noContent(reply);
    },
  );

  app.get(
    '/auth/me',
    { config: signedIn, schema: { tags, summary: 'The signed-in account', response: { 200: accountSchema, ...errorResponses(401, 403) } } },
    async (request) => auth.account(caller(request).userId),
  );

  app.get(
    '/auth/sessions',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My signed-in devices, most recently used first',
        response: { 200: deviceSessionListSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => ({ items: await auth.listSessions(caller(request)), nextCursor: null }),
  );

  app.get(
    '/auth/sessions/stats',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My signed-in devices in numbers: by platform, latest activity, sign-ins of the last 30 days',
        response: { 200: sessionStatsSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => auth.sessionStats(caller(request)),
  );

  app.post(
    '/auth/sessions/:id/extend',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Keep one of my devices signed in longer',
        description:
          'Its expiry moves to JWT_REFRESH_EXPIRY from now, never past its absolute end (JWT_SESSION_MAX_LIFETIME after sign-in). 404 for a session that is not mine; 409 session_ended for a signed-out or expired one, session_not_extendable for a browser session (extended by its use).',
        params: idParamsSchema,
        response: { 200: extendedSessionSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => auth.extendSession(caller(request), request.params.id),
  );

  app.delete(
    '/auth/sessions/:id',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Sign one of my devices out',
        params: idParamsSchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      await auth.revokeSession(caller(request), request.params.id, meta(request));
      return noContent(reply);
    },
  );

  app.delete(
    '/users/me',
    {
      config: signedIn,
      schema: {
        tags: ['users'],
        summary: 'Delete my account',
        description: 'Signs every device out and clears personal fields; call history stays for partners. Confirm with the current password.',
        body: deleteAccountBodySchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      await auth.deleteAccount(caller(request), request.body?.password, meta(request));
      return noContent(reply);
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
        body: forgotPasswordBodySchema,
        response: { 202: acceptedSchema, ...errorResponses(400, 429, 503) },
      },
    },
    async (request, reply) => {
      await auth.requestPasswordReset(request.body.email, meta(request));
      return accepted(reply);
    },
  );

  app.post(
    '/auth/reset-password',
    {
      config: limit(limits.forgotPassword),
      schema: {
        tags,
        summary: 'Set a new password with the e-mailed token; signs every device out',
        body: resetPasswordBodySchema,
        response: { 204: noContentSchema, ...errorResponses(400, 429, 503) },
      },
    },
    async (request, reply) => {
      await auth.resetPassword(request.body.token, request.body.newPassword, meta(request));
      return noContent(reply);
    },
  );

  app.post(
    '/auth/verify-email',
    {
      schema: {
        tags,
        summary: 'Confirm the e-mail address with the e-mailed token',
        body: verifyEmailBodySchema,
        response: { 204: noContentSchema, ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      await auth.verifyEmail(request.body.token, meta(request));
      return noContent(reply);
    },
  );

  app.post(
    '/auth/verify-email/resend',
    {
      config: { ...signedIn, ...limit(limits.forgotPassword) },
      schema: {
        tags,
        summary: 'Send the confirmation e-mail again',
        response: { 202: acceptedSchema, ...errorResponses(401, 403, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      await auth.resendVerification(caller(request));
      return accepted(reply);
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags,
        summary: 'Public keys that verify Parley access tokens (RS256), by kid',
        response: {
          200: jwksSchema,
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
