import type { Redis } from 'ioredis';
import { isIP } from 'node:net';
import type { Clock } from '../../infra/clock.js';
import { classifyAddress } from '../../infra/outbound.js';
import type { LockService } from '../../infra/locks.js';
import type { Logger } from '../../infra/logger.js';
import { type SecretBox, SecretBoxError } from '../../infra/secret-box.js';
import type { AuthContext } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import type { AuditService } from '../audit/index.js';
import type { AuthService } from '../auth/index.js';
import { type OllamaRepository, type KeyRecord } from './repository.js';

/** What a user sees of their stored key: never the key itself. */
export interface KeyStatus {
  hasKey: boolean;
  /** e.g. `********x7Qa`: enough to recognise it. */
  masked: string | null;
  baseUrl: string | null;
  updatedAt: Date | null;
}

export interface RequestMeta {
  ip: string;
  userAgent: string | null;
}

export interface KeySettings {
  /** The operator's OLLAMA_BASE_URL: a user may name it even on a private address. */
  trustedBaseUrl: string | null;
  /** A sign-in younger than this lets the key be read back without the password. */
  revealWithinMs: number;
  /** Reads of the key back, per user per window. */
  revealLimit: { max: number; windowMs: number };
}

const ROTATION_LOCK = 'ollama.rotate-key';
/** A rotation re-seals batch by batch; one that runs longer than this stops and can be run again. */
const ROTATION_LOCK_TTL_MS = 60 * 60_000;

const HINT_CHARS = 4;
/** Keys shorter than this show no characters at all. */
const MIN_HINTED_LENGTH = 12;

const hintOf = (apiKey: string) => (apiKey.length >= MIN_HINTED_LENGTH ? apiKey.slice(-HINT_CHARS) : '');
const status = (row: KeyRecord | null): KeyStatus =>
  row
    ? { hasKey: true, masked: `${'*'.repeat(8)}${row.keyHint}`, baseUrl: row.baseUrl, updatedAt: row.updatedAt }
    : { hasKey: false, masked: null, baseUrl: null, updatedAt: null };

/** The user id is the associated data: a ciphertext moved to another user's row does not open. */
const associatedData = (userId: string) => `ollama-key:${userId}`;

/**
 * Users' Ollama API keys, sealed at rest (AES-256-GCM). A key is only ever returned by
 * `revealKey` (recent sign-in or password, rate-limited, audited) and used by the proxy; it is
 * never logged and never part of an error.
 */
export class OllamaKeyService {
  private readonly repository: OllamaRepository;

  constructor(
    private readonly dependencies: {
      repository: OllamaRepository;
      box: SecretBox;
      redis: Redis;
      clock: Clock;
      logger: Logger;
      audit: AuditService;
      auth: AuthService;
      locks: LockService;
    },
    private readonly settings: KeySettings,
  ) {
    this.repository = dependencies.repository;
  }

  async store(userId: string, input: { apiKey: string; baseUrl: string | null }, meta: RequestMeta): Promise<KeyStatus> {
    if (input.baseUrl && !this.mayPointAt(input.baseUrl))
      throw new AppError('base_url_refused', 'This Ollama base URL is a private or loopback address this server may not reach: use a public one');
    const sealed = this.dependencies.box.seal(input.apiKey, associatedData(userId));
    const row = await this.repository.upsert(userId, sealed, hintOf(input.apiKey), input.baseUrl, this.dependencies.clock.now());
    await this.dependencies.audit.record({ type: 'ollama_key_stored', userId, ip: meta.ip, userAgent: meta.userAgent, metadata: { baseUrl: input.baseUrl } });
    return status(row);
  }

  /**
   * A base URL whose host is written as an address (or `localhost`) must be public, unless it is
   * the operator's own Ollama: told at once rather than at the first chat. A name is vetted
   * after DNS resolution, at each use (the proxy).
   */
  private mayPointAt(baseUrl: string): boolean {
    const url = new URL(baseUrl);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    if (this.settings.trustedBaseUrl) {
      const trusted = new URL(this.settings.trustedBaseUrl);
      if (trusted.hostname.replace(/^\[|\]$/g, '') === host && (trusted.port || (trusted.protocol === 'https:' ? '443' : '80')) === port) return true;
    }
    if (host.toLowerCase() === 'localhost' || host.toLowerCase().endsWith('.localhost')) return false;
    return isIP(host) === 0 || classifyAddress(host) === 'public';
  }

  async check(userId: string): Promise<KeyStatus> {
    return status(await this.repository.find(userId));
  }

  async delete(userId: string, meta: RequestMeta): Promise<void> {
    if (await this.repository.delete(userId))
      await this.dependencies.audit.record({ type: 'ollama_key_deleted', userId, ip: meta.ip, userAgent: meta.userAgent });
  }

  /**
   * The key in clear, for its owner only: after a recent sign-in or with the password, at most
   * `revealLimit` times a window, and written to the activity log.
   */
  async revealKey(auth: AuthContext, password: string | undefined, meta: RequestMeta): Promise<{ apiKey: string; baseUrl: string | null }> {
    const proof = await this.dependencies.auth.confirmIdentity(auth, password, this.settings.revealWithinMs);
    await this.countReveal(auth.userId);
    const row = await this.repository.find(auth.userId);
    if (!row) throw new AppError('not_found', 'You have no stored Ollama key');
    const apiKey = this.open(row);
    await this.dependencies.audit.record({ type: 'ollama_key_revealed', userId: auth.userId, ip: meta.ip, userAgent: meta.userAgent, metadata: { proof } });
    return { apiKey, baseUrl: row.baseUrl };
  }

  /** The user's key and base URL for a call upstream (the proxy), or null without a stored key. */
  async credentialsOf(userId: string): Promise<{ apiKey: string; baseUrl: string | null } | null> {
    const row = await this.repository.find(userId);
    return row && { apiKey: this.open(row), baseUrl: row.baseUrl };
  }

  /**
   * Stores a key brought from the old server (`npm run ollama:migrate`), unless the user already
   * has this very key and base URL, then reads it back from the database and opens it: 'failed'
   * when what is stored does not give the same key and URL back.
   */
  async importKey(userId: string, input: { apiKey: string; baseUrl: string | null }): Promise<'imported' | 'skipped' | 'kept' | 'failed'> {
    const existing = await this.repository.find(userId);
    // the same key: imported before; another key: the user set it in Parley since, and it stays
    if (existing) return existing.baseUrl === input.baseUrl && this.openOrNull(existing) === input.apiKey ? 'skipped' : 'kept';
    const { box, clock, audit } = this.dependencies;
    await this.repository.upsert(userId, box.seal(input.apiKey, associatedData(userId)), hintOf(input.apiKey), input.baseUrl, clock.now());
    await audit.record({ type: 'ollama_key_stored', userId, userAgent: 'npm run ollama:migrate', metadata: { baseUrl: input.baseUrl, imported: true } });
    // read back the way the proxy reads it
    const stored = await this.credentialsOf(userId).catch((error: unknown) => {
      if (error instanceof AppError) return null;
      throw error;
    });
    return stored?.apiKey === input.apiKey && stored.baseUrl === input.baseUrl ? 'imported' : 'failed';
  }

  /**
   * Re-seals every key not sealed with the current encryption key (`npm run ollama:rotate-key`),
   * batch by batch while the server runs: until it finishes, the servers need the old key in
   * OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS. Keys no known key opens are counted and left as they are.
   * One rotation at a time across instances: another waits up to `waitMs` for the running one,
   * then fails with lock_unavailable.
   */
  async rotate(
    batchSize: number,
    { waitMs = 0, onBatch }: { waitMs?: number; onBatch?: (done: { resealed: number; unreadable: number }) => void } = {},
  ): Promise<{ resealed: number; unreadable: number }> {
    return this.dependencies.locks.withLock(ROTATION_LOCK, { ttl: ROTATION_LOCK_TTL_MS, wait: waitMs }, ({ signal }) =>
      this.resealAll(batchSize, signal, onBatch),
    );
  }

  private async resealAll(
    batchSize: number,
    signal: AbortSignal,
    onBatch?: (done: { resealed: number; unreadable: number }) => void,
  ): Promise<{ resealed: number; unreadable: number }> {
    const { box } = this.dependencies;
    const totals = { resealed: 0, unreadable: 0 };
    for (let after: string | null = null; ;) {
      // past the lock's ttl another rotation may start: this one stops between batches
      signal.throwIfAborted();
      const batch = await this.repository.reseal(box.currentVersion, after, batchSize, (row) => {
        const apiKey = this.openOrNull(row);
        return apiKey === null ? null : box.seal(apiKey, associatedData(row.userId));
      });
      totals.resealed += batch.resealed;
      totals.unreadable += batch.unreadable;
      onBatch?.({ ...totals });
      if (batch.last === null) return totals;
      after = batch.last;
    }
  }

  /** How many stored keys each encryption key version sealed, the current one marked. */
  async versions(): Promise<{ current: string; versions: Array<{ version: string; rows: number }> }> {
    return { current: this.dependencies.box.currentVersion, versions: await this.repository.countByVersion() };
  }

  private open(row: KeyRecord): string {
    try {
      return this.dependencies.box.open({ ciphertext: row.encryptedKey, nonce: row.nonce, version: row.keyVersion }, associatedData(row.userId));
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      // which key version failed helps the operator (a missing OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS); the user learns nothing
      this.dependencies.logger.error(
        { userId: row.userId, keyVersion: row.keyVersion, known: this.dependencies.box.knows(row.keyVersion) },
        'a stored Ollama key does not decrypt',
      );
      throw new AppError('key_unreadable', 'Your stored Ollama key cannot be used; store it again');
    }
  }

  /** The key, or null when no known key opens it. */
  private openOrNull(row: KeyRecord): string | null {
    try {
      return this.dependencies.box.open({ ciphertext: row.encryptedKey, nonce: row.nonce, version: row.keyVersion }, associatedData(row.userId));
    } catch (error) {
      if (error instanceof SecretBoxError) return null;
      throw error;
    }
  }

  private async countReveal(userId: string): Promise<void> {
    const { max, windowMs } = this.settings.revealLimit;
    const key = `ollama:key-reveals:${userId}`;
    const [[, count], [, ttl]] = (await this.dependencies.redis.multi().incr(key).pttl(key).exec()) as [[null, number], [null, number]];
    if (ttl < 0) await this.dependencies.redis.pexpire(key, windowMs);
    if (count > max) {
      const retryAfter = Math.ceil((ttl > 0 ? ttl : windowMs) / 1000);
      throw new AppError(
        'rate_limited',
        `The key can be read back ${max} times per ${Math.round(windowMs / 60_000)} minutes`,
        { retryAfterSeconds: retryAfter },
        {
          'retry-after': String(retryAfter),
        },
      );
    }
  }
}
