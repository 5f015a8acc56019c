import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const clock = manualClock();
let t: TestApp;
let admin: Awaited<ReturnType<typeof login>>;

beforeAll(async () => {
  t = await buildTestApp({ clock, env: { BETA_MODE: 'on' } });
});
afterAll(() => t.close());
beforeEach(async () => {
  await truncateAll(t);
  const email = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(email, PASSWORD);
  admin = await login(t.app, email);
});

async function createKey(body: Record<string, unknown> = {}): Promise<string> {
  const res = await injectAs(t.app, admin, { method: 'POST', url: '/admin/invite-keys', payload: body });
  expect(res.statusCode).toBe(201);
  return res.json().key;
}

const signUp = (email: string, inviteKey?: string) =>
  t.app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email, password: PASSWORD, deviceId: 'd', platform: 'web', ...(inviteKey ? { inviteKey } : {}) },
  });

describe('private beta registration', () => {
  it('requires an invite key', async () => {
    const res = await signUp(uniqueEmail());
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('invite_required');
  });

  it('accepts a valid key once, case-insensitively, and records who used it', async () => {
    const key = await createKey();
    expect(key).toMatch(/^PARLEY-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$/);
    const first = await signUp(uniqueEmail(), key.toLowerCase());
    expect(first.statusCode).toBe(201);
    const second = await signUp(uniqueEmail(), key);
    expect(second.statusCode).toBe(403);
    expect(second.json().error).toMatchObject({ code: 'invite_invalid', details: { reason: 'used' } });
    const status = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/invite-keys/${key}` })).json();
    expect(status).toMatchObject({ status: 'used', usedBy: first.json().user.id });
  });

  it('leaves no account behind when the key is refused', async () => {
    const email = uniqueEmail();
    expect((await signUp(email, 'PARLEY-AAAA-BBBB')).statusCode).toBe(403);
    const [{ count }] = await t.container.db.query('SELECT count(*)::int AS count FROM users WHERE email = $1', [email]);
    expect(count).toBe(0);
  });

  it('honours a key bound to one e-mail', async () => {
    const bound = uniqueEmail('invited');
    const key = await createKey({ email: bound });
    expect((await signUp(uniqueEmail(), key)).json().error.details.reason).toBe('email_mismatch');
    expect((await signUp(bound, key)).statusCode).toBe(201);
  });

  it('refuses an expired key', async () => {
    const key = await createKey({ expiresInDays: 1 });
    clock.advance(2 * 86_400_000);
    try {
      expect((await signUp(uniqueEmail(), key)).json().error.details.reason).toBe('expired');
    } finally {
      clock.advance(-2 * 86_400_000);
    }
  });

  it('lets exactly one of several concurrent sign-ups use a key', async () => {
    const key = await createKey();
    const results = await Promise.all(Array.from({ length: 4 }, () => signUp(uniqueEmail(), key)));
    expect(results.map((res) => res.statusCode).sort()).toEqual([201, 403, 403, 403]);
  });
});

describe('invite keys for admins', () => {
  it('creates 1-100 keys in bulk and refuses 101', async () => {
    const bulk = await injectAs(t.app, admin, { method: 'POST', url: '/admin/invite-keys/bulk', payload: { count: 25 } });
    expect(bulk.statusCode).toBe(201);
    expect(new Set(bulk.json().items.map((item: { key: string }) => item.key)).size).toBe(25);
    const tooMany = await injectAs(t.app, admin, { method: 'POST', url: '/admin/invite-keys/bulk', payload: { count: 101 } });
    expect(tooMany.statusCode).toBe(400);
  });

  it('lists unused keys only, paginated', async () => {
    const used = await createKey();
    await signUp(uniqueEmail(), used);
    await injectAs(t.app, admin, { method: 'POST', url: '/admin/invite-keys/bulk', payload: { count: 3 } });
    const first = (await injectAs(t.app, admin, { method: 'GET', url: '/admin/invite-keys?limit=2' })).json();
    const second = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/invite-keys?limit=2&cursor=${first.nextCursor}` })).json();
    const keys = [...first.items, ...second.items].map((item: { key: string; status: string }) => item);
    expect(keys).toHaveLength(3);
    expect(keys.every((item) => item.status === 'unused')).toBe(true);
    expect(keys.map((item) => item.key)).not.toContain(used);
    expect(second.nextCursor).toBeNull();
  });

  it('answers 404 for an unknown key', async () => {
    const res = await injectAs(t.app, admin, { method: 'GET', url: '/admin/invite-keys/PARLEY-ZZZZ-ZZZZ' });
    expect(res.statusCode).toBe(404);
  });

  it('is closed to students, and to an admin demoted a moment ago', async () => {
    const student = await register(t.app, { inviteKey: await createKey() });
    const asStudent = await injectAs(t.app, student, { method: 'POST', url: '/admin/invite-keys', payload: {} });
    expect(asStudent.statusCode).toBe(403);
    expect(asStudent.json().error.code).toBe('forbidden');
    await t.container.db.query("UPDATE users SET role = 'student' WHERE id = $1", [admin.user.id]);
    const demoted = await injectAs(t.app, admin, { method: 'GET', url: '/admin/invite-keys' });
    expect(demoted.statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/admin/invite-keys' })).statusCode).toBe(401);
  });
});

describe('public key checks', () => {
  it('tells whether a key can be used, and by which e-mail, without revealing it', async () => {
    const bound = uniqueEmail('invited');
    const key = await createKey({ email: bound });
    const check = (url: string, payload: object) => t.app.inject({ method: 'POST', url, payload }).then((res) => res.json());
    expect(await check('/api/private-beta/check-validity', { key })).toEqual({ valid: true });
    expect(await check('/api/private-beta/check-validity', { key: 'PARLEY-NOPE-NOPE' })).toEqual({ valid: false, reason: 'not_found' });
    expect(await check('/api/private-beta/verify', { key, email: bound })).toEqual({ valid: true });
    const mismatch = await check('/api/private-beta/verify', { key, email: uniqueEmail() });
    expect(mismatch).toEqual({ valid: false, reason: 'email_mismatch' });
    expect(JSON.stringify(mismatch)).not.toContain(bound);
  });
});
