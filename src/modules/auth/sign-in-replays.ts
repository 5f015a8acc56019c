import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { IdempotencyScope, IdempotencyStore } from '../../http/idempotency/store.js';
import { IdempotencyInProgressError, IdempotencyKeyReusedError } from '../../shared/errors.js';

/** Encrypts `value` with a key derived from `secret`: only a holder of that secret can read it back. */
export function seal(secret: string, value: unknown): string {
  const key = createHash('sha256').update(secret).digest();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function unseal<T>(secret: string, sealed: string): T {
  const raw = Buffer.from(sealed, 'base64');
  const key = createHash('sha256').update(secret).digest();
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as T;
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** What a sign-in kept for its Idempotency-Key: the session it opened and that session's refresh token. */
export interface KeptSignIn {
  sessionId: string;
  refreshToken: string;
}

/** What a sign-in with an Idempotency-Key does next. */
export type SignInClaim =
  /** Sign in, then `keep` (or `release` on failure). */
  | { outcome: 'acquired'; scope: IdempotencyScope; startedAt: Date; secret: string }
  /** The first sign-in with this key answered: this is what it opened. Null when it can no longer be read (never happens with the same request). */
  | { outcome: 'replay'; kept: KeptSignIn | null };

/**
 * Idempotency-Key for the sign-ins (login and refresh), on the one Idempotency-Key store. These
 * routes have no signed-in caller, so the service claims the key once it knows the account (the
 * password checked, the refresh token found): the key is that account's. What is kept is not
 * the response: the session id and its refresh token, sealed with a key derived from the
 * Idempotency-Key and the request's secret (the password, the presented refresh token), and
 * the key itself is stored only as its SHA-256. A database copy alone opens nothing; a replay
 * needs the same key and the same credentials, so it never hands a session to another client.
 */
export class SignInReplays {
  constructor(private readonly store: IdempotencyStore) {}

  /**
   * `fingerprint` identifies the request without its secret (e-mail and device; the refresh
   * token's hash); `secret` is what only the client holds. Another request with the key is 422
   * idempotency_key_reused, one while the first runs 409 idempotency_in_progress.
   */
  async claim(route: string, userId: string, idempotencyKey: string, fingerprint: string, secret: string): Promise<SignInClaim> {
    const scope: IdempotencyScope = { userId, route, key: sha256(`parley-sign-in-key:${idempotencyKey}`) };
    const sealingSecret = `parley-sign-in:${route}:${idempotencyKey}:${secret}`;
    const claim = await this.store.claim(scope, sha256(`${route}:${fingerprint}`));
    switch (claim.outcome) {
      case 'acquired':
        return { outcome: 'acquired', scope, startedAt: claim.startedAt, secret: sealingSecret };
      case 'in_progress':
        throw new IdempotencyInProgressError();
      case 'mismatch':
        throw new IdempotencyKeyReusedError();
      case 'replay':
        try {
          return { outcome: 'replay', kept: unseal<KeptSignIn>(sealingSecret, claim.response.body.toString('utf8')) };
        } catch {
          // the same fingerprint with another secret: the password changed since, or a different token
          return { outcome: 'replay', kept: null };
        }
    }
  }

  async keep(claim: Extract<SignInClaim, { outcome: 'acquired' }>, kept: KeptSignIn): Promise<void> {
    await this.store.complete(claim.scope, claim.startedAt, { status: 200, headers: {}, body: Buffer.from(seal(claim.secret, kept)) });
  }

  async release(claim: Extract<SignInClaim, { outcome: 'acquired' }>): Promise<void> {
    await this.store.release(claim.scope, claim.startedAt);
  }
}
