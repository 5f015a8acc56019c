import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A 32-byte key written as base64 (standard or url-safe) or hex; null when it is not one. */
export function parseEncryptionKey(text: string): Buffer | null {
  const trimmed = text.trim();
  const candidates = /^[0-9a-fA-F]{64}$/.test(trimmed) ? [Buffer.from(trimmed, 'hex')] : [Buffer.from(trimmed, 'base64'), Buffer.from(trimmed, 'base64url')];
  return candidates.find((key) => key.length === 32) ?? null;
}

/** A key's stable name, stored with what it sealed: the first 8 hex digits of its SHA-256 (the key itself is never stored). */
export function keyVersion(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** What `SecretBox.seal` returns: the ciphertext with its GCM tag appended, the nonce, and the key's version. */
export interface Sealed {
  ciphertext: Buffer;
  nonce: Buffer;
  version: string;
}

/** The same message for every way opening can fail (tampered, wrong user, unknown key): nothing to learn from it. */
export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
  constructor() {
    super('the secret cannot be decrypted');
  }
}

/**
 * AES-256-GCM with a random 96-bit nonce per seal and associated data binding a secret to its
 * owner (a row copied to another user does not open). Seals with the current key, opens with
 * the current or any previous one: a key rotation re-seals row by row while both work.
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  readonly currentVersion: string;

  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    for (const key of [current, ...previous]) {
      if (key.length !== 32) throw new Error('an AES-256 key is 32 bytes');
      this.keys.set(keyVersion(key), key);
    }
    this.currentVersion = keyVersion(current);
  }

  knows(version: string): boolean {
    return this.keys.has(version);
  }

  seal(plaintext: string, associatedData: string): Sealed {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentVersion)!, nonce);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext, nonce, version: this.currentVersion };
  }

  open(sealed: Sealed, associatedData: string): string {
    const key = this.keys.get(sealed.version);
    if (!key || sealed.nonce.length !== NONCE_BYTES || sealed.ciphertext.length < TAG_BYTES) throw new SecretBoxError();
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.nonce);
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(sealed.ciphertext.subarray(sealed.ciphertext.length - TAG_BYTES));
      return Buffer.concat([decipher.update(sealed.ciphertext.subarray(0, sealed.ciphertext.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError();
    }
  }
}
