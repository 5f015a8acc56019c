import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keyVersion } from '../src/infra/secret-box.js';
import { buildTestApp, capturingLogger, separateDatabaseUrl, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, PASSWORD, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const API_KEY = 'sk-ollama-0123456789abcdefXYZ9';
const keyA = randomBytes(32);
const keyB = randomBytes(32);

const store = (t: TestApp, caller: Pair, payload: Record<string, unknown>) =>
  injectAs(t.app, caller, { method: 'POST', url: '/api/ollama/store-key', payload });
const check = (t: TestApp, caller: Pair) => injectAs(t.app, caller, { method: 'GET', url: '/api/ollama/check-key' });
const reveal = (t: TestApp, caller: Pair, password?: string) =>
  password === undefined
    ? injectAs(t.app, caller, { method: 'GET', url: '/api/ollama/get-key' })
    : injectAs(t.app, caller, { method: 'POST', url: '/api/ollama/get-key', payload: { password } });
const row = async (t: TestApp, userId: string) =>
  (
    await t.container.db.query<Array<{ encrypted_key: Buffer; nonce: Buffer; key_version: string; key_hint: string }>>(
      'SELECT encrypted_key, nonce, key_version, key_hint FROM ollama_keys WHERE user_id = $1',
      [userId],
    )
  )[0];

describe('stored Ollama keys', () => {
  const clock = manualClock();
  const { logger, lines } = capturingLogger('debug');
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ clock, logger, env: { OLLAMA_KEY_ENCRYPTION_KEY: keyA.toString('base64'), OLLAMA_KEY_REVEAL_LIMIT: '3/1h' } });
  });
  afterAll(() => t.close());
  beforeEach(() => truncateAll(t));

  it('stores a key sealed with AES-256-GCM, shows it masked, and never logs it', async () => {
    const user = await register(t.app);
    expect((await check(t, user)).json()).toEqual({ hasKey: false, masked: null, baseUrl: null, updatedAt: null });
    const stored = await store(t, user, { apiKey: API_KEY, baseUrl: 'https://ollama.example.com' });
    expect(stored.statusCode).toBe(200);
    expect(stored.json()).toMatchObject({ hasKey: true, masked: '********XYZ9', baseUrl: 'https://ollama.example.com' });
    expect((await check(t, user)).json()).toEqual(stored.json());

    const first = (await row(t, user.user.id))!;
    expect(first.nonce).toHaveLength(12);
    expect(first.key_version).toBe(keyVersion(keyA));
    expect(first.encrypted_key.includes(Buffer.from(API_KEY))).toBe(false);
    expect(first.encrypted_key).toHaveLength(Buffer.byteLength(API_KEY) + 16);
    // a new nonce for every write
    await store(t, user, { apiKey: API_KEY });
    const second = (await row(t, user.user.id))!;
    expect(second.nonce.equals(first.nonce)).toBe(false);
    expect((await check(t, user)).json().baseUrl).toBeNull();

    const short = await register(t.app);
    expect((await store(t, short, { apiKey: 'tiny' })).json().masked).toBe('********');
    expect((await reveal(t, user)).json().apiKey).toBe(API_KEY);
    expect(lines.some((line) => JSON.stringify(line).includes(API_KEY))).toBe(false);
  });

  it('refuses keys with spaces, URLs that are not http(s) or carry credentials, and unknown fields', async () => {
    const user = await register(t.app);
    for (const payload of [
      { apiKey: 'has a space' },
      { apiKey: '' },
      { apiKey: API_KEY, baseUrl: 'ftp://ollama.example.com' },
      { apiKey: API_KEY, baseUrl: 'https://me:secret@ollama.example.com' },
      { apiKey: API_KEY, extra: true },
    ]) {
      const res = await store(t, user, payload);
      expect([res.statusCode, res.json().error.code]).toEqual([400, 'validation_failed']);
    }
    expect((await check(t, user)).json().hasKey).toBe(false);
    expect((await t.app.inject({ method: 'GET', url: '/api/ollama/check-key' })).statusCode).toBe(401);
  });

  it('reads the key back only after a recent sign-in or with the password, a few times an hour, and logs each read', async () => {
    const user = await register(t.app);
    await store(t, user, { apiKey: API_KEY });
    const fresh = await reveal(t, user);
    expect(fresh.statusCode).toBe(200);
    expect(fresh.headers['cache-control']).toBe('no-store');
    expect(fresh.json()).toEqual({ apiKey: API_KEY, baseUrl: null });

    clock.advance(6 * 60_000);
    const stale = await reveal(t, user);
    expect([stale.statusCode, stale.json().error.code]).toEqual([403, 'recent_login_required']);
    const wrong = await reveal(t, user, 'not my password');
    expect([wrong.statusCode, wrong.json().error.code]).toEqual([401, 'invalid_credentials']);
    expect((await reveal(t, user, PASSWORD)).json().apiKey).toBe(API_KEY);
    expect((await reveal(t, user, PASSWORD)).statusCode).toBe(200);
    const limited = await reveal(t, user, PASSWORD);
    expect([limited.statusCode, limited.json().error.code]).toEqual([429, 'rate_limited']);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    const logged = await t.container.db.query<Array<{ type: string; metadata: Record<string, unknown> }>>(
      `SELECT type, metadata FROM activity_logs WHERE user_id = $1 AND type LIKE 'ollama_key_%' ORDER BY created_at`,
      [user.user.id],
    );
    expect(logged.map((entry) => entry.type).sort()).toEqual(['ollama_key_revealed', 'ollama_key_revealed', 'ollama_key_revealed', 'ollama_key_stored']);
    expect(
      logged
        .map((entry) => entry.metadata.proof)
        .filter(Boolean)
        .sort(),
    ).toEqual(['password', 'password', 'recent_login']);
    expect(JSON.stringify(logged)).not.toContain(API_KEY);

    const nobody = await register(t.app);
    expect((await reveal(t, nobody)).statusCode).toBe(404);
  });

  it('a tampered ciphertext, or one moved to another user, gives one generic error and no key', async () => {
    const owner = await register(t.app);
    const other = await register(t.app);
    await store(t, owner, { apiKey: API_KEY });
    await store(t, other, { apiKey: 'sk-other-user-key-000000' });
    await t.container.db.query(
      'UPDATE ollama_keys AS o SET encrypted_key = s.encrypted_key, nonce = s.nonce, key_version = s.key_version FROM ollama_keys AS s WHERE o.user_id = $1 AND s.user_id = $2',
      [other.user.id, owner.user.id],
    );
    const moved = await reveal(t, other);
    expect([moved.statusCode, moved.json().error]).toEqual([409, { code: 'key_unreadable', message: 'Your stored Ollama key cannot be used; store it again' }]);

    await t.container.db.query(`UPDATE ollama_keys SET encrypted_key = set_byte(encrypted_key, 0, get_byte(encrypted_key, 0) # 1) WHERE user_id = $1`, [
      owner.user.id,
    ]);
    const tampered = await reveal(t, owner);
    expect(tampered.json().error).toEqual(moved.json().error);
    expect(tampered.body).not.toContain(API_KEY);
  });

  it('deletes the key (twice is fine), and deleting the account deletes it', async () => {
    const user = await register(t.app);
    await store(t, user, { apiKey: API_KEY });
    expect((await injectAs(t.app, user, { method: 'DELETE', url: '/api/ollama/delete-key' })).statusCode).toBe(204);
    expect((await injectAs(t.app, user, { method: 'DELETE', url: '/api/ollama/delete-key' })).statusCode).toBe(204);
    expect((await check(t, user)).json().hasKey).toBe(false);
    expect(await row(t, user.user.id)).toBeUndefined();

    await store(t, user, { apiKey: API_KEY });
    expect((await injectAs(t.app, user, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } })).statusCode).toBe(204);
    expect(await row(t, user.user.id)).toBeUndefined();
  });
});

describe('rotating the encryption key', () => {
  it('re-seals every key under the new key while requests keep reading them; unknown keys are counted, not lost', async () => {
    const database = await separateDatabaseUrl();
    const before = await buildTestApp({ env: { DATABASE_URL: database, OLLAMA_KEY_ENCRYPTION_KEY: keyA.toString('hex') } });
    const users: Pair[] = [];
    try {
      for (let index = 0; index < 25; index += 1) {
        const user = await register(before.app);
        await store(before, user, { apiKey: `sk-rotation-${index}-abcdefghijkl` });
        users.push(user);
      }
    } finally {
      await before.close();
    }
    const lost = await buildTestApp({ env: { DATABASE_URL: database, OLLAMA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') } });
    const orphan = await register(lost.app);
    await store(lost, orphan, { apiKey: 'sk-sealed-with-a-key-nobody-keeps' });
    await lost.close();

    const during = await buildTestApp({
      env: { DATABASE_URL: database, OLLAMA_KEY_ENCRYPTION_KEY: keyB.toString('base64'), OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS: keyA.toString('base64') },
    });
    try {
      const reads = Promise.all(users.map(async (user, index) => [index, (await reveal(during, user)).json<{ apiKey: string }>().apiKey] as const));
      const totals = await during.container.services.ollama.keys.rotate(4);
      for (const [index, apiKey] of await reads) expect(apiKey).toBe(`sk-rotation-${index}-abcdefghijkl`);
      expect(totals).toEqual({ resealed: 25, unreadable: 1 });
      expect(await during.container.services.ollama.keys.rotate(4)).toEqual({ resealed: 0, unreadable: 1 });
      expect(await during.container.services.ollama.keys.versions()).toEqual({
        current: keyVersion(keyB),
        versions: expect.arrayContaining([{ version: keyVersion(keyB), rows: 25 }]),
      });
    } finally {
      await during.close();
    }

    const after = await buildTestApp({ env: { DATABASE_URL: database, OLLAMA_KEY_ENCRYPTION_KEY: keyB.toString('base64') } });
    try {
      for (const [index, user] of users.entries()) expect((await reveal(after, user)).json().apiKey).toBe(`sk-rotation-${index}-abcdefghijkl`);
    } finally {
      await after.close();
    }
  });
});
