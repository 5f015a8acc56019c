import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The local payment provider's webhook signing secret. */
export const LOCAL_PAYMENTS_SECRET_FILE = 'local-payments-webhook.secret';
/** The development key that encrypts stored Ollama API keys (production sets OLLAMA_KEY_ENCRYPTION_KEY). */
export const OLLAMA_KEY_FILE = 'ollama-key-encryption.key';

/**
 * A development secret (32 random bytes, base64url) in `dir/file`: generated on first start
 * next to the development JWT keys, then read back, so restarts and instances sharing the
 * folder agree. Written whole to a temporary file, then linked into place (which fails if it
 * exists): two first starts at once both read the one secret that won.
 */
export async function loadGeneratedSecret(dir: string, fileName: string): Promise<string> {
  const file = path.join(dir, fileName);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const candidate = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(candidate, randomBytes(32).toString('base64url'), { mode: 0o600 });
  try {
    await link(candidate, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(candidate, { force: true });
  }
  const secret = (await readFile(file, 'utf8')).trim();
  if (secret.length < 32) throw new Error(`${file} holds no usable secret: delete it to have a new one generated`);
  return secret;
}
