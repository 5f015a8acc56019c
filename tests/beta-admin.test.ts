import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, uniqueEmail, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const clock = manualClock();
let t: TestApp;
let admin: Pair;

beforeAll(async () => {
  t = await buildTestApp({ clock, env: { BETA_MODE: 'on', BETA_CHECK_LIMIT: '3/15m' } });
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

async function signUp(email: string, inviteKey: string): Promise<Pair & { email: string }> {
  return register(t.app, { email, inviteKey });
}

let ip = 0;
/** Each test checks keys from its own address, so the per-IP limit of one test never reaches another. */
function nextIp(): string {
  ip += 1;
  return `10.9.0.${ip}`;
}

const users = (query = '', caller: Pair | null = admin) =>
  caller ? injectAs(t.app, caller, { method: 'GET', url: `/admin/beta/users${query}` }) : t.app.inject({ method: 'GET', url: `/admin/beta/users${query}` });
const check = (payload: unknown, remoteAddress: string) => t.app.inject({ method: 'POST', url: '/beta/check', payload: payload as object, remoteAddress });

describe('GET /admin/beta/users', () => {
  it('lists who signed up with which key and when, latest first, paged with a total', async () => {
    const boundTo = uniqueEmail('invited');
    const firstKey = await createKey({ email: boundTo });
    const secondKey = await createKey();
    await createKey(); // never used: not listed
    const first = await signUp(boundTo, firstKey);
    const firstAt = clock.now().toISOString();
    clock.advance(60_000);
    const second = await signUp(uniqueEmail(), secondKey);

    const page1 = await users('?limit=1');
    expect(page1.statusCode).toBe(200);
    expect(page1.json()).toMatchObject({ total: 2, items: [{ key: secondKey, userId: second.user.id, email: second.email, invitedEmail: null }] });
    expect(page1.json().nextCursor).toEqual(expect.any(String));
    const page2 = (await users(`?limit=1&cursor=${page1.json().nextCursor}`)).json();
    expect(page2).toEqual({
      total: 2,
      nextCursor: null,
      items: [{ key: firstKey, userId: first.user.id, email: boundTo, invitedEmail: boundTo, signedUpAt: firstAt }],
    });
  });

  it('looks one account up by e-mail, whatever its case; an unknown address gives an empty page', async () => {
    const email = uniqueEmail();
    const key = await createKey();
    const user = await signUp(email, key);
    await signUp(uniqueEmail(), await createKey());
    const found = (await users(`?email=${encodeURIComponent(email.toUpperCase())}`)).json();
    expect(found).toMatchObject({ total: 1, nextCursor: null, items: [{ key, userId: user.user.id, email }] });
    expect((await users(`?email=${encodeURIComponent(uniqueEmail())}`)).json()).toEqual({ items: [], nextCursor: null, total: 0 });
  });

  it('shows a deleted account without its e-mail', async () => {
    const user = await signUp(uniqueEmail(), await createKey());
    expect((await injectAs(t.app, user, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } })).statusCode).toBe(204);
    expect((await users()).json().items).toEqual([expect.objectContaining({ userId: user.user.id, email: null })]);
  });

  it('is for admins only, and refuses bad input with 400', async () => {
    const student = await signUp(uniqueEmail(), await createKey());
    const forbidden = await users('', student);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.code).toBe('forbidden');
    expect((await users('', null)).statusCode).toBe(401);
    for (const query of ['?email=not-an-email', '?limit=0', '?limit=101', '?cursor=garbage', '?unknown=1']) {
      const res = await users(query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.code, query).toBe('validation_failed');
    }
  });
});

describe('POST /beta/check', () => {
  it('says only whether a key can be used now: unused yes; unknown, used and expired no, all alike', async () => {
    const address = nextIp();
    const unused = await createKey({ email: uniqueEmail() });
    expect((await check({ key: unused.toLowerCase() }, address)).json()).toEqual({ valid: true });

    const used = await createKey();
    await signUp(uniqueEmail(), used);
    const expiring = await createKey({ expiresInDays: 1 });
    clock.advance(2 * 86_400_000);
    for (const key of [used, expiring]) {
      const res = await check({ key }, nextIp());
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ valid: false });
    }
    expect((await check({ key: 'PARLEY-NOPE-NOPE' }, nextIp())).json()).toEqual({ valid: false });
  });

  it('refuses malformed bodies with 400', async () => {
    for (const payload of [{}, { key: 'abc' }, { key: 'PARLEY-AAAA-BBBB', email: 'x@y.z' }, { key: 42 }]) {
      const res = await check(payload, nextIp());
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
  });

  it('limits checks per IP (BETA_CHECK_LIMIT): the next one is 429, another IP is still answered', async () => {
    const address = nextIp();
    const key = await createKey();
    for (let i = 0; i < 3; i += 1) expect((await check({ key: `PARLEY-GUES-${String(i).padStart(4, 'A')}` }, address)).statusCode).toBe(200);
    const limited = await check({ key }, address);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('rate_limited');
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await check({ key }, nextIp())).json()).toEqual({ valid: true });
  });
});
