import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { exportEntries, importOllamaKeys, parseFernetKey, type FernetKey } from '../src/modules/ollama/index.js';
import { runWithContainer } from './cli-config.js';

/**
 * npm run ollama:migrate -- --input export.json [--fernet-secret KEY | --fernet-secret-file PATH]
 *
 * Imports the users' Ollama API keys exported from the old Python server, sealed again under
 * OLLAMA_KEY_ENCRYPTION_KEY. The export is a JSON array, or `{ "keys": [...] }`, of entries:
 *
 *   { "email"?: string, "github_id"?: string | number, "github_login"?: string,
 *     "api_key"?: string, "encrypted_key"?: string, "base_url"?: string | null }
 *
 * with exactly one of `api_key` (in clear) and `encrypted_key` (a token of Python's
 * `cryptography.fernet`, opened with the Fernet key given as --fernet-secret or, kept out of the
 * process list, in the file --fernet-secret-file). Accounts are matched by e-mail (any case, not
 * deleted ones); Parley has no GitHub accounts yet, so an entry with only GitHub ids counts as
 * unmatched. `base_url` (absent, null or empty: the server's OLLAMA_BASE_URL) is stored as given
 * (the proxy vets it at each use). Each stored key is read back and decrypted to check it; a user
 * who already has a key in Parley keeps it (skipped: the same one was imported before, or the user
 * set another since), so running it again is safe. Prints the
 * counts, then one line per entry not imported (its index from 0 and e-mail or login, never a
 * key). Exit 0: nothing failed; 2: some entries failed; 1: bad invocation or unreadable export.
 */
const USAGE = 'usage: npm run ollama:migrate -- --input export.json [--fernet-secret KEY | --fernet-secret-file PATH]';

function fail(message: string): never {
  console.error(`parley: ${message}`);
  process.exit(1);
}

let values: { input?: string; 'fernet-secret'?: string; 'fernet-secret-file'?: string };
try {
  ({ values } = parseArgs({ options: { input: { type: 'string' }, 'fernet-secret': { type: 'string' }, 'fernet-secret-file': { type: 'string' } } }));
} catch {
  // parseArgs names what it did not expect, which may be a secret typed in the wrong place
  fail(USAGE);
}
if (!values.input) fail(USAGE);
if (values['fernet-secret'] !== undefined && values['fernet-secret-file'] !== undefined) fail('give --fernet-secret or --fernet-secret-file, not both');

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return fail(`cannot read ${what} ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

let fernetKey: FernetKey | null = null;
const secret = values['fernet-secret'] ?? (values['fernet-secret-file'] && read(values['fernet-secret-file'], 'the Fernet secret'));
if (secret !== undefined) {
  fernetKey = parseFernetKey(secret);
  if (!fernetKey) fail('the Fernet secret is not a Fernet key (32 bytes in url-safe base64)');
}

let document: unknown;
try {
  document = JSON.parse(read(values.input, 'the export'));
} catch {
  // JSON.parse's message quotes the text around the error, which may be a key
  fail(`${values.input} is not JSON`);
}
const entries = exportEntries(document) ?? fail(`${values.input} is neither an array of entries nor { "keys": [...] }`);

/** A bar redrawn in place on a terminal; a line every 100 entries (and the last) otherwise. */
function progress(done: number, total: number): void {
  if (process.stdout.isTTY) {
    const filled = Math.round((30 * done) / total);
    process.stdout.write(`\r[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
  } else if (done % 100 === 0 || done === total) {
    console.log(`processed ${done}/${total}`);
  }
}

await runWithContainer(async (container) => {
  const report = await importOllamaKeys(
    entries,
    { keys: container.services.ollama.keys, accounts: container.services.accounts },
    { fernetKey, onProgress: progress },
  );
  console.log(`imported ${report.imported}, skipped ${report.skipped}, unmatched ${report.unmatched}, failed ${report.failed}`);
  for (const problem of report.problems) console.log(`${problem.outcome} #${problem.index} ${problem.who}: ${problem.reason}`);
  return report.failed > 0 ? 2 : 0;
});
