import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, PASSWORD, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const clock = manualClock();
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());
beforeEach(() => truncateAll(t));

const me = (token: string) => injectAs(t.app, token, { method: 'GET', url: '/users/me' });
const patch = (token: string, payload: object, headers: Record<string, string> = {}) =>
  injectAs(t.app, token, { method: 'PATCH', url: '/users/me', headers, payload });

describe('GET /users/me', () => {
  it('returns the account, the empty profile at version 1 and what matchmaking still needs', async () => {
    const account = await register(t.app);
    const res = await me(account.accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    expect(res.json()).toMatchObject({
      id: account.user.id,
      email: account.email,
      profile: { username: null, englishLevel: null, avatarUrl: null, version: 1, totalSessions: 0 },
      completion: { complete: false, missing: ['username', 'englishLevel'] },
    });
  });
});

describe('PATCH /users/me', () => {
  it('updates the profile and bumps the version', async () => {
    const { accessToken } = await register(t.app);
    const res = await patch(accessToken, {
      version: 1,
      username: 'ana_speaks',
      displayName: 'Ana',
      englishLevel: 'intermediate',
      learningGoal: 'business',
      country: 'br',
      timezone: 'America/Sao_Paulo',
      nativeLanguage: 'Portuguese',
      bio: 'Learning for work',
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.json().profile).toMatchObject({ username: 'ana_speaks', country: 'BR', timezone: 'America/Sao_Paulo', version: 2 });
    expect(res.json().completion).toEqual({ complete: true, missing: [] });
  });

  it('takes the version from If-Match too', async () => {
    const { accessToken } = await register(t.app);
    expect((await patch(accessToken, { displayName: 'Bo' }, { 'if-match': '"1"' })).statusCode).toBe(200);
    expect((await patch(accessToken, { displayName: 'Bo' }, { 'if-match': 'W/"2"' })).statusCode).toBe(200);
  });

  it('requires a version', async () => {
    const { accessToken } = await register(t.app);
    const res = await patch(accessToken, { displayName: 'Bo' });
    expect(res.statusCode).toBe(428);
    expect(res.json().error.code).toBe('version_required');
  });

  it('refuses a stale version with 409 and the current version, writing nothing', async () => {
    const { accessToken } = await register(t.app);
    await patch(accessToken, { version: 1, displayName: 'First' });
    const stale = await patch(accessToken, { version: 1, displayName: 'Second' });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error).toMatchObject({ code: 'version_conflict', details: { currentVersion: 2 } });
    expect((await me(accessToken)).json().profile.displayName).toBe('First');
  });

  it('lets exactly one of two concurrent updates with the same version win', async () => {
    const { accessToken } = await register(t.app);
    const results = await Promise.all([patch(accessToken, { version: 1, displayName: 'Left' }), patch(accessToken, { version: 1, displayName: 'Right' })]);
    expect(results.map((res) => res.statusCode).sort()).toEqual([200, 409]);
    const winner = results.find((res) => res.statusCode === 200)!.json().profile.displayName;
    expect((await me(accessToken)).json().profile).toMatchObject({ displayName: winner, version: 2 });
  });

  it('refuses a username someone else has, whatever its case', async () => {
    const first = await register(t.app);
    const second = await register(t.app);
    await patch(first.accessToken, { version: 1, username: 'polyglot' });
    const res = await patch(second.accessToken, { version: 1, username: 'PolyGlot' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('username_taken');
  });

  it.each([
    ['country', { country: 'XX' }],
    ['timezone', { timezone: 'Mars/Olympus' }],
    ['username', { username: 'no spaces allowed' }],
    ['englishLevel', { englishLevel: 'fluent' }],
    ['bio', { bio: 'x'.repeat(501) }],
    ['', { email: 'new@example.com' }],
  ])('rejects an invalid %s', async (field, body) => {
    const { accessToken } = await register(t.app);
    const res = await patch(accessToken, { version: 1, ...body });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.fields.map((f: { path: string }) => f.path)).toContain(field);
  });
});

describe('GET /users/:id/public', () => {
  it('shows public fields only: never e-mail, role or ban state', async () => {
    const viewer = await register(t.app);
    const subject = await register(t.app);
    await patch(subject.accessToken, { version: 1, username: 'subject', englishLevel: 'advanced' });
    await t.container.db.query("UPDATE users SET is_banned = true, ban_reason = 'x' WHERE id = $1", [subject.user.id]);
    const res = await injectAs(t.app, viewer, { method: 'GET', url: `/users/${subject.user.id}/public` });
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json()).sort()).toEqual(
      [
        'avatarUrl',
        'bio',
        'country',
        'displayName',
        'englishLevel',
        'id',
        'memberSince',
        'nativeLanguage',
        'streakDays',
        'totalPracticeMins',
        'totalSessions',
        'username',
      ].sort(),
    );
    expect(res.body).not.toContain(subject.email);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    const viewer = await register(t.app);
    expect((await injectAs(t.app, viewer, { method: 'GET', url: '/users/7c9e6679-7425-40de-944b-e07fc1f90ae7/public' })).statusCode).toBe(404);
    expect((await injectAs(t.app, viewer, { method: 'GET', url: '/users/42/public' })).statusCode).toBe(400);
  });
});

describe('POST /users/me/wallet', () => {
  it('registers a valid address once across accounts', async () => {
    const first = await register(t.app);
    const second = await register(t.app);
    const address = '0x52908400098527886E0F7030069857D2E4169EE7';
    const res = await injectAs(t.app, first, { method: 'POST', url: '/users/me/wallet', payload: { address } });
    expect(res.statusCode).toBe(200);
    expect(res.json().profile.walletAddress).toBe(address.toLowerCase());
    const taken = await injectAs(t.app, second, {
      method: 'POST',
      url: '/users/me/wallet',
      payload: { address: address.toLowerCase() },
    });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error.code).toBe('wallet_taken');
    const invalid = await injectAs(t.app, second, { method: 'POST', url: '/users/me/wallet', payload: { address: '0x1234' } });
    expect(invalid.statusCode).toBe(400);
  });
});

describe('DELETE /users/me', () => {
  it('needs the current password', async () => {
    const account = await register(t.app);
    const res = await injectAs(t.app, account, { method: 'DELETE', url: '/users/me', payload: { password: 'wrong password' } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('invalid_credentials');
    expect((await me(account.accessToken)).statusCode).toBe(200);
  });

  it('signs out everywhere, clears personal fields and keeps the row', async () => {
    const account = await register(t.app);
    await patch(account.accessToken, { version: 1, username: 'leaving', bio: 'bye' });
    const res = await injectAs(t.app, account, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } });
    expect(res.statusCode).toBe(204);
    expect((await me(account.accessToken)).json().error.code).toBe('session_revoked');
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: account.email, password: PASSWORD, deviceId: 'd', platform: 'web' },
    });
    expect(login.statusCode).toBe(401);
    const [row] = await t.container.db.query(
      'SELECT u.email, u.deleted_at, p.username, p.bio FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = $1',
      [account.user.id],
    );
    expect(row).toMatchObject({ username: null, bio: null });
    expect(row.deleted_at).not.toBeNull();
    expect(row.email).not.toBe(account.email);
    // the address is free again
    expect((await register(t.app, { email: account.email })).user.id).not.toBe(account.user.id);
  });
});

describe('last_active_at', () => {
  it('is written at most once per throttle period, not on every request', async () => {
    const { accessToken, user } = await register(t.app);
    const lastActive = async () => {
      const rows = await t.container.db.query<Array<{ last_active_at: Date | null }>>('SELECT last_active_at FROM profiles WHERE user_id = $1', [user.id]);
      return rows[0]!.last_active_at;
    };
    await me(accessToken);
    await expect.poll(lastActive).not.toBeNull();
    const first = await lastActive();
    clock.advance(10_000);
    await me(accessToken);
    await me(accessToken);
    expect(await lastActive()).toEqual(first);
    clock.advance(61_000);
    await t.container.redis.client.del(`users:active:${user.id}`); // the real Redis key expires by wall clock
    await me(accessToken);
    await expect.poll(async () => (await lastActive())?.getTime()).toBe(clock.now().getTime());
  });
});
