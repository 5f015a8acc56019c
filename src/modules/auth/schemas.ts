import { z } from 'zod';
import { ROLES } from '../../shared/auth.js';
import { pageSchema } from '../../shared/pagination.js';
import { PLATFORMS } from './entities.js';

const email = z.email().max(254).trim().toLowerCase();
// Every character counts (the hasher pre-hashes before bcrypt); the cap only bounds the work.
const password = z.string().min(8, 'at least 8 characters').max(1024, 'at most 1024 characters');
const device = {
  deviceId: z.string().trim().min(1).max(128).describe('Stable id of the installation; a new sign-in on the same device replaces its session'),
  platform: z.enum(PLATFORMS),
};
const opaqueToken = z.string().min(20).max(200);
const role = z.enum(ROLES);

export const registerBodySchema = z.strictObject({ email, password, ...device, inviteKey: z.string().trim().min(6).max(32).optional() });
export const loginBodySchema = z.strictObject({ email, password: z.string().min(1).max(1024), ...device });
export const refreshBodySchema = z.strictObject({ refreshToken: opaqueToken });
export const forgotPasswordBodySchema = z.strictObject({ email });
export const resetPasswordBodySchema = z.strictObject({ token: opaqueToken, newPassword: password });
export const verifyEmailBodySchema = z.strictObject({ token: opaqueToken });

export const tokenPairSchema = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().describe('Access-token lifetime in seconds'),
    user: z.object({ id: z.uuid(), email: z.string(), role }),
  })
  .meta({ id: 'TokenPair' });

export const deviceSessionSchema = z
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

export const sessionStatsSchema = z
  .object({
    active: z.number().int().describe('Signed-in devices now (not signed out, not expired)'),
    byPlatform: z.object({ ios: z.number().int(), android: z.number().int(), web: z.number().int() }).describe('The active ones by platform'),
    lastActivityAt: z.date().nullable().describe('The latest use of any active session (updated at most once a minute per session)'),
    createdLast30Days: z.number().int().describe('Sign-ins of the last 30 days, ended sessions included while on record'),
  })
  .meta({ id: 'DeviceSessionStats' });

export const extendedSessionSchema = z
  .object({
    id: z.uuid(),
    expiresAt: z.date().describe('The session now ends unless used by then'),
    endsAt: z.date().describe('Its absolute end (JWT_SESSION_MAX_LIFETIME after sign-in): no extension goes past it'),
  })
  .meta({ id: 'ExtendedDeviceSession' });

/**
 * Login and refresh take an optional Idempotency-Key: a retry with the same key and the same
 * request gets the session the first attempt opened instead of another.
 */
export const signInHeadersSchema = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe(
      'A new UUID per sign-in, the same on its retries: a retry with the same request gets the same session and refresh token (with `Idempotent-Replayed: true`); the key with another request is 422 `idempotency_key_reused`, while the first runs 409 `idempotency_in_progress`. Kept 24 h.',
    ),
});

/** Every device session at once: one page, never a next one. */
export const deviceSessionListSchema = pageSchema(deviceSessionSchema).extend({ nextCursor: z.null() });

export const accountSchema = z.object({ id: z.uuid(), email: z.string(), role, isVerified: z.boolean(), createdAt: z.date() });

export const jwksSchema = z.object({
  keys: z.array(z.object({ kty: z.string(), kid: z.string(), alg: z.string(), use: z.string(), n: z.string(), e: z.string() })),
});

export const deleteAccountBodySchema = z.strictObject({ password: z.string().min(1).max(1024).optional() }).optional();

const externalToken = z
  .string()
  .min(16)
  .max(8192)
  .describe("A JWT from a trusted issuer (TRUSTED_ISSUERS): the front end's HS256 token, a Privy or Clerk token");

export const exchangeBodySchema = z.strictObject({ token: externalToken, ...device });
export const linkIdentityBodySchema = z.strictObject({
  token: externalToken,
  password: z.string().min(1).max(1024).optional().describe('The current password; not needed within 10 minutes of signing in'),
});

export const linkedIdentitySchema = z
  .object({
    issuer: z.string(),
    subject: z.string(),
    email: z.string().nullable().describe('The e-mail the issuer gave when the identity was linked'),
    linkedAt: z.date(),
  })
  .meta({ id: 'LinkedIdentity' });

export const providersSchema = z
  .object({
    password: z.boolean().describe('E-mail and password sign-in (POST /auth/login)'),
    github: z.boolean().describe('GitHub sign-in'),
    issuers: z
      .array(z.object({ issuer: z.string(), kind: z.enum(['hs256', 'jwks']) }))
      .describe('Issuers whose tokens POST /auth/exchange takes: an HS256 shared secret, or a provider publishing a JWKS'),
    singleUser: z.boolean().describe('Only one account (AUTHORIZED_USER_EMAIL) may sign in'),
  })
  .meta({ id: 'AuthProviders' });

const flag = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] });

export const githubLoginQuerySchema = z.object({
  redirect: flag.optional().describe('true: answer with a 302 to GitHub instead of { url, state }'),
  returnTo: z
    .string()
    .max(2048)
    .optional()
    .describe('Where the browser lands once signed in (an absolute URL on a FRONTEND_URL origin); default the first FRONTEND_URL'),
});

export const githubLinkBodySchema = z
  .strictObject({
    returnTo: z
      .string()
      .max(2048)
      .optional()
      .describe('Where the browser lands once linked (an absolute URL on a FRONTEND_URL origin); default the first FRONTEND_URL'),
    password: z.string().min(1).max(1024).optional().describe('The current password; not needed within 10 minutes of signing in'),
  })
  // a POST without a body (Fastify's null) is the same as {}
  .nullish();

export const githubLoginSchema = z
  .object({
    url: z.url().describe("GitHub's sign-in page: send the browser there (the Set-Cookie headers of this answer must reach the browser too)"),
    state: z.string().describe('The OAuth state, also bound to this browser by a short-lived signed cookie'),
  })
  .meta({ id: 'GitHubLogin' });

export const githubCallbackQuerySchema = z.object({
  code: z.string().max(512).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(256).optional().describe('Set by GitHub when the user declined (access_denied)'),
  error_description: z.string().max(1024).optional(),
  error_uri: z.string().max(2048).optional(),
});

export const browserUserSchema = z
  .object({
    user: accountSchema,
    csrfToken: z.string().describe('Send it as X-CSRF-Token on every POST, PUT, PATCH and DELETE signed in by the session cookie'),
  })
  .meta({ id: 'BrowserUser' });

export const redirectSchema = z.null().describe('A redirect: see Location');
