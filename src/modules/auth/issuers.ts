import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import type { GuardedFetch } from '../../infra/outbound.js';
import { AppError } from '../../shared/errors.js';
import { RemoteKeySet, type KeySetOptions } from './jwks.js';

/** An issuer whose tokens Parley trusts: a shared HS256 secret, or a provider's JWKS. */
export type TrustedIssuer =
  | { kind: 'hs256'; issuer: string; audience: string | string[]; secret: string; emailClaim: string }
  | { kind: 'jwks'; issuer: string; audience: string | string[]; jwksUrl: string; algorithms: string[]; emailClaim: string };

/** What a verified external token says about its holder. */
export interface ExternalClaims {
  issuer: string;
  /** The issuer's id of the user (`sub`). */
  subject: string;
  /** Lower-cased; null when the token carries none. */
  email: string | null;
  emailVerified: boolean;
}

export interface TrustedIssuersOptions {
  /** Clock skew tolerated on exp, nbf and iat. */
  leewayMs: number;
  jwks: KeySetOptions;
}

/** Verified tokens remembered until they expire, so a repeated token costs no signature work. */
const VERIFIED_CACHE_SIZE = 10_000;
const MAX_SUBJECT_LENGTH = 255;
const emailSchema = z.email().max(254);

interface Verifier {
  config: TrustedIssuer;
  algorithms: string[];
  key: Uint8Array | JWTVerifyGetKey;
}

function invalid(message: string): AppError {
  return new AppError('invalid_token', message);
}

function emailOf(payload: JWTPayload, claim: string): string | null {
  // document 001's front end puts the e-mail in sub
  for (const candidate of [payload[claim], payload.sub]) {
    if (typeof candidate === 'string' && emailSchema.safeParse(candidate).success) return candidate.toLowerCase();
  }
  return null;
}

/**
 * The issuers of TRUSTED_ISSUERS (and document 001's ORION_SHARED_JWT_*): verifies their tokens
 * with the algorithm pinned per issuer (HS256 for a shared secret; the configured asymmetric ones
 * for a JWKS, so a public key can never act as an HMAC secret), and checks iss, aud, exp, nbf and
 * iat with a small leeway.
 */
export class TrustedIssuers {
  private readonly byIssuer: Map<string, Verifier>;
  private readonly verified = new Map<string, { claims: ExternalClaims; expiresAtMs: number }>();

  constructor(
    issuers: TrustedIssuer[],
    private readonly dependencies: { fetch: GuardedFetch; clock: Clock; logger: Logger },
    private readonly options: TrustedIssuersOptions,
  ) {
    this.byIssuer = new Map(issuers.map((config) => [config.issuer, this.verifierFor(config)]));
  }

  /** What a client may know of the configuration: never a secret or a URL. */
  list(): Array<{ issuer: string; kind: TrustedIssuer['kind'] }> {
    return [...this.byIssuer.values()].map(({ config }) => ({ issuer: config.issuer, kind: config.kind }));
  }

  /** Whether the token (read, not verified) claims to come from a trusted issuer. */
  claimsTrustedIssuer(token: string): boolean {
    try {
      const { iss } = decodeJwt(token);
      return typeof iss === 'string' && this.byIssuer.has(iss);
    } catch {
      return false;
    }
  }

  /** The verified claims of a trusted issuer's token; 401 invalid_token, token_expired or untrusted_issuer, 503 when its keys cannot be fetched. */
  async verify(token: string): Promise<ExternalClaims> {
    const nowMs = this.dependencies.clock.now().getTime();
    const cached = this.verified.get(token);
    if (cached && cached.expiresAtMs > nowMs) return cached.claims;
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw invalid('The token is not a JWT');
    }
    const verifier = typeof unverified.iss === 'string' ? this.byIssuer.get(unverified.iss) : undefined;
    if (!verifier) throw new AppError('untrusted_issuer', "This server does not trust the token's issuer");
    const payload = await this.verifySignature(token, verifier, nowMs);
    const { sub, iat, exp } = payload;
    if (typeof iat !== 'number' || iat * 1000 > nowMs + this.options.leewayMs) throw invalid('The token was issued in the future');
    if (typeof sub !== 'string' || !sub || sub.length > MAX_SUBJECT_LENGTH) throw invalid('The token names no usable subject (sub)');
    const claims: ExternalClaims = {
      issuer: verifier.config.issuer,
      subject: sub,
      email: emailOf(payload, verifier.config.emailClaim),
      emailVerified: payload.email_verified === true,
    };
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claims, expiresAtMs: (exp ?? 0) * 1000 });
    return claims;
  }

  private async verifySignature(token: string, verifier: Verifier, nowMs: number): Promise<JWTPayload> {
    try {
      const options = {
        algorithms: verifier.algorithms,
        issuer: verifier.config.issuer,
        audience: verifier.config.audience,
        currentDate: new Date(nowMs),
        clockTolerance: Math.floor(this.options.leewayMs / 1000),
        requiredClaims: ['sub', 'exp', 'iat'],
      };
      const { key } = verifier;
      const { payload } = key instanceof Uint8Array ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
      return payload;
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new AppError('token_expired', 'The token has expired: get a new one from its issuer');
      if (error instanceof joseErrors.JWTClaimValidationFailed) throw invalid(`The token's "${error.claim}" claim is not acceptable`);
      if (error instanceof joseErrors.JOSEAlgNotAllowed) throw invalid("The token's algorithm is not the one this issuer signs with");
      if (error instanceof joseErrors.JWKSNoMatchingKey) throw invalid('The token was signed by a key its issuer does not publish');
      throw invalid('The token is not valid');
    }
  }

  private verifierFor(config: TrustedIssuer): Verifier {
    if (config.kind === 'hs256') return { config, algorithms: ['HS256'], key: new TextEncoder().encode(config.secret) };
    const keys = new RemoteKeySet(config.jwksUrl, this.dependencies.fetch, this.dependencies.clock, this.dependencies.logger, this.options.jwks);
    return { config, algorithms: config.algorithms, key: (header, token) => keys.key(header, token) };
  }
}
