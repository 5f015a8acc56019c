import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keyVersion } from '../src/infra/secret-box.js';
import { fernetDecrypt, FernetError, importOllamaKeys, parseFernetKey, type FernetKey } from '../src/modules/ollama/index.js';
import { buildTestApp, capturingLogger, separateDatabaseUrl, testEnv, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, PASSWORD, register, type Pair } from './helpers/auth.js';
import { repoRoot, run } from './helpers/spawn.js';

// the example of the Fernet specification (github.com/fernet/spec, generate.json)
const SPEC_SECRET = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const SPEC_TOKEN = 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';

/** A Fernet key as Python's Fernet.generate_key() writes it. */
const newFernetSecret = () => randomBytes(32).toString('base64url') + '=';

/** What Python's Fernet(secret).encrypt(plaintext) writes, built here from the specification. */
function fernetEncrypt(secret: string, plaintext: string): string {
  const raw = Buffer.from(secret, 'base64url');
  const iv = randomBytes(16);
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigUInt64BE(1_700_000_000n);
  const cipher = createCipheriv('aes-128-cbc', raw.subarray(16), iv);
  const signed = Buffer.concat([Buffer.from([0x80]), timestamp, iv, cipher.update(plaintext, 'utf8'), cipher.final()]);
  const token = Buffer.concat([signed, createHmac('sha256', raw.subarray(0, 16)).update(signed).digest()]).toString('base64url');
  return token.padEnd(Math.ceil(token.length / 4) * 4, '=');
}

/** The token with one byte of its decoded form changed. */
function flipByte(token: string, index: number): string {
  const data = Buffer.from(token, 'base64url');
  data[index] = data[index]! ^ 0x01;
  return data.toString('base64url');
}

const specKey = (): FernetKey => parseFernetKey(SPEC_SECRET)!;

describe('Fernet tokens', () => {
  it('opens the specification example', () => {
    expect(fernetDecrypt(specKey(), SPEC_TOKEN)).toBe('hello');
    // the padding is optional, as Python writes it and as it may have been stripped
    expect(fernetDecrypt(specKey(), SPEC_TOKEN.replace(/=+$/, ''))).toBe('hello');
  });

  it('refuses a token with any byte changed, another key, or a malformed one, before decrypting anything', () => {
    const length = Buffer.from(SPEC_TOKEN, 'base64url').length;
    // version, timestamp, IV, ciphertext, HMAC
    for (const index of [0, 5, 12, 30, length - 1]) expect(() => fernetDecrypt(specKey(), flipByte(SPEC_TOKEN, index))).toThrow(FernetError);
    expect(() => fernetDecrypt(parseFernetKey(newFernetSecret())!, SPEC_TOKEN)).toThrow(FernetError);
    for (const token of ['', 'not a token', SPEC_TOKEN.slice(0, 60), `${SPEC_TOKEN}AAAA`]) expect(() => fernetDecrypt(specKey(), token)).toThrow(FernetError);
  });

  it('reads the keys Python writes, and nothing else', () => {
    const secret = newFernetSecret();
    expect(fernetDecrypt(parseFernetKey(secret)!, fernetEncrypt(secret, 'sk-0123456789abcdef'))).toBe('sk-0123456789abcdef');
    expect(parseFernetKey(` ${SPEC_SECRET}\n`)).not.toBeNull();
    for (const text of ['', 'c2hvcnQ=', SPEC_SECRET.slice(1), `${SPEC_SECRET}AAAA`, randomBytes(32).toString('hex')]) expect(parseFernetKey(text)).toBeNull();
  });
});

const ENCRYPTION_KEY = randomBytes(32);
const KEY_ALICE = 'sk-alice-0123456789abcdefAL1C';
const KEY_BOB = 'sk-bob-0123456789abcdefB0Bb';
const KEY_CAROL = 'sk-carol-0123456789abcdefCAR0';

const check = (t: TestApp, user: Pair) => injectAs(t.app, user, { method: 'GET', url: '/api/ollama/check-key' });
const reveal = (t: TestApp, user: Pair) => injectAs(t.app, user, { method: 'POST', url: '/api/ollama/get-key', payload: { password: PASSWORD } });

describe('importing the old server export', () => {
  const { logger, lines } = capturingLogger('debug');
  const secret = newFernetSecret();
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ logger, env: { OLLAMA_KEY_ENCRYPTION_KEY: ENCRYPTION_KEY.toString('base64') } });
  });
  afterAll(() => t.close());
  beforeEach(() => truncateAll(t));

  const migrate = (entries: unknown[], options: { fernetKey?: FernetKey | null; onProgress?: (done: number, total: number) => void } = {}) =>
    importOllamaKeys(
      entries,
      { keys: t.container.services.ollama.keys, accounts: t.container.services.accounts },
      { fernetKey: parseFernetKey(secret), ...options },
    );

  it('imports plain and Fernet keys readable through the API, counts the rest, and skips everything on a second run', async () => {
    const [alice, bob, carol] = [await register(t.app), await register(t.app), await register(t.app)];
    const entries = [
      { email: alice.email.toUpperCase(), api_key: KEY_ALICE, base_url: 'https://ollama.example.com', github_login: 'alice' },
      { email: bob.email, encrypted_key: fernetEncrypt(secret, KEY_BOB), base_url: null, created_at: '2024-01-01' },
      { email: 'nobody@parley.test', api_key: KEY_CAROL },
      { github_id: 4242, github_login: 'octo', api_key: KEY_CAROL },
      { email: carol.email, encrypted_key: flipByte(fernetEncrypt(secret, KEY_CAROL), 40) },
      { email: carol.email, api_key: KEY_CAROL, encrypted_key: fernetEncrypt(secret, KEY_CAROL) },
    ];
    const first = await migrate(entries);
    expect(first).toMatchObject({ imported: 2, skipped: 0, unmatched: 2, failed: 2 });
    expect(first.problems).toEqual([
      { index: 2, who: '"nobody@parley.test"', outcome: 'unmatched', reason: 'no account with this e-mail' },
      { index: 3, who: '"octo"', outcome: 'unmatched', reason: 'no e-mail, and Parley cannot match GitHub accounts yet' },
      { index: 4, who: JSON.stringify(carol.email), outcome: 'failed', reason: 'encrypted_key does not decrypt with this Fernet secret' },
      { index: 5, who: JSON.stringify(carol.email), outcome: 'failed', reason: 'needs exactly one of api_key and encrypted_key' },
    ]);

    expect((await check(t, alice)).json()).toMatchObject({ hasKey: true, masked: '********AL1C', baseUrl: 'https://ollama.example.com' });
    expect((await reveal(t, alice)).json()).toEqual({ apiKey: KEY_ALICE, baseUrl: 'https://ollama.example.com' });
    expect((await check(t, bob)).json()).toMatchObject({ hasKey: true, masked: '********B0Bb', baseUrl: null });
    expect((await reveal(t, bob)).json()).toEqual({ apiKey: KEY_BOB, baseUrl: null });
    expect((await check(t, carol)).json().hasKey).toBe(false);
    const rows = await t.container.db.query<Array<{ key_version: string; encrypted_key: Buffer }>>('SELECT key_version, encrypted_key FROM ollama_keys');
    expect(rows.map((row) => row.key_version)).toEqual([keyVersion(ENCRYPTION_KEY), keyVersion(ENCRYPTION_KEY)]);
    expect(rows.some((row) => row.encrypted_key.includes(KEY_ALICE) || row.encrypted_key.includes(KEY_BOB))).toBe(false);

    const progress: string[] = [];
    const second = await migrate(entries, { onProgress: (done, total) => progress.push(`${done}/${total}`) });
    expect(second).toMatchObject({ imported: 0, skipped: 2, unmatched: 2, failed: 2 });
    expect(second.problems).toEqual(first.problems);
    expect(progress).toEqual(['1/6', '2/6', '3/6', '4/6', '5/6', '6/6']);
    const audited = await t.container.db.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM activity_logs WHERE type = 'ollama_key_stored'`);
    expect(audited[0]!.n).toBe(2);
    expect(lines.some((line) => [KEY_ALICE, KEY_BOB, KEY_CAROL].some((key) => JSON.stringify(line).includes(key)))).toBe(false);
  });

  it('keeps a different key or base URL already in Parley, and fails what it cannot import: bad shapes, a missing secret, a second entry for one account', async () => {
    const [dana, erin] = [await register(t.app), await register(t.app)];
    await injectAs(t.app, dana, { method: 'POST', url: '/api/ollama/store-key', payload: { apiKey: 'sk-set-in-parley-0000' } });
    await migrate([{ email: erin.email, api_key: KEY_ALICE }]);

    const report = await migrate([
      { email: dana.email, api_key: KEY_BOB },
      { email: erin.email, api_key: KEY_ALICE, base_url: 'https://ollama.example.org' },
      { email: dana.email, api_key: KEY_CAROL },
      42,
      { email: erin.email },
      { email: erin.email, api_key: 'has a space' },
      { email: erin.email, api_key: KEY_ALICE, base_url: 'ftp://ollama.example.org' },
      { email: erin.email, api_key: KEY_ALICE, base_url: 'https://user:pass@ollama.example.org' },
      { api_key: KEY_ALICE },
      { email: 7, api_key: KEY_ALICE },
    ]);
    expect(report).toMatchObject({ imported: 0, skipped: 2, unmatched: 0, failed: 8 });
    expect(report.problems.map(({ index, who, reason }) => [index, who === '(no identity)' ? who : 'named', reason])).toEqual([
      [0, 'named', 'the account already has another key in Parley, which stays'],
      [1, 'named', 'the account already has another key in Parley, which stays'],
      [2, 'named', 'entry #0 is for the same account'],
      [3, '(no identity)', 'not an object with the documented fields'],
      [4, 'named', 'needs exactly one of api_key and encrypted_key'],
      [5, 'named', 'the key is not 1 to 1024 printable ASCII characters'],
      [6, 'named', 'base_url is not an http(s) URL without credentials, at most 500 characters'],
      [7, 'named', 'base_url is not an http(s) URL without credentials, at most 500 characters'],
      [8, '(no identity)', 'no email, github_id or github_login'],
      [9, '(no identity)', 'not an object with the documented fields'],
    ]);
    expect((await reveal(t, dana)).json()).toEqual({ apiKey: 'sk-set-in-parley-0000', baseUrl: null });
    expect((await reveal(t, erin)).json()).toEqual({ apiKey: KEY_ALICE, baseUrl: null });

    const withoutSecret = await migrate([{ email: dana.email, encrypted_key: fernetEncrypt(secret, KEY_BOB) }], { fernetKey: null });
    expect(withoutSecret.problems).toEqual([{ index: 0, who: JSON.stringify(dana.email), outcome: 'failed', reason: 'encrypted_key needs --fernet-secret' }]);
  });
});

describe('npm run ollama:migrate', () => {
  const script = path.join(repoRoot, 'dist/scripts/ollama-migrate.js');
  const secret = newFernetSecret();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-ollama-migrate-'));
  let t: TestApp;
  let env: Record<string, string | undefined>;
  beforeAll(async () => {
    env = await testEnv({ DATABASE_URL: await separateDatabaseUrl(), OLLAMA_KEY_ENCRYPTION_KEY: ENCRYPTION_KEY.toString('hex') });
    t = await buildTestApp({ env });
  });
  afterAll(() => t.close());

  async function cli(args: string[]) {
    const spawned = run(process.execPath, [script, ...args], { cwd: dir, env });
    const code = await spawned.exit;
    return { code, output: spawned.output() };
  }
  const file = (name: string, content: string) => {
    writeFileSync(path.join(dir, name), content);
    return path.join(dir, name);
  };

  it('imports, prints the counts and the entries left out without a key, exits 2 on failures, and skips everything the second time', async () => {
    const [alice, bob] = [await register(t.app), await register(t.app)];
    const fine = [
      { email: alice.email, api_key: KEY_ALICE },
      { email: bob.email.toUpperCase(), encrypted_key: fernetEncrypt(secret, KEY_BOB), base_url: 'https://ollama.example.com' },
      { email: 'nobody@parley.test', api_key: KEY_CAROL },
      { github_id: '4242', api_key: KEY_CAROL },
    ];
    const badToken = flipByte(fernetEncrypt(secret, KEY_CAROL), 50);
    const input = file('export.json', JSON.stringify({ keys: [...fine, { email: bob.email, github_login: 'bob', encrypted_key: badToken }] }));
    const secrets = [KEY_ALICE, KEY_BOB, KEY_CAROL, secret, secret.slice(0, 43), badToken];

    const first = await cli(['--input', input, '--fernet-secret', secret]);
    expect(first.code, first.output).toBe(2);
    expect(first.output).toContain('processed 5/5\nimported 2, skipped 0, unmatched 2, failed 1\n');
    expect(first.output).toContain('unmatched #2 "nobody@parley.test": no account with this e-mail\n');
    expect(first.output).toContain('unmatched #3 "github 4242": no e-mail, and Parley cannot match GitHub accounts yet\n');
    expect(first.output).toContain(`failed #4 ${JSON.stringify(bob.email)}: encrypted_key does not decrypt with this Fernet secret\n`);
    expect((await reveal(t, alice)).json()).toEqual({ apiKey: KEY_ALICE, baseUrl: null });
    expect((await reveal(t, bob)).json()).toEqual({ apiKey: KEY_BOB, baseUrl: 'https://ollama.example.com' });

    const again = await cli(['--input', input, '--fernet-secret', secret]);
    expect(again.code, again.output).toBe(2);
    expect(again.output).toContain('imported 0, skipped 2, unmatched 2, failed 1\n');

    const secretFile = file('fernet.key', `${secret}\n`);
    const clean = await cli(['--input', file('clean.json', JSON.stringify(fine)), '--fernet-secret-file', secretFile]);
    expect(clean.code, clean.output).toBe(0);
    expect(clean.output).toContain('imported 0, skipped 2, unmatched 2, failed 0\n');

    for (const output of [first.output, again.output, clean.output]) expect(secrets.filter((text) => output.includes(text))).toEqual([]);
  }, 120_000);

  it('exits 1 on a bad invocation or an unreadable export, without echoing its content', async () => {
    const missing = await cli(['--input', path.join(dir, 'absent.json')]);
    expect([missing.code, missing.output.trim()]).toEqual([1, `parley: cannot read the export ${path.join(dir, 'absent.json')} (ENOENT)`]);
    const broken = file('broken.json', `[{"email": "a@parley.test", "api_key": "${KEY_ALICE}" "base_url": null}]`);
    const notJson = await cli(['--input', broken]);
    expect([notJson.code, notJson.output.trim()]).toEqual([1, `parley: ${broken} is not JSON`]);
    const notAnExport = await cli(['--input', file('object.json', '{"users": []}')]);
    expect([notAnExport.code, notAnExport.output.trim()]).toEqual([
      1,
      `parley: ${path.join(dir, 'object.json')} is neither an array of entries nor { "keys": [...] }`,
    ]);
    const badSecret = await cli(['--input', broken, '--fernet-secret', KEY_ALICE]);
    expect([badSecret.code, badSecret.output.trim()]).toEqual([1, 'parley: the Fernet secret is not a Fernet key (32 bytes in url-safe base64)']);
    // a key typed where no option takes it
    const stray = await cli(['--input', broken, KEY_ALICE]);
    expect([stray.code, stray.output.trim()]).toEqual([
      1,
      'parley: usage: npm run ollama:migrate -- --input export.json [--fernet-secret KEY | --fernet-secret-file PATH]',
    ]);
  }, 60_000);
});
