import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { errors as joseErrors, exportJWK, jwtVerify, SignJWT, type JWK, type JWTHeaderParameters } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { SigningKeys } from '../../infra/keys.js';
import type { AccessTokenVerifier, AuthContext, Role } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';

export interface TokenOptions {
  issuer: string;
  audience: string;
  accessTtlMs: number;
}

const ROLES: readonly string[] = ['student', 'admin'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Verified tokens remembered, so a client's repeated token costs no RSA work. */
const VERIFIED_CACHE_SIZE = 10_000;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Access tokens: RS256 JWTs signed with the active key (kid in the header), verified
 * against the active and rotated-out keys, and refused at once when their device session
 * is on the Redis deny-list (logout, reset, ban, reuse).
 */
export class TokenService implements AccessTokenVerifier {
  private readonly verified = new Map<string, { context: AuthContext; expiresAtMs: number }>();
  private readonly keysByKid: Map<string, SigningKeys['publicKey']>;
  private jwksDocument: { keys: JWK[] } | undefined;
  private readonly deniedListeners: Array<(sessionIds: string[]) => void> = [];

  constructor(
    private readonly keys: SigningKeys,
    private readonly redis: Redis,
    private readonly clock: Clock,
    private readonly options: TokenOptions,
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
    if (await this.redis.exists(this.denyKey(context.sessionId))) throw new AppError('session_revoked', 'This session was signed out');
    return context;
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
    const { sub, email, role, sid, exp } = payload;
    if (
      typeof sub !== 'string' ||
      !UUID.test(sub) ||
      typeof sid !== 'string' ||
      !UUID.test(sid) ||
      typeof email !== 'string' ||
      typeof role !== 'string' ||
      !ROLES.includes(role)
    ) {
      throw new AppError('invalid_token', 'The access token is not valid');
    }
    const context: AuthContext = { userId: sub, email, role: role as Role, sessionId: sid };
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { context, expiresAtMs: (exp ?? 0) * 1000 });
    return context;
  }

  private keyFor(header: JWTHeaderParameters) {
    const key = header.kid ? this.keysByKid.get(header.kid) : undefined;
    if (!key) throw new AppError('invalid_token', 'Unknown signing key');
    return key;
  }

  private denyKey(sessionId: string): string {
    return `auth:revoked-session:${sessionId}`;
  }

  /** Access tokens of these sessions fail from now until they would have expired anyway. */
  async denySessions(sessionIds: string[]): Promise<void> {
    if (!sessionIds.length) return;
    const pipeline = this.redis.pipeline();
    for (const id of sessionIds) pipeline.set(this.denyKey(id), '1', 'PX', this.options.accessTtlMs);
    await pipeline.exec();
    for (const listener of this.deniedListeners) listener(sessionIds);
  }

  /** Called after sessions are denied (the realtime layer closes their sockets). */
  onSessionsDenied(listener: (sessionIds: string[]) => void): void {
    this.deniedListeners.push(listener);
  }
}
