import bcrypt from 'bcrypt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());
beforeEach(() => truncateAll(t));

describe('POST /auth/register', () => {
  it('creates the account with an empty profile in one go and signs the device in', async () => {
    const email = uniqueEmail();
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'user-agent': 'ParleyApp/1.0' },
      payload: { email, password: PASSWORD, deviceId: 'phone-1', platform: 'ios' },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email, role: 'student' } });
    expect(body.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [profile] = await t.container.db.query('SELECT user_id, username, version FROM profiles WHERE user_id = $1', [body.user.id]);
    expect(profile).toEqual({ user_id: body.user.id, username: null, version: 1 });
    const [stored] = await t.container.db.query('SELECT password_hash, role FROM users WHERE id = $1', [body.user.id]);
    expect(stored.password_hash).toMatch(/^\$sha256-bcrypt\$\$2b\$04\$/);
    const [token] = await t.container.db.query('SELECT token_hash FROM refresh_tokens WHERE user_id = $1', [body.user.id]);
    expect(token.token_hash).not.toContain(body.refreshToken);
    const activity = await injectAs(t.app, body, { method: 'GET', url: '/users/me/activity' });
    expect(activity.json().items).toEqual([expect.objectContaining({ type: 'register', userAgent: 'ParleyApp/1.0', ip: '127.0.0.1' })]);
  });

  it('refuses an e-mail that is taken, whatever its case', async () => {
    const { email } = await register(t.app);
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: email.toUpperCase(), password: PASSWORD, deviceId: 'd', platform: 'web' },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('email_taken');
  });

  it('creates exactly one account when the same e-mail registers twice at once', async () => {
    const email = uniqueEmail();
    const attempts = await Promise.all(
      Array.from({ length: 4 }, () =>
        t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD, deviceId: 'd', platform: 'web' } }),
      ),
    );
    expect(attempts.map((res) => res.statusCode).sort()).toEqual([201, 409, 409, 409]);
    const [{ count }] = await t.container.db.query('SELECT count(*)::int AS count FROM users WHERE email = $1', [email]);
    expect(count).toBe(1);
    const [{ profiles }] = await t.container.db.query('SELECT count(*)::int AS profiles FROM profiles');
    expect(profiles).toBe(1);
  });

  it.each([
    ['a short password', { password: 'short' }, 'password'],
    ['a password over 1024 characters', { password: 'x'.repeat(1025) }, 'password'],
    ['a malformed e-mail', { email: 'nobody' }, 'email'],
    ['an unknown platform', { platform: 'symbian' }, 'platform'],
    ['an unknown field', { role: 'admin' }, ''],
  ])('rejects %s with 400 and writes nothing', async (_case, override, field) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'd', platform: 'web', ...override },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
    expect(res.json().error.details.fields.map((f: { path: string }) => f.path)).toContain(field);
    const [{ count }] = await t.container.db.query('SELECT count(*)::int AS count FROM users');
    expect(count).toBe(0);
  });
});

describe('POST /auth/login', () => {
  it('signs in with the right password and records the sign-in', async () => {
    const { email, user } = await register(t.app);
    const pair = await login(t.app, email.toUpperCase());
    expect(pair.user).toEqual({ id: user.id, email, role: 'student' });
    const types = (await injectAs(t.app, pair, { method: 'GET', url: '/users/me/activity' })).json().items.map((item: { type: string }) => item.type);
    expect(types).toEqual(['login', 'register']);
  });

  it('answers an unknown e-mail and a wrong password identically', async () => {
    const { email } = await register(t.app);
    const wrongPassword = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email, password: 'not the password', deviceId: 'd', platform: 'web' },
    });
    const unknownEmail = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: uniqueEmail(), password: 'not the password', deviceId: 'd', platform: 'web' },
    });
    expect(wrongPassword.statusCode).toBe(401);
    expect(unknownEmail.statusCode).toBe(401);
    expect(wrongPassword.body).toBe(unknownEmail.body);
    expect(wrongPassword.json().error.code).toBe('invalid_credentials');
    const [{ failures }] = await t.container.db.query("SELECT count(*)::int AS failures FROM activity_logs WHERE type = 'login_failed'");
    expect(failures).toBe(2);
  });

  it('refuses a banned account with 403 account_banned', async () => {
    const { email, user } = await register(t.app);
    await t.container.db.query("UPDATE users SET is_banned = true, ban_reason = 'spam' WHERE id = $1", [user.id]);
    const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD, deviceId: 'd', platform: 'web' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('account_banned');
  });

  it('replaces the session of a device that signs in again', async () => {
    const { email } = await register(t.app);
    const first = await login(t.app, email, { deviceId: 'tablet' });
    const second = await login(t.app, email, { deviceId: 'tablet' });
    expect((await injectAs(t.app, first, { method: 'GET', url: '/auth/me' })).json().error.code).toBe('session_revoked');
    expect((await injectAs(t.app, second, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
    const refresh = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } });
    expect(refresh.statusCode).toBe(401);
  });
});

describe('long passwords', () => {
  const signIn = (email: string, password: string) =>
    t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password, deviceId: 'd', platform: 'web' } });

  it('counts every byte: a password sharing its first 72 bytes with the real one is refused', async () => {
    const shared = 'a'.repeat(72);
    const { email } = await register(t.app, { password: `${shared}-the-real-ending` });
    expect((await signIn(email, `${shared}-a-guessed-ending`)).statusCode).toBe(401);
    expect((await signIn(email, shared)).statusCode).toBe(401);
    expect((await signIn(email, `${shared}-the-real-ending`)).statusCode).toBe(200);
  });

  it('sets and signs in with a long Unicode passphrase', async () => {
    const passphrase = 'Ünïcødé pässphrase — 私のパスワードはとても長いです 🦜🦜🦜 '.repeat(4);
    expect(Buffer.byteLength(passphrase)).toBeGreaterThan(300);
    const { email } = await register(t.app, { password: passphrase });
    expect((await signIn(email, passphrase)).statusCode).toBe(200);
    expect((await signIn(email, passphrase.slice(0, -2))).statusCode).toBe(401);
  });

  it('still verifies a hash of the old format (plain bcrypt), and upgrades it at sign-in', async () => {
    const { email, user } = await register(t.app);
    const legacy = await bcrypt.hash(PASSWORD, 4);
    await t.container.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [user.id, legacy]);
    expect((await signIn(email, 'wrong password')).statusCode).toBe(401);
    expect((await signIn(email, PASSWORD)).statusCode).toBe(200);
    const [{ password_hash: upgraded }] = await t.container.db.query('SELECT password_hash FROM users WHERE id = $1', [user.id]);
    expect(upgraded).not.toBe(legacy);
    expect(upgraded.startsWith('$2')).toBe(false);
    expect((await signIn(email, PASSWORD)).statusCode).toBe(200);
  });
});

describe('GET /auth/me', () => {
  it('returns the signed-in account', async () => {
    const { accessToken, email, user } = await register(t.app);
    const res = await injectAs(t.app, accessToken, { method: 'GET', url: '/auth/me' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: user.id, email, role: 'student', isVerified: false });
  });

  it('asks for a token when none is sent, and rejects a malformed header', async () => {
    const none = await t.app.inject({ method: 'GET', url: '/auth/me' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('unauthorized');
    const basic = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.statusCode).toBe(401);
    expect(basic.json().error.code).toBe('invalid_token');
  });
});

describe('GET /users/me/activity', () => {
  it('pages through my entries only, newest first, with a stable cursor', async () => {
    const mine = await register(t.app);
    const other = await register(t.app);
    for (let i = 0; i < 4; i += 1) await login(t.app, mine.email, { deviceId: `device-${i}` });
    await login(t.app, other.email);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page = (await injectAs(t.app, mine, { method: 'GET', url: `/users/me/activity${query}` })).json();
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((item: { id: string }) => item.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(5); // register + 4 logins; nothing of the other user
    expect(new Set(seen).size).toBe(5);
  });

  it('rejects a forged cursor with 400', async () => {
    const { accessToken } = await register(t.app);
    const res = await injectAs(t.app, accessToken, { method: 'GET', url: '/users/me/activity?cursor=bm90LWEtY3Vyc29y' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });
});
