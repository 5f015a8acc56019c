import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { AccountsService } from '../users/index.js';
import { storeKeyBodySchema } from './schemas.js';
import type { OllamaKeyService } from './service.js';

/** The same message whatever is wrong with a token (malformed, tampered, another key): nothing to learn from it. */
export class FernetError extends Error {
  override name = 'FernetError';
  constructor() {
    super('the Fernet token does not verify');
  }
}

/** A Fernet key split in its halves: the first signs (HMAC-SHA256), the second encrypts (AES-128-CBC). */
export interface FernetKey {
  signing: Buffer;
  encryption: Buffer;
}

/** A Fernet key (Python's `Fernet.generate_key()`: 32 bytes in url-safe base64); null when it is not one. */
export function parseFernetKey(text: string): FernetKey | null {
  const trimmed = text.trim();
  // Python decodes keys leniently enough to take the standard alphabet too, and so does Buffer's 'base64'
  if (!/^[A-Za-z0-9_+/-]{43}=?$/.test(trimmed)) return null;
  const raw = Buffer.from(trimmed, 'base64');
  return raw.length === 32 ? { signing: raw.subarray(0, 16), encryption: raw.subarray(16) } : null;
}

const VERSION = 0x80;
/** Version byte, 8-byte timestamp, 16-byte IV. */
const HEADER_BYTES = 25;
const BLOCK_BYTES = 16;
const HMAC_BYTES = 32;

/**
 * Opens a Fernet token (Python `cryptography.fernet`): base64url of 0x80, a big-endian timestamp,
 * the IV, the AES-128-CBC ciphertext (PKCS7) and an HMAC-SHA256 of all that, checked in constant
 * time before anything is decrypted. The timestamp is not checked: the exported keys are old on
 * purpose.
 */
export function fernetDecrypt(key: FernetKey, token: string): string {
  const trimmed = token.trim();
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(trimmed)) throw new FernetError();
  const data = Buffer.from(trimmed, 'base64url');
  const bodyBytes = data.length - HEADER_BYTES - HMAC_BYTES;
  if (data[0] !== VERSION || bodyBytes < BLOCK_BYTES || bodyBytes % BLOCK_BYTES !== 0) throw new FernetError();
  const mac = createHmac('sha256', key.signing)
    .update(data.subarray(0, data.length - HMAC_BYTES))
    .digest();
  if (!timingSafeEqual(mac, data.subarray(data.length - HMAC_BYTES))) throw new FernetError();
  try {
    const decipher = createDecipheriv('aes-128-cbc', key.encryption, data.subarray(9, HEADER_BYTES));
    return Buffer.concat([decipher.update(data.subarray(HEADER_BYTES, data.length - HMAC_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new FernetError();
  }
}

/** One entry of the old server's export (see scripts/ollama-migrate.ts); other fields are ignored. */
const entrySchema = z.object({
  email: z.string().nullish(),
  github_id: z.union([z.string(), z.number()]).nullish(),
  github_login: z.string().nullish(),
  api_key: z.string().nullish(),
  encrypted_key: z.string().nullish(),
  base_url: z.string().nullish(),
});
type Entry = z.infer<typeof entrySchema>;

export type ImportOutcome = 'imported' | 'skipped' | 'unmatched' | 'failed';

/** An entry not imported: its index in the export and who it names, never its key. */
export interface ImportProblem {
  index: number;
  who: string;
  outcome: 'skipped' | 'unmatched' | 'failed';
  reason: string;
}

export interface ImportReport {
  imported: number;
  skipped: number;
  unmatched: number;
  failed: number;
  problems: ImportProblem[];
}

/** The entries of an export: the document itself when it is an array, or its `keys` array; null otherwise. */
export function exportEntries(document: unknown): unknown[] | null {
  if (Array.isArray(document)) return document as unknown[];
  const keys = document && typeof document === 'object' ? (document as { keys?: unknown }).keys : undefined;
  return Array.isArray(keys) ? keys : null;
}

/** Who an entry names, quoted and escaped (an export's text reaches the operator's terminal). */
function whoOf(entry: unknown): string {
  const parsed = entrySchema.safeParse(entry);
  const who = parsed.success
    ? (parsed.data.email ?? parsed.data.github_login ?? (parsed.data.github_id != null ? `github ${parsed.data.github_id}` : null))
    : null;
  return who === null ? '(no identity)' : JSON.stringify(who.slice(0, 120));
}

type Resolved = { outcome: 'unmatched' | 'failed'; reason: string } | { outcome: 'ready'; userId: string; apiKey: string; baseUrl: string | null };

/**
 * Imports the Ollama keys of the old Python server's export (`npm run ollama:migrate`): each
 * entry's account is found by e-mail, its key decrypted when Fernet-encrypted, sealed again
 * with Parley's key, and read back to check it. Entries run one after the other; running the
 * same export again skips what is already there.
 */
export async function importOllamaKeys(
  entries: readonly unknown[],
  dependencies: { keys: Pick<OllamaKeyService, 'importKey'>; accounts: Pick<AccountsService, 'findIdByEmail'> },
  options: { fernetKey: FernetKey | null; onProgress?: (done: number, total: number) => void },
): Promise<ImportReport> {
  const report: ImportReport = { imported: 0, skipped: 0, unmatched: 0, failed: 0, problems: [] };
  /** The entry that gave each account its key: a later one for the same account would undo it on every run. */
  const firstEntryOf = new Map<string, number>();
  for (const [index, entry] of entries.entries()) {
    const resolved = await resolve(entry, dependencies.accounts, options.fernetKey);
    let outcome: ImportOutcome;
    if (resolved.outcome !== 'ready') {
      outcome = resolved.outcome;
      report.problems.push({ index, who: whoOf(entry), ...resolved });
    } else if (firstEntryOf.has(resolved.userId)) {
      outcome = 'failed';
      report.problems.push({ index, who: whoOf(entry), outcome, reason: `entry #${firstEntryOf.get(resolved.userId)} is for the same account` });
    } else {
      firstEntryOf.set(resolved.userId, index);
      const imported = await dependencies.keys.importKey(resolved.userId, { apiKey: resolved.apiKey, baseUrl: resolved.baseUrl });
      outcome = imported === 'kept' ? 'skipped' : imported;
      if (imported === 'kept')
        report.problems.push({ index, who: whoOf(entry), outcome: 'skipped', reason: 'the account already has another key in Parley, which stays' });
      if (imported === 'failed') report.problems.push({ index, who: whoOf(entry), outcome: 'failed', reason: 'the stored key did not read back the same' });
    }
    report[outcome] += 1;
    options.onProgress?.(index + 1, entries.length);
  }
  return report;
}

async function resolve(raw: unknown, accounts: Pick<AccountsService, 'findIdByEmail'>, fernetKey: FernetKey | null): Promise<Resolved> {
  const parsed = entrySchema.safeParse(raw);
  if (!parsed.success) return { outcome: 'failed', reason: 'not an object with the documented fields' };
  const entry: Entry = parsed.data;
  if ((entry.api_key == null) === (entry.encrypted_key == null)) return { outcome: 'failed', reason: 'needs exactly one of api_key and encrypted_key' };
  const baseUrl = entry.base_url ? storeKeyBodySchema.shape.baseUrl.safeParse(entry.base_url) : { success: true as const, data: null };
  if (!baseUrl.success) return { outcome: 'failed', reason: 'base_url is not an http(s) URL without credentials, at most 500 characters' };

  if (!entry.email) {
    return entry.github_id != null || entry.github_login
      ? { outcome: 'unmatched', reason: 'no e-mail, and Parley cannot match GitHub accounts yet' }
      : { outcome: 'failed', reason: 'no email, github_id or github_login' };
  }
  const userId = await accounts.findIdByEmail(entry.email);
  if (!userId) return { outcome: 'unmatched', reason: 'no account with this e-mail' };

  let apiKey = entry.api_key;
  if (entry.encrypted_key != null) {
    if (!fernetKey) return { outcome: 'failed', reason: 'encrypted_key needs --fernet-secret' };
    try {
      apiKey = fernetDecrypt(fernetKey, entry.encrypted_key);
    } catch (error) {
      if (!(error instanceof FernetError)) throw error;
      return { outcome: 'failed', reason: 'encrypted_key does not decrypt with this Fernet secret' };
    }
  }
  const key = storeKeyBodySchema.shape.apiKey.safeParse(apiKey);
  if (!key.success) return { outcome: 'failed', reason: 'the key is not 1 to 1024 printable ASCII characters' };
  return { outcome: 'ready', userId, apiKey: key.data, baseUrl: baseUrl.data ?? null };
}
