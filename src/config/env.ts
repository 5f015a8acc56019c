import { parseEncryptionKey } from '../infra/secret-box.js';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseDurationMs } from './duration.js';

const port = z.coerce.number().int().min(1).max(65_535);
const flag = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] });
const duration = z.string().transform((text, ctx) => {
  const ms = parseDurationMs(text);
  if (ms === null || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 60s, 15m, 1h or 30d' });
    return z.NEVER;
  }
  return ms;
});

/**
 * Fastify's trustProxy: "true"/"false", a hop count, or a comma-separated list of proxy
 * addresses/CIDRs whose X-Forwarded-For Parley believes.
 */
const trustProxy = z.string().transform((text, ctx): boolean | number | string => {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^\d+$/.test(text)) return Number(text);
  // refused here, in one line, rather than by Fastify's proxy-addr with a stack at start-up
  const invalid = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => !isProxyEntry(entry));
  if (invalid.length) {
    ctx.addIssue({ code: 'custom', message: `not an IP address, CIDR or loopback/linklocal/uniquelocal: ${invalid.join(', ')}` });
    return z.NEVER;
  }
  return text;
});

/** An entry proxy-addr accepts: an IP, an IP/prefix, or one of its range names. */
function isProxyEntry(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (!version || rest.length) return false;
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}

/** "5/15m" as `{ max: 5, windowMs: 900000 }`, or null when it is not COUNT/WINDOW. */
function parseLimit(text: string): { max: number; windowMs: number } | null {
  const [count, window, ...rest] = text.trim().split('/');
  const max = Number(count);
  const windowMs = window ? parseDurationMs(window) : null;
  if (!Number.isInteger(max) || max < 1 || !windowMs || rest.length) return null;
  return { max, windowMs };
}

/** "5/15m": at most 5 requests per 15 minutes. */
const limit = z.string().transform((text, ctx) => {
  const parsed = parseLimit(text);
  if (!parsed) {
    ctx.addIssue({ code: 'custom', message: 'expected COUNT/WINDOW such as 5/15m' });
    return z.NEVER;
  }
  return parsed;
});

/** "60/1m,1000/1h": several limits on the same thing, each enforced. */
const limits = z.string().transform((text, ctx) => {
  const entries = text.split(',');
  const parsed = entries.map(parseLimit).filter((entry) => entry !== null);
  if (parsed.length !== entries.length) {
    ctx.addIssue({ code: 'custom', message: 'expected COUNT/WINDOW, several separated by commas, such as 60/1m,1000/1h' });
    return z.NEVER;
  }
  return parsed;
});

/** A 32-byte AES key, base64 or hex. */
const encryptionKey = z.string().transform((text, ctx) => {
  const key = parseEncryptionKey(text);
  if (!key) {
    ctx.addIssue({ code: 'custom', message: 'expected 32 bytes, base64 or hex (openssl rand -base64 32)' });
    return z.NEVER;
  }
  return key;
});

const origins = z.string().transform((text) =>
  text
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean),
);

/** Signature algorithms a JWKS issuer may pin: asymmetric only, so a public key can never serve as an HMAC secret. */
export const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const issuerFields = {
  issuer: z.string().trim().min(1).max(255),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  emailClaim: z.string().min(1).max(100).optional(),
};
const sharedSecretIssuer = z.strictObject({ ...issuerFields, secret: z.string().min(32, 'secret must be at least 32 characters') });
const jwksIssuer = z.strictObject({
  ...issuerFields,
  jwksUrl: z.url({ protocol: /^https?$/ }),
  algorithms: z.array(z.enum(JWKS_ALGORITHMS)).min(1).optional(),
});

/** One issuer whose tokens Parley trusts: an HS256 shared secret, or a provider's JWKS URL. */
export type TrustedIssuerSetting =
  | { kind: 'hs256'; issuer: string; audience: string | string[]; secret: string; emailClaim: string }
  | { kind: 'jwks'; issuer: string; audience: string | string[]; jwksUrl: string; algorithms: string[]; emailClaim: string };

/**
 * TRUSTED_ISSUERS: a JSON list of `{ issuer, audience, secret }` and `{ issuer, audience, jwksUrl,
 * algorithms? }`. A problem is reported by entry and field, never with the values (they hold secrets).
 */
const trustedIssuers = z.string().transform((text, ctx): TrustedIssuerSetting[] => {
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not JSON: expected a list such as [{"issuer":"…","audience":"…","jwksUrl":"https://…"}]' });
    return z.NEVER;
  }
  if (!Array.isArray(entries)) {
    ctx.addIssue({ code: 'custom', message: 'expected a JSON list of issuers' });
    return z.NEVER;
  }
  const issuers: TrustedIssuerSetting[] = [];
  entries.forEach((entry: unknown, index) => {
    const where = `entry ${index + 1}`;
    const shape = typeof entry === 'object' && entry !== null ? entry : {};
    if ('secret' in shape === 'jwksUrl' in shape) {
      ctx.addIssue({ code: 'custom', message: `${where} needs either "secret" (HS256) or "jwksUrl" (RS256, ES256...), one of the two` });
      return;
    }
    const parsed = 'secret' in shape ? sharedSecretIssuer.safeParse(entry) : jwksIssuer.safeParse(entry);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'entry'}: ${issue.message}`);
      ctx.addIssue({ code: 'custom', message: `${where}: ${problems.join(', ')}` });
      return;
    }
    const value = parsed.data;
    issuers.push(
      'secret' in value
        ? { kind: 'hs256', issuer: value.issuer, audience: value.audience, secret: value.secret, emailClaim: value.emailClaim ?? 'email' }
        : {
            kind: 'jwks',
            issuer: value.issuer,
            audience: value.audience,
            jwksUrl: value.jwksUrl,
            algorithms: value.algorithms ?? ['RS256'],
            emailClaim: value.emailClaim ?? 'email',
          },
    );
  });
  return issuers;
});

/**
 * Every setting Parley reads. Each entry documents itself (.describe) and the grouping in
 * ENV_GROUPS drives `.env.example`, so the schema stays the single source of truth.
 */
export const envSchema = z
  .object({
    NODE_ENV: z
      .enum(['development', 'test', 'production'])
      .default('development')
      .describe('development | test | production. Production refuses generated keys and missing secrets.'),
    HOST: z.string().min(1).default('0.0.0.0').describe('Interface the HTTP server binds to.'),
    PORT: port.default(5503).describe('HTTP and Socket.io port.'),
    APP_URL: z
      .url()
      .optional()
      .describe('Public base URL of this server, used in links it sends (e-mails, signed URLs). Unset: http://HOST:PORT (localhost for 0.0.0.0 and ::).'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
    TRUST_PROXY: trustProxy
      .prefault('false')
      .describe(
        'Behind Nginx or Cloudflare: the number of proxies in front (e.g. 1) or their IPs/CIDRs; the client IP for limits and logs then comes from X-Forwarded-For. true trusts any client to choose its IP and is refused in production.',
      ),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1_048_576).describe('Largest JSON body accepted, in bytes (larger gets 413).'),
    HTTP_REQUEST_TIMEOUT: duration
      .prefault('60s')
      .describe(
        'A request must arrive whole (headers and body) within this long, or it gets 408 and its connection is closed. Uploads too: raise it for large lesson videos.',
      ),
    HTTP_HEADERS_TIMEOUT: duration
      .prefault('10s')
      .describe("A request's headers must arrive within this long (at most HTTP_REQUEST_TIMEOUT), or it gets 408 and its connection is closed."),
    SHUTDOWN_TIMEOUT: duration
      .prefault('10s')
      .describe('On SIGTERM/SIGINT/SIGHUP, how long in-flight requests and running background jobs may take before they are cut (cut jobs run again later).'),
    DATA_DIR: z.string().min(1).default('.data').describe('Where the embedded defaults keep their data (PostgreSQL under postgres/).'),

    SESSION_SECRET: z
      .string()
      .min(32, 'must be at least 32 characters')
      .optional()
      .describe('Signs cookies and CSRF tokens. Required in production; a random one is made per start otherwise.'),
    FRONTEND_URL: origins.prefault('http://localhost:3000').describe('Comma-separated browser origins allowed by CORS.'),
    FRONTEND_RESET_PASSWORD_URL: z
      .url()
      .optional()
      .describe("Your front end's reset-password page: reset e-mails link there with ?token=. Unset: the page Parley serves at APP_URL/reset-password."),
    FRONTEND_VERIFY_EMAIL_URL: z
      .url()
      .optional()
      .describe(
        "Your front end's e-mail confirmation page: verification e-mails link there with ?token=. Unset: the page Parley serves at APP_URL/verify-email.",
      ),
    SECURITY_HEADERS_ENABLED: flag.prefault('true').describe('Send helmet security headers (CSP, HSTS, ...).'),
    HSTS_MAX_AGE: z.coerce.number().int().min(0).default(31_536_000).describe('Strict-Transport-Security max-age in seconds when security headers are on.'),
    FORCE_HTTPS: flag
      .optional()
      .describe(
        'on: behind TRUST_PROXY, a request the proxy got over plain HTTP (X-Forwarded-Proto: http) is redirected to https (GET, HEAD) or refused with 403 https_required; /health, /ready and /metrics still answer. Unset: on in production (when TRUST_PROXY is set), off elsewhere.',
      ),
    RATE_LIMIT_REQUESTS: z.coerce.number().int().min(1).default(300).describe('Default requests per client IP per window; routes may set their own.'),
    RATE_LIMIT_WINDOW: duration.prefault('60s').describe('Window of the default rate limit (e.g. 60s, 15m).'),
    METRICS_TOKEN: z
      .string()
      .min(16)
      .optional()
      .describe('GET /metrics requires "Authorization: Bearer <token>". Required in production; unset elsewhere, /metrics is open.'),

    DATABASE_URL: z.url().optional().describe('postgres://user:pass@host:5432/db. Unset: an embedded PostgreSQL is started under DATA_DIR on a free port.'),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10).describe('Connections in the PostgreSQL pool.'),
    DATABASE_MIGRATE_ON_START: flag
      .prefault('true')
      .describe('Run pending migrations at start (under an advisory lock, so several instances may start at once).'),

    REDIS_URL: z
      .url()
      .optional()
      .describe('redis://host:6379/0. Unset (and no REDIS_SOCKET_PATH): an in-process emulation (ioredis-mock), single instance only.'),
    REDIS_SOCKET_PATH: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Redis's unix socket (redis.conf unixsocket), instead of REDIS_URL. If the socket is missing, development runs on the in-process emulation with a warning and production refuses to start.",
      ),

    JOBS_BACKEND: z
      .enum(['postgres', 'redis'])
      .default('postgres')
      .describe('Where background jobs are queued: postgres (the schema "bullmq" of the app\'s database) or redis (REDIS_URL, required then).'),
    WORKERS: flag.prefault('on').describe('on: this process runs background jobs besides the API; off: API only (run `npm run worker` elsewhere).'),
    JOBS_DATABASE_POOL_SIZE: z.coerce
      .number()
      .int()
      .min(1)
      .max(100)
      .default(4)
      .describe(
        "Connections of the job queue's own PostgreSQL pool for enqueueing and bookkeeping; a process running workers adds one per job kind (each listens for new jobs on its own).",
      ),
    JOBS_PREFIX: z.string().min(1).default('parley:jobs').describe('Key prefix of the job queues with JOBS_BACKEND=redis.'),
    JOBS_STALLED_TIMEOUT: duration
      .prefault('30s')
      .describe('A running job whose process died (no lock renewal for this long) goes back to the queue and runs again.'),

    JWT_KEYS_DIR: z
      .string()
      .min(1)
      .default('keys')
      .describe('Folder of the RSA key pair (private.pem, public.pem, kid). Generated on first start in development.'),
    JWT_PRIVATE_KEY_PATH: z.string().min(1).optional().describe('Overrides JWT_KEYS_DIR/private.pem.'),
    JWT_PUBLIC_KEY_PATH: z.string().min(1).optional().describe('Overrides JWT_KEYS_DIR/public.pem.'),
    JWT_KEY_ID: z.string().min(1).optional().describe('Overrides the key id stored in JWT_KEYS_DIR/kid.'),
    JWT_ISSUER: z.string().min(1).default('parley').describe('iss of the access tokens Parley signs and accepts.'),
    JWT_AUDIENCE: z.string().min(1).default('parley-api').describe('aud of the access tokens Parley signs and accepts.'),
    JWT_ACCESS_EXPIRY: duration.prefault('15m').describe('Access-token lifetime.'),
    JWT_REFRESH_EXPIRY: duration.prefault('30d').describe('Refresh-token (device session) lifetime without use.'),
    JWT_SESSION_MAX_LIFETIME: duration
      .prefault('90d')
      .describe('Absolute lifetime of a device session from its sign-in, however often it is refreshed; then the user signs in again.'),
    COOKIE_SESSION_TTL: duration
      .prefault('7d')
      .describe('A browser session (the session_token cookie of GitHub sign-in) unused this long ends; each use extends it.'),
    COOKIE_SESSION_MAX_LIFETIME: duration
      .prefault('30d')
      .describe('Absolute lifetime of a browser session from its sign-in, however often it is used; then the user signs in again.'),
    REFRESH_REUSE_GRACE: duration
      .prefault('10s')
      .describe(
        'A refresh token presented again this soon after its rotation (two tabs, a retried request) gets the same new pair instead of revoking the session.',
      ),

    BCRYPT_COST: z.coerce.number().int().min(4).max(15).default(12).describe('bcrypt cost factor (12: about 4 hashes per second per core).'),
    BCRYPT_CONCURRENCY: z
      .union([z.literal('auto'), z.coerce.number().int().min(1).max(64)])
      .transform((value) => (value === 'auto' ? availableParallelism() : value))
      .prefault('auto')
      .describe('Password hashes computed at once, each in a low-priority worker thread (auto: one per core); the rest queue.'),
    AUTH_LOGIN_LIMIT: limit.prefault('5/15m').describe('Login attempts per client IP.'),
    AUTH_REGISTER_LIMIT: limit.prefault('10/1h').describe('Registrations per client IP.'),
    AUTH_FORGOT_PASSWORD_LIMIT: limit.prefault('3/1h').describe('Password-reset requests per client IP.'),
    AUTH_GITHUB_LIMIT: limit
      .prefault('30/15m')
      .describe('GitHub sign-ins per client IP: starts (GET /auth/login, POST /auth/github/link) and callbacks (GET /auth/callback), each counted apart.'),
    AUTH_ACCOUNT_FAILURE_LIMIT: limit
      .prefault('10/15m')
      .describe('Failed logins per account, from any IP, before the account answers 429 for the rest of the window.'),
    BETA_MODE: z.enum(['on', 'off']).default('off').describe('on: registering needs a valid invite key (private beta).'),
    BETA_CHECK_LIMIT: limit
      .prefault('10/15m')
      .describe('Invite-key checks (POST /beta/check and the /api/private-beta checks) per client IP, so keys cannot be enumerated.'),

    TRUSTED_ISSUERS: trustedIssuers
      .prefault('[]')
      .describe(
        'Issuers whose tokens POST /auth/exchange turns into a Parley session (and, with ACCEPT_EXTERNAL_TOKENS, the chat routes take directly), as a JSON list: {"issuer","audience","secret"} for an HS256 shared secret, or {"issuer","audience","jwksUrl","algorithms"?} for a provider publishing its keys (Privy: algorithms ["ES256"]; default ["RS256"], as Clerk). Optional "emailClaim" (default "email").',
      ),
    ORION_SHARED_JWT_SECRET: z
      .string()
      .min(32, 'must be at least 32 characters')
      .optional()
      .describe(
        'The Next.js front end of document 001: the HS256 secret it signs its tokens with, trusted as one more issuer (with ORION_SHARED_JWT_ISS and _AUD).',
      ),
    ORION_SHARED_JWT_ISS: z.string().trim().min(1).max(255).optional().describe("iss of the 001 front end's tokens (e.g. https://www.sidekickportal.com)."),
    ORION_SHARED_JWT_AUD: z.string().min(1).optional().describe("aud of the 001 front end's tokens (e.g. orion-core)."),
    ACCEPT_EXTERNAL_TOKENS: flag
      .prefault('off')
      .describe(
        "on: the AI chat routes (/api/sessions/*, /api/chat-stream) also take a trusted issuer's token directly as the bearer token, as the linked (or a new) account, so the 001 front end works unchanged.",
      ),
    AUTHORIZED_USER_EMAIL: z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.email())
      .optional()
      .describe('Single-user mode: only the account with this e-mail may sign in or use a token, by any route (others get 403 not_authorized_user).'),
    GITHUB_CLIENT_ID: z
      .string()
      .trim()
      .min(1)
      .optional()
      .describe('Client id of your GitHub OAuth app (Settings, Developer settings, OAuth Apps): turns on "Sign in with GitHub" (GET /auth/login).'),
    GITHUB_CLIENT_SECRET: z.string().min(1).optional().describe('Client secret of the GitHub OAuth app. Required with GITHUB_CLIENT_ID.'),
    GITHUB_CALLBACK_URL: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe("The OAuth app's authorization callback URL, this server's GET /auth/callback. Unset: APP_URL/auth/callback."),
    GITHUB_OAUTH_URL: z
      .url({ protocol: /^https?$/ })
      .default('https://github.com')
      .describe('Where the GitHub sign-in page and token endpoint live: your GitHub Enterprise Server, or a test server.'),
    GITHUB_API_URL: z
      .url({ protocol: /^https?$/ })
      .default('https://api.github.com')
      .describe("GitHub's REST API (/user, /user/emails): https://HOST/api/v3 on GitHub Enterprise Server."),
    GITHUB_TIMEOUT: duration
      .prefault('10s')
      .describe(
        'Each request to GitHub (the code exchange, /user, /user/emails) gives up after this long: the sign-in gets 503 identity_provider_unavailable.',
      ),
    EXTERNAL_TOKEN_LEEWAY: duration.prefault('30s').describe("Clock skew tolerated on an external token's exp, nbf and iat."),
    JWKS_TIMEOUT: duration
      .prefault('5s')
      .describe("Fetching an issuer's JWKS gives up after this long (a token it would verify then gets 503 identity_provider_unavailable)."),
    JWKS_CACHE_TTL: duration
      .prefault('10m')
      .describe("An issuer's keys are fetched again after this long (the old ones serve while the provider cannot be reached)."),
    JWKS_REFETCH_INTERVAL: duration
      .prefault('30s')
      .describe('A token signed by a key the cached JWKS lacks fetches it again, at most once per this interval per issuer (a failed fetch waits as long).'),

    STORAGE_BUCKET_NAME: z
      .string()
      .min(1)
      .optional()
      .describe('S3, R2 or MinIO bucket. Unset: files live under DATA_DIR/storage and the server serves them through signed URLs.'),
    STORAGE_ENDPOINT: z
      .url()
      .optional()
      .describe('S3-compatible endpoint (R2: https://<account>.r2.cloudflarestorage.com, MinIO: http://localhost:9000). Unset: AWS S3.'),
    STORAGE_REGION: z.string().min(1).default('auto').describe('Bucket region (R2: auto).'),
    STORAGE_ACCESS_KEY: z.string().min(1).optional().describe('Access key id for the bucket.'),
    STORAGE_SECRET_KEY: z.string().min(1).optional().describe('Secret access key for the bucket.'),
    STORAGE_PUBLIC_URL: z.url().optional().describe('Public (CDN) base URL of the bucket: public files (avatars) link there instead of to presigned URLs.'),
    STORAGE_URL_TTL: duration.prefault('1h').describe('Lifetime of the signed URLs handed to clients.'),
    AVATAR_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(5 * 1024 * 1024)
      .describe('Largest avatar upload, in bytes (larger gets 413).'),
    AVATAR_MAX_PIXELS: z.coerce
      .number()
      .int()
      .min(10_000)
      .default(40_000_000)
      .describe('Largest uploaded image (avatars, course thumbnails) in pixels (width x height); guards against decompression bombs.'),
    THUMBNAIL_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(10 * 1024 * 1024)
      .describe('Largest course thumbnail upload, in bytes (larger gets 413); stored as a 1280x720 WebP.'),
    ATTACHMENT_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .default(25 * 1024 * 1024)
      .describe('Largest lesson attachment (PDF) upload, in bytes (larger gets 413).'),
    LAST_ACTIVE_THROTTLE: duration.prefault('60s').describe("A user's last_active_at is written at most this often."),

    TURN_HOST: z
      .string()
      .min(1)
      .optional()
      .describe('Coturn host handed to clients in match_found (turn: and stun: URLs). Unset: no ICE servers (direct connections only).'),
    TURN_PORT: port.default(3478).describe('Coturn listening port.'),
    TURN_SECRET: z
      .string()
      .min(16)
      .optional()
      .describe('static-auth-secret of Coturn (use-auth-secret): signs the TURN REST credentials. Required with TURN_HOST in production.'),
    TURN_CREDENTIAL_TTL: duration.prefault('1h').describe('Lifetime of the TURN credentials in match_found.'),
    MATCH_SEARCH_TIMEOUT: duration.prefault('5m').describe('A search ends with search_timeout after this long without a match.'),
    MATCH_BACKGROUND_GRACE: z
      .string()
      .transform((text, ctx) => {
        const ms = parseDurationMs(text);
        if (ms === null) {
          ctx.addIssue({ code: 'custom', message: 'expected a duration such as 60s or 2m, or 0' });
          return z.NEVER;
        }
        return ms;
      })
      .prefault('2m')
      .describe(
        "A search goes on this long after the user's last socket closes (the app in the background); a match found meanwhile is pushed to the phone (match_found). 0: a search ends with its last socket.",
      ),
    MATCH_AI_FALLBACK_SECONDS: z
      .string()
      .transform((text, ctx) => {
        const trimmed = text.trim();
        if (trimmed === 'off') return 0;
        // as the name says, a bare number is seconds (a bare duration elsewhere is milliseconds)
        const ms = parseDurationMs(/^\d+$/.test(trimmed) ? `${trimmed}s` : trimmed);
        if (ms === null) {
          ctx.addIssue({ code: 'custom', message: 'expected seconds such as 30, a duration such as 45s or 2m, or off' });
          return z.NEVER;
        }
        return ms;
      })
      .prefault('30')
      .describe(
        'A search still waiting after this many seconds (or a duration such as 2m) gets `searching` again with aiPartnerAvailable: true, so the client can offer the AI partner; only when OLLAMA_BASE_URL is set. A job (once across all instances) looks every tenth of this, between every 250 ms and every 5 s. 0 or off: never.',
      ),
    MATCH_INSTANCE_TTL: duration
      .prefault('5s')
      .describe(
        'Each instance refreshes a heartbeat in Redis (every third of this); searchers of an instance whose heartbeat is this old (killed, frozen) are never matched.',
      ),
    CALL_RECONNECT_GRACE: duration.prefault('10s').describe('A call survives a network drop this long; the user rejoins the room with join_room.'),
    CALL_MAX_DURATION: duration
      .prefault('2h')
      .describe('A call still running after this long ends with ended_by timeout (peer_left reason "timeout" to both).'),
    CALL_SWEEP_INTERVAL: duration
      .prefault('1m')
      .describe('How often a job (once across all instances) looks for calls past CALL_MAX_DURATION, or whose room Redis no longer has, and ends them.'),
    REALTIME_ADAPTER: z
      .enum(['sharded', 'classic'])
      .default('sharded')
      .describe('Socket.io Redis adapter: sharded pub/sub (Redis 7+, one channel per user room) or classic (any Redis, every instance hears every broadcast).'),
    REALTIME_CHANNEL_PREFIX: z
      .string()
      .min(1)
      .max(64)
      .default('parley')
      .describe('Redis pub/sub channel prefix: instances sharing Redis and this prefix relay Socket.io events to each other.'),
    DEMO_ENABLED: flag.optional().describe('Serve the demo client at /demo (default: on outside production, off in production).'),
    SIGNAL_MAX_BYTES: z.coerce.number().int().min(1024).default(65_536).describe('Largest Socket.io message (SDP offers are a few KB).'),
    SOCKET_MAX_PER_USER: z.coerce
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('Sockets one account may hold open on one instance (tabs and devices); more are refused with too_many_sockets.'),
    SOCKET_MAX_PER_IP: z.coerce
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('Socket.io connections one client IP (as TRUST_PROXY reads it) may hold open on one instance; more are refused.'),
    SOCKET_EVENT_RATE: z.coerce
      .number()
      .positive()
      .default(20)
      .describe('Events per second each socket may send on average (token bucket); beyond it: error rate_limited, and a disconnect if it keeps on.'),
    SOCKET_EVENT_BURST: z.coerce
      .number()
      .int()
      .min(1)
      .default(60)
      .describe('Events a socket may send at once before SOCKET_EVENT_RATE applies (the bucket size).'),

    EMAIL_FROM: z.string().min(3).default('Parley <no-reply@parley.local>').describe('Sender of account e-mails.'),
    SMTP_URL: z.url().optional().describe('smtp(s)://user:pass@host:port to send e-mail through SMTP.'),
    RESEND_API_KEY: z.string().min(1).optional().describe('Send e-mail through Resend (wins over SMTP_URL). Neither set: e-mails are written to the log.'),
    RESEND_API_URL: z.url().default('https://api.resend.com').describe('Resend API base URL.'),

    FIREBASE_PROJECT_ID: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Firebase project of the service account that sends pushes (FCM). With FIREBASE_CLIENT_EMAIL and FIREBASE_PRIVATE_KEY; none of the three and no GOOGLE_APPLICATION_CREDENTIALS: pushes are written to the log.',
      ),
    FIREBASE_CLIENT_EMAIL: z.email().optional().describe("The service account's client_email (...@<project>.iam.gserviceaccount.com)."),
    FIREBASE_PRIVATE_KEY: z.string().min(1).optional().describe("The service account's private_key (PEM); newlines may be written as \\n on one line."),
    GOOGLE_APPLICATION_CREDENTIALS: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Path of a service-account JSON key file, used for pushes when the FIREBASE_* trio is not set (its project_id, client_email, private_key and token_uri are read).',
      ),
    FCM_API_URL: z.url().default('https://fcm.googleapis.com').describe("Where FCM's HTTP v1 API is reached (the SDK's requests are rerouted there)."),
    FIREBASE_TOKEN_URL: z
      .url()
      .optional()
      .describe("Google's OAuth2 token endpoint for the service account. Unset: the key file's token_uri, else https://oauth2.googleapis.com/token."),
    PUSH_CONCURRENCY: z.coerce.number().int().min(1).max(500).default(16).describe('Pushes one delivery job sends to FCM at once.'),

    PAYMENT_PROVIDER: z
      .enum(['stripe', 'paypal', 'local'])
      .optional()
      .describe(
        'Provider of new checkouts and donations: stripe | paypal | local. Unset: stripe when STRIPE_SECRET_KEY is set, else paypal when PAYPAL_CLIENT_ID is set, else local (an offline page that takes no money; refused in production, where payments are then off).',
      ),
    PAYMENT_SUCCESS_URL: z
      .url()
      .optional()
      .describe("Where a provider's page sends the buyer after paying (the app's deep link or page). Unset: APP_URL/pay/result?status=success."),
    PAYMENT_CANCEL_URL: z.url().optional().describe('Where it sends a buyer who cancels. Unset: APP_URL/pay/result?status=cancelled.'),
    STRIPE_SECRET_KEY: z.string().min(1).optional().describe('Stripe secret key (sk_live_… / sk_test_…): enables Stripe Checkout.'),
    STRIPE_WEBHOOK_SECRET: z.string().min(1).optional().describe('Signing secret of the Stripe webhook endpoint (whsec_…). Required with STRIPE_SECRET_KEY.'),
    STRIPE_SUCCESS_URL: z.url().optional().describe('Stripe only: overrides PAYMENT_SUCCESS_URL (?session_id={CHECKOUT_SESSION_ID} is appended).'),
    STRIPE_CANCEL_URL: z.url().optional().describe('Stripe only: overrides PAYMENT_CANCEL_URL.'),
    STRIPE_API_URL: z.url().optional().describe("Stripe's API base. Unset: Stripe's own; set for stripe-mock or a test server (http://127.0.0.1:12111)."),
    PAYPAL_CLIENT_ID: z.string().min(1).optional().describe('PayPal REST app client id: enables PayPal orders.'),
    PAYPAL_CLIENT_SECRET: z.string().min(1).optional().describe('PayPal REST app secret. Required with PAYPAL_CLIENT_ID.'),
    PAYPAL_MODE: z.enum(['sandbox', 'live']).default('sandbox').describe('sandbox | live: which PayPal the client id belongs to.'),
    PAYPAL_WEBHOOK_ID: z
      .string()
      .min(1)
      .optional()
      .describe('Id of the PayPal webhook (developer dashboard): webhooks are verified against it. Required with PAYPAL_CLIENT_ID.'),
    PAYPAL_API_URL: z.url().optional().describe("Overrides the base URL PAYPAL_MODE selects (a test server or a proxy); PayPal's own by default."),
    VIDEO_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(2 * 1024 ** 3)
      .describe('Largest lesson video upload, in bytes (larger gets 413, before a byte is read when the request says its length).'),
    VIDEO_URL_TTL: duration
      .prefault('3h')
      .describe('How long a lesson video URL (its playlists and segments) plays; a longer lesson needs it longer than the video.'),
    VIDEO_TRANSCODE_TIMEOUT: duration.prefault('4h').describe('A transcoding run taking longer fails (and is retried).'),
    VIDEO_TRANSCODE_RETRY_DELAY: duration
      .prefault('30s')
      .describe('Wait before retrying a failed transcoding, doubled for the next (3 runs in all, then the video is failed).'),
    FFMPEG_PATH: z
      .string()
      .min(1)
      .default('ffmpeg')
      .describe('The ffmpeg binary (on PATH by default). Without it, uploaded videos wait as transcoding_unavailable.'),
    FFPROBE_PATH: z.string().min(1).default('ffprobe').describe('The ffprobe binary (on PATH by default).'),
    OLLAMA_BASE_URL: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'Your Ollama server (http://127.0.0.1:11434 for a local one): trusted even on a private address. Unset, with no key stored by the user: the AI routes answer 503 ai_unavailable.',
      ),
    OLLAMA_KEY_ENCRYPTION_KEY: encryptionKey
      .optional()
      .describe("Encrypts users' stored Ollama keys (AES-256-GCM): 32 bytes, base64 or hex. Required in production; generated into JWT_KEYS_DIR otherwise."),
    OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS: z
      .string()
      .optional()
      .transform((text, ctx) => {
        const keys = (text ?? '')
          .split(',')
          .map((part) => part.trim())
          .filter(Boolean)
          .map((part) => parseEncryptionKey(part));
        if (keys.some((key) => key === null)) {
          ctx.addIssue({ code: 'custom', message: 'expected comma-separated 32-byte keys, base64 or hex' });
          return z.NEVER;
        }
        return keys as Buffer[];
      })
      .describe('Keys rotated out (comma-separated): stored keys they sealed still open until `npm run ollama:rotate-key` re-seals them.'),
    OLLAMA_KEY_REVEAL_LIMIT: limit.prefault('5/1h').describe('Reads of a stored key back (GET /api/ollama/get-key) per user.'),
    AI_DAILY_TOKEN_LIMIT: z.coerce
      .number()
      .int()
      .min(0)
      .default(200_000)
      .describe('Prompt and reply tokens one user may spend through the AI proxy per UTC day (0: no limit).'),
    AI_CONNECT_TIMEOUT: duration.prefault('5s').describe('Connecting to an Ollama server gives up after this long.'),
    AI_FIRST_TOKEN_TIMEOUT: duration.prefault('120s').describe("Waiting for a model's first token (loading the model included) gives up after this long."),
    AI_IDLE_TIMEOUT: duration.prefault('60s').describe('A reply that stops streaming for this long is cut off.'),
    AI_DEFAULT_MODEL: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'an Ollama model name such as llama3.2:3b')
      .max(200)
      .default('llama3.2')
      .describe('The model of an AI conversation started without one (POST /api/sessions/create, /api/chat-stream, /ws).'),
    AI_MESSAGE_MAX_CHARS: z.coerce.number().int().min(1).max(32_000).default(4000).describe('The longest message a student may send the AI partner.'),
    AI_HISTORY_MESSAGES: z.coerce
      .number()
      .int()
      .min(0)
      .max(200)
      .default(20)
      .describe('How many earlier messages of a conversation the model is given with each new one.'),
    AI_REPLY_MAX_DURATION: duration.prefault('5m').describe('A reply still streaming after this long is cut off (saved as interrupted).'),
    AI_SSE_HEARTBEAT: duration.prefault('15s').describe('A comment line on open chat streams this often, so proxies keep them open.'),
    AI_RESUME_RETENTION: duration
      .prefault('10m')
      .describe("How long a reply's events are kept in Redis for a client that reconnects with Last-Event-ID (after that, the saved message)."),
    AI_ANONYMOUS_RETENTION: duration.prefault('24h').describe('Anonymous /ws conversations nobody wrote in for this long are deleted.'),

    AI_WS_USER_MESSAGE_LIMITS: limits
      .prefault('60/1m,1000/1h')
      .describe('Messages one signed-in user may send over /ws, all instances together: COUNT/WINDOW, several separated by commas, each a sliding window.'),
    AI_WS_ANONYMOUS_MESSAGE_LIMITS: limits.prefault('10/1m,100/1h').describe('Messages one anonymous /ws session may send.'),
    AI_WS_IP_MESSAGE_LIMITS: limits.prefault('200/1m').describe('Messages over /ws from one client IP, signed in or not.'),
    AI_WS_GLOBAL_MESSAGE_LIMITS: limits.prefault('100/1s').describe('Messages over /ws from everyone, all instances together.'),
    AI_WS_USER_CONNECTION_LIMIT: limit.prefault('10/1m').describe('/ws connections one signed-in user may authenticate.'),
    AI_WS_ANONYMOUS_CONNECTION_LIMIT: limit.prefault('3/1m').describe('Anonymous /ws sessions one client IP may open.'),
    AI_WS_IP_CONNECTION_LIMIT: limit.prefault('20/1m').describe('/ws connections one client IP may open.'),
    AI_WS_MAX_CONNECTIONS: z.coerce
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('/ws connections open at once, all instances together; more are refused with 503 too_many_connections.'),
    AI_WS_AUTH_FAILURE_LIMIT: limit
      .prefault('5/15m')
      .describe('Failed /ws authentications (bad, expired or revoked token, banned account) from one client IP before it is blocked.'),
    AI_WS_AUTH_BLOCK: duration.prefault('15m').describe('How long a blocked client IP cannot open /ws.'),
    AI_WS_AUTH_TIMEOUT: duration.prefault('10s').describe('A /ws connection that has not authenticated within this long is closed.'),
    AI_WS_PING_INTERVAL: duration
      .prefault('30s')
      .describe('The server pings every /ws connection this often; a connection that did not answer the previous ping is dropped.'),
    SECURITY_BLOCK_SUSPICIOUS: flag
      .prefault('off')
      .describe(
        'on: /ws messages that look like an attack (script tags, SQL injection, shell chaining, path traversal) are refused with suspicious_content; off: they are only written to the activity log.',
      ),
  })
  .strip()
  .superRefine((env, ctx) => {
    const trio = ['FIREBASE_PROJECT_ID', 'FIREBASE_CLIENT_EMAIL', 'FIREBASE_PRIVATE_KEY'] as const;
    const missing = trio.filter((key) => !env[key]);
    if (missing.length === 0 || missing.length === trio.length) return;
    ctx.addIssue({
      code: 'custom',
      path: [missing[0] ?? ''],
      message: `is missing: FIREBASE_PROJECT_ID, FIREBASE_CLIENT_EMAIL and FIREBASE_PRIVATE_KEY go together, all three or none (missing: ${missing.join(', ')})`,
    });
  })
  .superRefine((env, ctx) => {
    const pairs = [
      ['STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'],
      ['PAYPAL_CLIENT_ID', 'PAYPAL_CLIENT_SECRET'],
      ['PAYPAL_CLIENT_ID', 'PAYPAL_WEBHOOK_ID'],
      ['GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET'],
      ['GITHUB_CLIENT_SECRET', 'GITHUB_CLIENT_ID'],
    ] as const;
    for (const [key, required] of pairs) {
      if (env[key] && !env[required]) ctx.addIssue({ code: 'custom', path: [required], message: `is required with ${key}` });
    }
    if (env.PAYMENT_PROVIDER === 'stripe' && !env.STRIPE_SECRET_KEY)
      ctx.addIssue({ code: 'custom', path: ['STRIPE_SECRET_KEY'], message: 'is required with PAYMENT_PROVIDER=stripe' });
    if (env.PAYMENT_PROVIDER === 'paypal' && !env.PAYPAL_CLIENT_ID)
      ctx.addIssue({ code: 'custom', path: ['PAYPAL_CLIENT_ID'], message: 'is required with PAYMENT_PROVIDER=paypal' });
  })
  .superRefine((env, ctx) => {
    const orion = ['ORION_SHARED_JWT_SECRET', 'ORION_SHARED_JWT_ISS', 'ORION_SHARED_JWT_AUD'] as const;
    const missing = orion.filter((key) => !env[key]);
    if (missing.length && missing.length < orion.length) {
      ctx.addIssue({ code: 'custom', path: [missing[0]!], message: `is missing: ${orion.join(', ')} go together, all three or none` });
    }
    const issuers = [...env.TRUSTED_ISSUERS.map((entry) => entry.issuer), ...(env.ORION_SHARED_JWT_ISS ? [env.ORION_SHARED_JWT_ISS] : [])];
    const repeated = issuers.filter((issuer, index) => issuers.indexOf(issuer) !== index);
    if (repeated.length)
      ctx.addIssue({ code: 'custom', path: ['TRUSTED_ISSUERS'], message: `lists an issuer twice (with ORION_SHARED_JWT_ISS): ${repeated.join(', ')}` });
    if (issuers.includes(env.JWT_ISSUER)) {
      ctx.addIssue({ code: 'custom', path: ['TRUSTED_ISSUERS'], message: `cannot trust JWT_ISSUER (${env.JWT_ISSUER}), Parley's own issuer` });
    }
    // a JWKS fetched in clear could be swapped on the way: its keys would then sign anyone in
    const insecure = env.TRUSTED_ISSUERS.findIndex((entry) => entry.kind === 'jwks' && new URL(entry.jwksUrl).protocol !== 'https:');
    if (env.NODE_ENV === 'production' && insecure >= 0) {
      ctx.addIssue({ code: 'custom', path: ['TRUSTED_ISSUERS'], message: `entry ${insecure + 1}: jwksUrl must be https in production` });
    }
  });

export type Env = z.output<typeof envSchema>;
export type EnvKey = keyof typeof envSchema.shape;

/** The order and headings of `.env.example`. Every key of envSchema appears in exactly one group. */
export const ENV_GROUPS: ReadonlyArray<{ title: string; keys: readonly EnvKey[] }> = [
  {
    title: 'Server',
    keys: [
      'NODE_ENV',
      'HOST',
      'PORT',
      'APP_URL',
      'LOG_LEVEL',
      'TRUST_PROXY',
      'BODY_LIMIT_BYTES',
      'HTTP_REQUEST_TIMEOUT',
      'HTTP_HEADERS_TIMEOUT',
      'SHUTDOWN_TIMEOUT',
      'DATA_DIR',
    ],
  },
  {
    title: 'HTTP security',
    keys: [
      'SESSION_SECRET',
      'FRONTEND_URL',
      'FRONTEND_RESET_PASSWORD_URL',
      'FRONTEND_VERIFY_EMAIL_URL',
      'SECURITY_HEADERS_ENABLED',
      'HSTS_MAX_AGE',
      'FORCE_HTTPS',
      'RATE_LIMIT_REQUESTS',
      'RATE_LIMIT_WINDOW',
      'METRICS_TOKEN',
    ],
  },
  { title: 'PostgreSQL', keys: ['DATABASE_URL', 'DATABASE_POOL_SIZE', 'DATABASE_MIGRATE_ON_START'] },
  { title: 'Redis', keys: ['REDIS_URL', 'REDIS_SOCKET_PATH'] },
  { title: 'Background jobs', keys: ['JOBS_BACKEND', 'WORKERS', 'JOBS_DATABASE_POOL_SIZE', 'JOBS_PREFIX', 'JOBS_STALLED_TIMEOUT'] },
  {
    title: 'Accounts and tokens',
    keys: [
      'JWT_KEYS_DIR',
      'JWT_PRIVATE_KEY_PATH',
      'JWT_PUBLIC_KEY_PATH',
      'JWT_KEY_ID',
      'JWT_ISSUER',
      'JWT_AUDIENCE',
      'JWT_ACCESS_EXPIRY',
      'JWT_REFRESH_EXPIRY',
      'JWT_SESSION_MAX_LIFETIME',
      'REFRESH_REUSE_GRACE',
      'COOKIE_SESSION_TTL',
      'COOKIE_SESSION_MAX_LIFETIME',
      'BCRYPT_COST',
      'BCRYPT_CONCURRENCY',
      'AUTH_LOGIN_LIMIT',
      'AUTH_REGISTER_LIMIT',
      'AUTH_FORGOT_PASSWORD_LIMIT',
      'AUTH_GITHUB_LIMIT',
      'AUTH_ACCOUNT_FAILURE_LIMIT',
      'BETA_MODE',
      'BETA_CHECK_LIMIT',
    ],
  },
  {
    title: 'External identity',
    keys: [
      'TRUSTED_ISSUERS',
      'ORION_SHARED_JWT_SECRET',
      'ORION_SHARED_JWT_ISS',
      'ORION_SHARED_JWT_AUD',
      'ACCEPT_EXTERNAL_TOKENS',
      'AUTHORIZED_USER_EMAIL',
      'EXTERNAL_TOKEN_LEEWAY',
      'JWKS_TIMEOUT',
      'JWKS_CACHE_TTL',
      'JWKS_REFETCH_INTERVAL',
      'GITHUB_CLIENT_ID',
      'GITHUB_CLIENT_SECRET',
      'GITHUB_CALLBACK_URL',
      'GITHUB_OAUTH_URL',
      'GITHUB_API_URL',
      'GITHUB_TIMEOUT',
    ],
  },
  { title: 'E-mail', keys: ['EMAIL_FROM', 'SMTP_URL', 'RESEND_API_KEY', 'RESEND_API_URL'] },
  {
    title: 'Push notifications',
    keys: [
      'FIREBASE_PROJECT_ID',
      'FIREBASE_CLIENT_EMAIL',
      'FIREBASE_PRIVATE_KEY',
      'GOOGLE_APPLICATION_CREDENTIALS',
      'FCM_API_URL',
      'FIREBASE_TOKEN_URL',
      'PUSH_CONCURRENCY',
    ],
  },
  {
    title: 'Payments',
    keys: [
      'PAYMENT_PROVIDER',
      'PAYMENT_SUCCESS_URL',
      'PAYMENT_CANCEL_URL',
      'STRIPE_SECRET_KEY',
      'STRIPE_WEBHOOK_SECRET',
      'STRIPE_SUCCESS_URL',
      'STRIPE_CANCEL_URL',
      'STRIPE_API_URL',
      'PAYPAL_CLIENT_ID',
      'PAYPAL_CLIENT_SECRET',
      'PAYPAL_MODE',
      'PAYPAL_WEBHOOK_ID',
      'PAYPAL_API_URL',
    ],
  },
  {
    title: 'AI partner',
    keys: [
      'OLLAMA_BASE_URL',
      'OLLAMA_KEY_ENCRYPTION_KEY',
      'OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS',
      'OLLAMA_KEY_REVEAL_LIMIT',
      'AI_DAILY_TOKEN_LIMIT',
      'AI_CONNECT_TIMEOUT',
      'AI_FIRST_TOKEN_TIMEOUT',
      'AI_IDLE_TIMEOUT',
      'AI_DEFAULT_MODEL',
      'AI_MESSAGE_MAX_CHARS',
      'AI_HISTORY_MESSAGES',
      'AI_REPLY_MAX_DURATION',
      'AI_SSE_HEARTBEAT',
      'AI_RESUME_RETENTION',
      'AI_ANONYMOUS_RETENTION',
    ],
  },
  {
    title: 'AI chat over WebSocket',
    keys: [
      'AI_WS_USER_MESSAGE_LIMITS',
      'AI_WS_ANONYMOUS_MESSAGE_LIMITS',
      'AI_WS_IP_MESSAGE_LIMITS',
      'AI_WS_GLOBAL_MESSAGE_LIMITS',
      'AI_WS_USER_CONNECTION_LIMIT',
      'AI_WS_ANONYMOUS_CONNECTION_LIMIT',
      'AI_WS_IP_CONNECTION_LIMIT',
      'AI_WS_MAX_CONNECTIONS',
      'AI_WS_AUTH_FAILURE_LIMIT',
      'AI_WS_AUTH_BLOCK',
      'AI_WS_AUTH_TIMEOUT',
      'AI_WS_PING_INTERVAL',
      'SECURITY_BLOCK_SUSPICIOUS',
    ],
  },
  {
    title: 'Courses and video',
    keys: ['VIDEO_MAX_BYTES', 'VIDEO_URL_TTL', 'VIDEO_TRANSCODE_TIMEOUT', 'VIDEO_TRANSCODE_RETRY_DELAY', 'FFMPEG_PATH', 'FFPROBE_PATH'],
  },
  {
    title: 'Matchmaking, signaling and TURN',
    keys: [
      'TURN_HOST',
      'TURN_PORT',
      'TURN_SECRET',
      'TURN_CREDENTIAL_TTL',
      'MATCH_SEARCH_TIMEOUT',
      'MATCH_BACKGROUND_GRACE',
      'MATCH_AI_FALLBACK_SECONDS',
      'MATCH_INSTANCE_TTL',
      'CALL_RECONNECT_GRACE',
      'CALL_MAX_DURATION',
      'CALL_SWEEP_INTERVAL',
      'REALTIME_ADAPTER',
      'REALTIME_CHANNEL_PREFIX',
      'SIGNAL_MAX_BYTES',
      'SOCKET_MAX_PER_USER',
      'SOCKET_MAX_PER_IP',
      'SOCKET_EVENT_RATE',
      'SOCKET_EVENT_BURST',
      'DEMO_ENABLED',
    ],
  },
  {
    title: 'Object storage and profiles',
    keys: [
      'STORAGE_BUCKET_NAME',
      'STORAGE_ENDPOINT',
      'STORAGE_REGION',
      'STORAGE_ACCESS_KEY',
      'STORAGE_SECRET_KEY',
      'STORAGE_PUBLIC_URL',
      'STORAGE_URL_TTL',
      'AVATAR_MAX_BYTES',
      'AVATAR_MAX_PIXELS',
      'THUMBNAIL_MAX_BYTES',
      'ATTACHMENT_MAX_BYTES',
      'LAST_ACTIVE_THROTTLE',
    ],
  },
];

/** Settings of modules that have not landed yet; listed in `.env.example` so operators can plan. */
export const PLANNED_ENV: ReadonlyArray<{ module: string; keys: readonly string[] }> = [];

/**
 * Other names of a setting, as the source documents spell it: each is read as its setting
 * (converted where the unit differs). An alias and its setting in the same file (or both in
 * the process environment) must agree; across sources the later one wins, as for any setting.
 */
export const ENV_ALIASES: ReadonlyArray<{ alias: string; setting: EnvKey; source: string; toSetting: (value: string) => string | null }> = [
  // a bare number of milliseconds is what RATE_LIMIT_WINDOW reads too; only whole milliseconds are accepted
  {
    alias: 'RATE_LIMIT_WINDOW_MS',
    setting: 'RATE_LIMIT_WINDOW',
    source: 'document 001, in milliseconds',
    toSetting: (ms) => (/^\d+$/.test(ms.trim()) ? `${ms.trim()}ms` : null),
  },
  { alias: 'RATE_LIMIT_MAX_REQUESTS', setting: 'RATE_LIMIT_REQUESTS', source: 'document 001', toSetting: (count) => count },
  { alias: 'FRONTEND_URLS', setting: 'FRONTEND_URL', source: 'document 000', toSetting: (urls) => urls },
];
