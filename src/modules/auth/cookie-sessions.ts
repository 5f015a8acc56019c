import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import type { EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import { redisKeys } from '../../infra/redis-keys.js';
import type { PreparedReader } from '../../infra/sql.js';
import { isRole, type AuthContext, type CookieSessionVerifier, type CsrfEvidence, type Role } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import type { AccountSummary } from '../users/index.js';
import { CookieSession } from './entities.js';
import type { SingleUserGate } from './single-user.js';
import { sha256, type TokenService } from './tokens.js';

export interface CookieSessionSettings {
  /** SESSION_SECRET: keys the CSRF tokens. */
  secret: string;
  /** Production: Secure cookies with the `__Host-` prefix. */
  secure: boolean;
  /** Sliding: a browser session unused this long ends. */
  idleTtlMs: number;
  /** Absolute: a browser session ends this long after its sign-in. */
  maxLifetimeMs: number;
  /** Origins a cookie-authenticated write may come from: FRONTEND_URL and this server's own. */
  allowedOrigins: string[];
}

export interface CookieSessionsDependencies {
  db: { query: EntityManager['query'] };
  reader: PreparedReader;
  redis: Redis;
  tokens: TokenService;
  accounts: { findSummary(userId: string): Promise<AccountSummary | null> };
  gate: SingleUserGate;
  clock: Clock;
}

/** What a session cookie stands for, as cached in Redis. */
interface CookieSessionState {
  sessionId: string;
  userId: string;
  email: string;
  role: Role;
  /** Sliding end (the device session's expires_at). */
  expiresAtMs: number;
  /** Absolute end. */
  endsAtMs: number;
  /** When the sliding end was last moved. */
  touchedAtMs: number;
}

/** The cache may be this stale about an account's e-mail or role (bans and revocations are checked on every request). */
const CACHE_TTL_MS = 5 * 60_000;
/** The sliding end moves at most this often per session (a write per request would be wasted). */
const TOUCH_INTERVAL_MS = 60_000;
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Browser sessions behind the `session_token` cookie: an opaque random value, only its SHA-256
 * stored (cookie_sessions, next to the device session it is), cached in Redis. Each one is a
 * device session, so every revocation of those (logout, logout-all, password reset, ban) ends it,
 * and it is checked like a bearer token (the deny-list, then PostgreSQL). CSRF tokens are
 * HMAC(SESSION_SECRET, session id).
 */
export class CookieSessions implements CookieSessionVerifier {
  readonly cookieName: string;
  private readonly cookieOptions: CookieSerializeOptions;
  private readonly allowedOrigins: Set<string>;

  constructor(
    private readonly dependencies: CookieSessionsDependencies,
    private readonly settings: CookieSessionSettings,
  ) {
    // HttpOnly: no script reads it; Lax: a cross-site write never carries it (a top-level navigation does)
    this.cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure: settings.secure };
    // the __Host- prefix: the browser keeps it only if Secure, Path=/ and host-only, so no subdomain can plant one
    this.cookieName = settings.secure ? '__Host-session_token' : 'session_token';
    this.allowedOrigins = new Set(settings.allowedOrigins.map((origin) => new URL(origin).origin));
  }

  /** The sliding end of a session opened or used at `now`, never past its absolute end. */
  expiry(now: Date, endsAt: Date): Date {
    return new Date(Math.min(now.getTime() + this.settings.idleTtlMs, endsAt.getTime()));
  }

  endOf(signedInAt: Date): Date {
    return new Date(signedInAt.getTime() + this.settings.maxLifetimeMs);
  }

  /** In the sign-in transaction, after its device session row: the cookie value of the new browser session. */
  async open(manager: EntityManager, sessionId: string, endsAt: Date): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await manager.insert(CookieSession, { sessionId, tokenHash: sha256(token), endsAt });
    return token;
  }

  /** Whether a device session is a browser's (its expiry slides with the cookie's use, by COOKIE_SESSION_TTL). */
  async isBrowserSession(manager: EntityManager, sessionId: string): Promise<boolean> {
    return manager.exists(CookieSession, { where: { sessionId } });
  }

  /** Sets the cookie of a new session: the browser keeps it until the absolute end; the server enforces the sliding one. */
  setCookie(reply: FastifyReply, token: string, endsAt: Date): void {
    const maxAge = Math.max(0, Math.floor((endsAt.getTime() - this.dependencies.clock.now().getTime()) / 1000));
    reply.setCookie(this.cookieName, token, { ...this.cookieOptions, maxAge });
  }

  clearCookie(reply: FastifyReply): void {
    reply.clearCookie(this.cookieName, this.cookieOptions);
  }

  csrfToken(sessionId: string): string {
    return createHmac('sha256', this.settings.secret).update(`parley-csrf:${sessionId}`).digest('base64url');
  }

  checkCsrf(sessionId: string, { csrfToken, origin, referer }: CsrfEvidence): void {
    const source = origin ?? originOf(referer);
    if (!source || !this.allowedOrigins.has(source)) {
      throw new AppError('origin_not_allowed', 'A request signed in by the session cookie must come from an allowed origin (FRONTEND_URL)');
    }
    const expected = Buffer.from(this.csrfToken(sessionId));
    const given = Buffer.from(csrfToken ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AppError('csrf_token_invalid', 'Send this session\'s CSRF token (GET /auth/user, "csrfToken") in the X-CSRF-Token header');
    }
  }

  async verifyCookie(value: string): Promise<AuthContext> {
    if (!COOKIE_VALUE.test(value)) throw invalidCookie();
    const hash = sha256(value);
    const now = this.dependencies.clock.now().getTime();
    const state = (await this.cached(hash)) ?? (await this.load(hash, now));
    if (!state) throw invalidCookie();
    if (now >= state.endsAtMs) throw new AppError('token_expired', 'This browser session has reached its maximum lifetime: sign in again');
    if (now >= state.expiresAtMs) throw new AppError('token_expired', 'This browser session has expired: sign in again');
    const context: AuthContext = { userId: state.userId, email: state.email, role: state.role, sessionId: state.sessionId };
    await this.dependencies.tokens.assertLive(context);
    this.dependencies.gate.check(state.email);
    if (now - state.touchedAtMs >= Math.min(TOUCH_INTERVAL_MS, this.settings.idleTtlMs / 10)) await this.touch(hash, state, now);
    return context;
  }

  private async touch(hash: string, state: CookieSessionState, now: number): Promise<void> {
    const expiresAt = this.expiry(new Date(now), new Date(state.endsAtMs));
    await this.dependencies.db.query('UPDATE device_sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3 AND revoked_at IS NULL', [
      new Date(now),
      expiresAt,
      state.sessionId,
    ]);
    await this.remember(hash, { ...state, expiresAtMs: expiresAt.getTime(), touchedAtMs: now }, now);
  }

  private async cached(hash: string): Promise<CookieSessionState | null> {
    const raw = await this.dependencies.redis.get(redisKeys.cookieSession(hash)).catch(() => null);
    if (!raw) return null;
    try {
      const state = JSON.parse(raw) as CookieSessionState;
      return isRole(state.role) ? state : null;
    } catch {
      return null;
    }
  }

  /** From PostgreSQL (the session and its account), then cached; null for a cookie Parley never issued (or purged). */
  private async load(hash: string, now: number): Promise<CookieSessionState | null> {
    const row = await this.dependencies.reader.one<{ session_id: string; user_id: string; expires_at: Date; last_used_at: Date; ends_at: Date }>(
      'cookie-session-by-hash',
      `SELECT c.session_id, d.user_id, d.expires_at, d.last_used_at, c.ends_at
       FROM cookie_sessions c JOIN device_sessions d ON d.id = c.session_id WHERE c.token_hash = $1`,
      [hash],
    );
    if (!row) return null;
    const account = await this.dependencies.accounts.findSummary(row.user_id);
    if (!account) throw new AppError('session_revoked', 'This account no longer exists');
    const state: CookieSessionState = {
      sessionId: row.session_id,
      userId: row.user_id,
      email: account.email,
      role: account.role,
      expiresAtMs: row.expires_at.getTime(),
      endsAtMs: row.ends_at.getTime(),
      touchedAtMs: row.last_used_at.getTime(),
    };
    await this.remember(hash, state, now);
    return state;
  }

  /** A cache Redis refuses costs the next request a database read, nothing more. */
  private async remember(hash: string, state: CookieSessionState, now: number): Promise<void> {
    const ttlMs = Math.min(CACHE_TTL_MS, state.expiresAtMs - now);
    if (ttlMs <= 0) return;
    await this.dependencies.redis.set(redisKeys.cookieSession(hash), JSON.stringify(state), 'PX', Math.ceil(ttlMs)).catch(() => undefined);
  }
}

function invalidCookie(): AppError {
  return new AppError('invalid_token', 'The session cookie is not valid: sign in again');
}

function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
