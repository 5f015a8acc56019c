import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, login, register, uniqueEmail, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { eventually } from './helpers/jobs.js';
import { listen, refusal } from './helpers/realtime.js';

interface Entry {
  type: string;
  ip: string | null;
  userAgent: string | null;
  metadata: Record<string, unknown>;
}

const SECURITY_TYPES = ['rate_limited', 'socket_auth_failed', 'ws_auth_failed', 'ws_ip_blocked', 'security_suspicious_content'];

const clock = manualClock();
let t: TestApp;
let admin: Pair;
let url: string;
beforeAll(async () => {
  t = await buildTestApp({ clock, env: { AUTH_LOGIN_LIMIT: '2/15m' } });
  const { email } = await register(t.app);
  await t.container.db.query("UPDATE users SET role = 'admin' WHERE email = $1", [email]);
  admin = await login(t.app, email, {}, '192.0.2.250');
  url = await listen(t.app);
});
afterAll(() => t.close());

const attempt = (remoteAddress: string) =>
  t.app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress,
    headers: { 'user-agent': 'flood/1.0' },
    payload: { email: uniqueEmail(), password: 'wrong password', deviceId: 'd', platform: 'web' },
  });

async function activity(query: string): Promise<Entry[]> {
  const res = await injectAs(t.app, admin, { method: 'GET', url: `/admin/activity?limit=100&${query}` });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: Entry[] }>().items;
}

const fromIp = (entries: Entry[], ip: string) => entries.filter((entry) => entry.ip === ip);

describe('security events', () => {
  it('record a flood past a route limit once per IP and minute, and leave the 429 as it was', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i += 1) statuses.push((await attempt('198.51.100.7')).statusCode);
    expect(statuses).toEqual([401, 401, ...Array<number>(8).fill(429)]);
    const limited = await attempt('198.51.100.8')
      .then(() => attempt('198.51.100.8'))
      .then(() => attempt('198.51.100.8'));
    expect(limited.statusCode).toBe(429);
    expect(Object.keys(limited.json())).toEqual(['error']);
    expect(limited.json().error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    const first = await eventually(
      () => activity('type=rate_limited'),
      (entries) => fromIp(entries, '198.51.100.7').length > 0 && fromIp(entries, '198.51.100.8').length > 0,
    );
    expect(fromIp(first, '198.51.100.7')).toEqual([
      expect.objectContaining({ type: 'rate_limited', userAgent: 'flood/1.0', metadata: { route: 'POST /auth/login', limit: 'route' } }),
    ]);

    // a minute on, the flood is worth one more entry per IP, however long it lasts
    clock.advance(60_000);
    for (let i = 0; i < 5; i += 1) expect((await attempt('198.51.100.7')).statusCode).toBe(429);
    const second = await eventually(
      () => activity('type=rate_limited'),
      (entries) => fromIp(entries, '198.51.100.7').length > 1,
    );
    expect(fromIp(second, '198.51.100.7')).toHaveLength(2);
    expect(fromIp(second, '198.51.100.8')).toHaveLength(1);
  });

  it('record a refused Socket.io handshake with its code, once per IP and minute', async () => {
    const refused = await refusal(url, 'not-a-token');
    expect(refused.code).not.toBe('internal_error');
    expect((await refusal(url, undefined)).code).toBe('unauthorized');
    const entries = await eventually(
      () => activity('type=socket_auth_failed'),
      (items) => items.length > 0,
    );
    expect(entries).toEqual([expect.objectContaining({ type: 'socket_auth_failed', ip: '127.0.0.1', metadata: { code: refused.code } })]);

    clock.advance(60_000);
    await refusal(url, undefined);
    const later = await eventually(
      () => activity('type=socket_auth_failed'),
      (items) => items.length > 1,
    );
    expect(later[0]).toEqual(expect.objectContaining({ ip: '127.0.0.1', metadata: { code: 'unauthorized' } }));
  });

  it('are what ?category=security selects, for admins only', async () => {
    const all = await activity('');
    expect(all.map((entry) => entry.type)).toContain('login_failed');
    const security = await activity('category=security');
    expect(new Set(security.map((entry) => entry.type))).toEqual(new Set(['rate_limited', 'socket_auth_failed']));
    expect(security.every((entry) => SECURITY_TYPES.includes(entry.type))).toBe(true);
    expect(await activity('category=security&type=login_failed')).toEqual([]);
    expect(await activity('category=security&type=socket_auth_failed')).toHaveLength(2);

    const wrong = await injectAs(t.app, admin, { method: 'GET', url: '/admin/activity?category=everything' });
    expect(wrong.statusCode).toBe(400);
    const student = await register(t.app);
    const forbidden = await injectAs(t.app, student, { method: 'GET', url: '/admin/activity?category=security' });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.code).toBe('forbidden');
  });
});
