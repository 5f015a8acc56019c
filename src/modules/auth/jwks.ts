import { createLocalJWKSet, errors as joseErrors, type FlattenedJWSInput, type JSONWebKeySet, type JWTHeaderParameters } from 'jose';
import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import type { GuardedFetch } from '../../infra/outbound.js';
import { AppError } from '../../shared/errors.js';

export interface KeySetOptions {
  /** The whole fetch (connection, headers, body) gives up after this long. */
  timeoutMs: number;
  /** Keys are fetched again after this long. */
  cacheTtlMs: number;
  /** At most one fetch per this interval: an unknown kid, or a provider that failed, waits for it. */
  refetchIntervalMs: number;
}

/** A JWK Set is a few keys: a provider answering megabytes is not answering a JWKS. */
const MAX_JWKS_BYTES = 512 * 1024;

type Fetched = 'fetched' | 'failed' | 'skipped';

async function readCapped(response: Response, maxBytes: number): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`the JWKS is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * An issuer's public keys, fetched from its JWKS URL and cached. The fetch has a timeout and
 * never follows a redirect (the guarded fetch refuses it); a token naming a kid the cache lacks
 * fetches the set again, at most once per `refetchIntervalMs`, so a flood of made-up kids
 * costs the provider one request. Cached keys keep serving while the provider cannot be
 * reached; with none, verification answers 503 identity_provider_unavailable.
 */
export class RemoteKeySet {
  private keys: ReturnType<typeof createLocalJWKSet> | null = null;
  private fetchedAtMs = Number.NEGATIVE_INFINITY;
  private attemptedAtMs = Number.NEGATIVE_INFINITY;
  private loading: Promise<Fetched> | null = null;

  constructor(
    private readonly url: string,
    private readonly fetch: GuardedFetch,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: KeySetOptions,
  ) {}

  /** The key that verifies a token with this header (jwtVerify's key function). */
  async key(header: JWTHeaderParameters, token: FlattenedJWSInput) {
    const nowMs = this.clock.now().getTime();
    if (!this.keys || nowMs - this.fetchedAtMs >= this.options.cacheTtlMs) await this.refresh(nowMs);
    if (!this.keys) throw this.unavailable();
    try {
      return await this.keys(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      // the provider may have rotated its keys since the last fetch
      const fetched = await this.refresh(nowMs);
      if (fetched === 'failed') throw this.unavailable();
      if (fetched === 'skipped') throw error;
      return this.keys(header, token);
    }
  }

  private unavailable(): AppError {
    return new AppError('identity_provider_unavailable', "The token's identity provider could not be reached to check it; try again shortly");
  }

  /** One fetch at a time, and none within `refetchIntervalMs` of the last attempt. */
  private async refresh(nowMs: number): Promise<Fetched> {
    if (this.loading) return this.loading;
    if (nowMs - this.attemptedAtMs < this.options.refetchIntervalMs) return 'skipped';
    this.attemptedAtMs = nowMs;
    this.loading = this.load()
      .then((): Fetched => 'fetched')
      .catch((error: unknown): Fetched => {
        this.logger.warn({ err: { message: error instanceof Error ? error.message : String(error) }, jwksUrl: this.url }, 'could not fetch a JWKS');
        return 'failed';
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  private async load(): Promise<void> {
    const response = await this.fetch(this.url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.options.timeoutMs) });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`the JWKS URL answered ${response.status}`);
    }
    const document = JSON.parse(await readCapped(response, MAX_JWKS_BYTES)) as JSONWebKeySet;
    if (!Array.isArray(document?.keys)) throw new Error('the JWKS URL answered no "keys" list');
    this.keys = createLocalJWKSet(document);
    this.fetchedAtMs = this.clock.now().getTime();
  }
}
