import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { errors as joseErrors, exportJWK, jwtVerify, SignJWT, type JWK, type JWTHeaderParameters } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { SigningKeys } from '../../infra/keys.js';
import type { PreparedReader } from '../../infra/sql.js';
import { redisKeys } from '../../infra/redis-keys.js';
import { isRole, type AccessTokenVerifier, type AuthContext } from '../../shared/auth.js';
import { AppError, DependencyUnavailableError } from '../../shared/errors.js';

export interface TokenOptions {
  issuer: string;
  audience: string;
  accessTtlMs: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Verified tokens remembered, so a client's repeated token costs no RSA work. */
const VERIFIED_CACHE_SIZE = 10_000;
/**
 * How long an instance trusts its own answer "this session is live" before asking Redis and
 * PostgreSQL again: the longest a revocation (logout, reset, ban, reuse) takes to reach
 * every instance. The instance that revokes a session forgets it at once.
 */
const SESSION_STATUS_TTL_MS = 1_000;
const SESSION_STATUS_CACHE_SIZE = 10_000;
/** Clock skew tolerated between the instances that sign and verify. */
const IAT_LEEWAY_MS = 30_000;

/** What the access token of a device session is worth right now. */
type SessionStatus = 'live' | 'revoked' | 'banned';

/** The account half of the check: null for a deleted account. */
export interface AccountStatusLookup {
  findSummary(userId: string): Promise<{ isBanned: boolean } | null>;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Access tokens: RS256 JWTs signed with the active key (kid in the header), verified
 * against the active and rotated-out keys, and refused when their device session is revoked
 * or their account banned. The truth is PostgreSQL (device_sessions.revoked_at, users.is_banned);
 * Redis keeps a deny-list in front of it and each instance remembers a session's status for
 * SESSION_STATUS_TTL_MS.
 */
export class TokenService implements AccessTokenVerifier {
  private readonly verified = new Map<string, { context: AuthContext; expiresAtMs: number }>();
  private readonly statuses = new Map<string, { status: SessionStatus; untilMs: number }>();
  private readonly keysByKid: Map<string, SigningKeys['publicKey']>;
  private jwksDocument: { keys: JWK[] } | undefined;
  private readonly deniedListeners: Array<(sessionIds: string[]) => void> = [];

  constructor(
    private readonly keys: SigningKeys,
    private readonly redis: Redis,
    private readonly clock: Clock,
    private readonly options: TokenOptions,
    private readonly reader: PreparedReader,
    private readonly accounts: AccountStatusLookup,
  ) {
    this.keysByKid = new Map(keys.verificationKeys.map((key) => [key.kid, key.publicKey]));
  }

  get accessTtlSeconds(): number {
    return Math.floor(this.options.accessTtlMs / 1000);
  }

  async issueAccessToken(context: AuthContext): Promise<string> {
    const nowSeconds = Math.floor(this.clock.now().getTime() / 1000);
    return new SignJWT({ email: context.email, role: context.role, sid: context.sessionId })
      .setProtectedHeader({ alg: 'RS256', kid: this.keys.kid, typ: 'JWT' })
      .setSubject(context.userId)
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + this.accessTtlSeconds)
      .sign(this.keys.privateKey);
  }

  /** Every public key that may have signed a live token, as a JWK Set. */
  async jwks(): Promise<{ keys: JWK[] }> {
    this.jwksDocument ??= {
      keys: await Promise.all(
        this.keys.verificationKeys.map(async ({ kid, publicKey }) => ({ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' })),
      ),
    };
    return this.jwksDocument;
  }

  async verify(token: string): Promise<AuthContext> {
    const nowMs = this.clock.now().getTime();
    const cached = this.verified.get(token);
    const context = cached && cached.expiresAtMs > nowMs ? cached.context : await this.verifySignature(token, nowMs);
    await this.assertLive(context);
    return context;
  }

  /** Throws unless the device session is live and its account not banned: a bearer token's check, and a session cookie's. */
  async assertLive(context: AuthContext): Promise<void> {
    const status = await this.sessionStatus(context, this.clock.now().getTime());
    if (status === 'banned') throw new AppError('account_banned', 'This account is banned');
    if (status === 'revoked') throw new AppError('session_revoked', 'This session was signed out');
  }

  private async sessionStatus(context: AuthContext, nowMs: number): Promise<SessionStatus> {
    const known = this.statuses.get(context.sessionId);
    if (known && known.untilMs > nowMs) return known.status;
    // Redis may be empty (restarted, flushed) or down: a miss is never taken as "live".
    const denied = this.redisConnected() ? await this.redis.exists(redisKeys.deniedSession(context.sessionId)).catch(() => 0) : 0;
    const [revoked, account] = await Promise.all([denied ? true : this.revokedInDatabase(context.sessionId), this.accounts.findSummary(context.userId)]);
    const status: SessionStatus = account?.isBanned ? 'banned' : revoked || !account ? 'revoked' : 'live';
    // Refills a deny-list Redis lost; a failure only costs the next check a database read.
    if (revoked && !denied && this.redisConnected()) {
      await this.redis.set(redisKeys.deniedSession(context.sessionId), '1', 'PX', this.options.accessTtlMs).catch(() => undefined);
    }
    this.remember(context.sessionId, status, nowMs);
    return status;
  }

  /** While Redis is down the deny-list is skipped at once (PostgreSQL answers); ioredis-mock has no status. */
  private redisConnected(): boolean {
    const status = this.redis.status as string | undefined;
    return status === undefined || status === 'ready';
  }

  private async revokedInDatabase(sessionId: string): Promise<boolean> {
    const row = await this.reader.one<{ revoked: boolean }>(
      'device-session-revoked-by-id',
      'SELECT revoked_at IS NOT NULL AS revoked FROM device_sessions WHERE id = $1',
      [sessionId],
    );
    return row?.revoked ?? true;
  }

  private remember(sessionId: string, status: SessionStatus, nowMs: number): void {
    if (this.statuses.size >= SESSION_STATUS_CACHE_SIZE) this.statuses.delete(this.statuses.keys().next().value!);
    // A revoked session never comes back; a live session or a banned account is asked about again soon.
    this.statuses.set(sessionId, { status, untilMs: nowMs + (status === 'revoked' ? this.options.accessTtlMs : SESSION_STATUS_TTL_MS) });
  }

  private async verifySignature(token: string, nowMs: number): Promise<AuthContext> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, (header: JWTHeaderParameters) => this.keyFor(header), {
        algorithms: ['RS256'],
        issuer: this.options.issuer,
        audience: this.options.audience,
        currentDate: new Date(nowMs),
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new AppError('token_expired', 'The access token has expired: refresh it');
      throw new AppError('invalid_token', 'The access token is not valid');
    }
    const { sub, email, role, sid, exp, iat } = payload;
    // jose checks exp but trusts iat: a token from the future, or one that lives longer than we
    // issue them, was not signed by this configuration.
    if (typeof iat !== 'number' || iat * 1000 > nowMs + IAT_LEEWAY_MS || (exp ?? 0) - iat > this.accessTtlSeconds) {
      throw new AppError('invalid_token', 'The access token is not valid');
    }
    if (typeof sub !== 'string' || !UUID.test(sub) || typeof sid !== 'string' || !UUID.test(sid) || typeof email !== 'string' || !isRole(role)) {
      throw new AppError('invalid_token', 'The access token is not valid');
    }
    const context: AuthContext = { userId: sub, email, role, sessionId: sid };
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { context, expiresAtMs: (exp ?? 0) * 1000 });
    return context;
  }

  private keyFor(header: JWTHeaderParameters) {
    const key = header.kid ? this.keysByKid.get(header.kid) : undefined;
    if (!key) throw new AppError('invalid_token', 'Unknown signing key');
    return key;
  }

  /** Access tokens of these sessions fail from now until they would have expired anyway. */
  async denySessions(sessionIds: string[]): Promise<void> {
    if (!sessionIds.length) return;
    // Forgotten here, so this instance's next check reads the new truth (revoked, or banned).
    for (const id of sessionIds) this.statuses.delete(id);
    const pipeline = this.redis.pipeline();
    for (const id of sessionIds) pipeline.set(redisKeys.deniedSession(id), '1', 'PX', this.options.accessTtlMs);
    const results = await pipeline.exec().catch(() => null);
    for (const listener of this.deniedListeners) listener(sessionIds);
    // The revocation is committed in PostgreSQL and reaches every instance within
    // SESSION_STATUS_TTL_MS anyway; a deny-list Redis refused is still reported, never ignored.
    if (!results || results.some(([error]) => error)) {
      throw new DependencyUnavailableError('The session is revoked, but Redis refused to record it; retry to confirm');
    }
  }

  /** Called after sessions are denied (the realtime layer closes their sockets). */
  onSessionsDenied(listener: (sessionIds: string[]) => void): void {
    this.deniedListeners.push(listener);
  }
}
