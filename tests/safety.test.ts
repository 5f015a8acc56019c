import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, login, type Pair, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { listen, matchedPair } from './helpers/realtime.js';

let t: TestApp;
let url: string;
let admin: Pair;
beforeAll(async () => {
  t = await buildTestApp({ env: { CALL_RECONNECT_GRACE: '60s' } });
  url = await listen(t.app);
  const email = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(email, PASSWORD);
  admin = await login(t.app, email);
});
afterAll(() => t.close());

const report = (token: string, payload: object) => injectAs(t.app, token, { method: 'POST', url: '/reports', payload });

/** Two ready users matched by the real matchmaking, with their sockets. */
const call = () => matchedPair({ t, url });

describe('POST /reports', () => {
  it('accepts a report about my partner in a call, once per call', async () => {
    const { a, b, ca, cb, callId: sessionId } = await call();
    const first = await report(a.accessToken, { reportedId: b.user.id, reason: 'harassment', description: 'rude', sessionId });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ reporterId: a.user.id, reportedId: b.user.id, sessionId, status: 'pending' });
    const again = await report(a.accessToken, { reportedId: b.user.id, reason: 'spam', sessionId });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('already_reported');
    const mine = (await injectAs(t.app, a, { method: 'GET', url: '/reports/mine' })).json();
    expect(mine.items.map((item: { id: string }) => item.id)).toEqual([first.json().id]);
    expect((await injectAs(t.app, b, { method: 'GET', url: '/reports/mine' })).json().items).toEqual([]);
    ca.close();
    cb.close();
  });

  it('refuses self-reports, unknown users, and a call the reported user was not in', async () => {
    const { a, b, ca, cb, callId: sessionId } = await call();
    const stranger = await register(t.app);
    const self = await report(a.accessToken, { reportedId: a.user.id, reason: 'spam' });
    expect(self.statusCode).toBe(400);
    expect((await report(a.accessToken, { reportedId: '7c9e6679-7425-40de-944b-e07fc1f90ae7', reason: 'spam' })).statusCode).toBe(404);
    const notPartner = await report(a.accessToken, { reportedId: stranger.user.id, reason: 'spam', sessionId });
    expect(notPartner.statusCode).toBe(403);
    const outsider = await report(stranger.accessToken, { reportedId: b.user.id, reason: 'spam', sessionId });
    expect(outsider.statusCode).toBe(403);
    expect((await report(a.accessToken, { reportedId: b.user.id, reason: 'because' })).statusCode).toBe(400);
    expect((await report(a.accessToken, { reportedId: b.user.id, reason: 'other', description: 'x'.repeat(1001) })).statusCode).toBe(400);
    ca.close();
    cb.close();
  });

  it('flags a user for review at 3 pending reports, once', async () => {
    const target = await register(t.app);
    for (let i = 0; i < 4; i += 1) {
      const reporter = await register(t.app);
      expect((await report(reporter.accessToken, { reportedId: target.user.id, reason: 'spam' })).statusCode).toBe(201);
    }
    const [user] = await t.container.db.query('SELECT flagged_at FROM users WHERE id = $1', [target.user.id]);
    expect(user.flagged_at).not.toBeNull();
    const [{ flags }] = await t.container.db.query("SELECT count(*)::int AS flags FROM activity_logs WHERE type = 'user_flagged' AND user_id = $1", [
      target.user.id,
    ]);
    expect(flags).toBe(1);
  });

  it('stores every one of many concurrent reports about one user and flags them once', async () => {
    const target = await register(t.app);
    const reporters = await Promise.all(Array.from({ length: 10 }, () => register(t.app)));
    const responses = await Promise.all(reporters.map((reporter) => report(reporter.accessToken, { reportedId: target.user.id, reason: 'spam' })));
    expect(responses.map((response) => response.statusCode)).toEqual(reporters.map(() => 201));
    const [{ stored }] = await t.container.db.query('SELECT count(*)::int AS stored FROM reports WHERE reported_id = $1', [target.user.id]);
    expect(stored).toBe(10);
    const [{ flags }] = await t.container.db.query("SELECT count(*)::int AS flags FROM activity_logs WHERE type = 'user_flagged' AND user_id = $1", [
      target.user.id,
    ]);
    expect(flags).toBe(1);
  });

  it('does not deadlock when two users report each other at the same moment', async () => {
    for (let round = 0; round < 5; round += 1) {
      const [a, b] = await Promise.all([register(t.app), register(t.app)]);
      const both = await Promise.all([
        report(a.accessToken, { reportedId: b.user.id, reason: 'spam' }),
        report(b.accessToken, { reportedId: a.user.id, reason: 'spam' }),
      ]);
      expect(both.map((response) => response.statusCode)).toEqual([201, 201]);
    }
  });
});

describe('bans', () => {
  it('take effect everywhere at once, even in a live call', async () => {
    const { a, ca, cb, roomId } = await call();
    const gone = new Promise((resolve) => ca.socket.once('disconnect', resolve));
    const res = await injectAs(t.app, admin, {
      method: 'PATCH',
      url: `/admin/users/${a.user.id}/ban`,
      payload: { reason: 'abusive language' },
    });
    expect(res.statusCode).toBe(204);
    expect(await gone).toBe('io server disconnect');
    expect(await cb.next('peer_left')).toEqual({ reason: 'disconnected' });
    const [session] = await t.container.db.query('SELECT ended_at FROM call_sessions WHERE room_id = $1', [roomId]);
    expect(session.ended_at).not.toBeNull();

    expect((await injectAs(t.app, a, { method: 'GET', url: '/auth/me' })).json().error.code).toBe('account_banned');
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: a.refreshToken } })).statusCode).toBe(401);
    const loginAttempt = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: a.email, password: PASSWORD, deviceId: 'd', platform: 'web' },
    });
    expect(loginAttempt.json().error.code).toBe('account_banned');
    const log = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/activity?userId=${a.user.id}&type=user_banned` })).json();
    expect(log.items).toEqual([
      expect.objectContaining({ type: 'user_banned', actorId: admin.user.id, metadata: expect.objectContaining({ reason: 'abusive language' }) }),
    ]);

    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/admin/users/${a.user.id}/unban` })).statusCode).toBe(204);
    expect((await login(t.app, a.email)).user.id).toBe(a.user.id);
    cb.close();
  });

  it('need a reason, and a user that exists', async () => {
    const target = await register(t.app);
    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/admin/users/${target.user.id}/ban`, payload: {} })).statusCode).toBe(400);
    expect(
      (
        await injectAs(t.app, admin, {
          method: 'PATCH',
          url: '/admin/users/7c9e6679-7425-40de-944b-e07fc1f90ae7/ban',
          payload: { reason: 'spam bot' },
        })
      ).statusCode,
    ).toBe(404);
  });
});

describe('admin review of reports', () => {
  it('lists reports by status and can action one with a ban in the same step', async () => {
    const reporter = await register(t.app);
    const target = await register(t.app);
    const created = (await report(reporter.accessToken, { reportedId: target.user.id, reason: 'hate_speech' })).json();
    const pending = (await injectAs(t.app, admin, { method: 'GET', url: '/admin/reports?status=pending&limit=100' })).json();
    expect(pending.items.map((item: { id: string }) => item.id)).toContain(created.id);

    const decided = await injectAs(t.app, admin, {
      method: 'PATCH',
      url: `/admin/reports/${created.id}`,
      payload: { status: 'actioned', adminNote: 'confirmed', ban: { reason: 'hate speech' } },
    });
    expect(decided.statusCode).toBe(200);
    expect(decided.json()).toMatchObject({ status: 'actioned', adminNote: 'confirmed' });
    const [user] = await t.container.db.query('SELECT is_banned, ban_reason FROM users WHERE id = $1', [target.user.id]);
    expect(user).toEqual({ is_banned: true, ban_reason: 'hate speech' });
    expect((await injectAs(t.app, target, { method: 'GET', url: '/auth/me' })).statusCode).toBe(403);
    const actioned = (await injectAs(t.app, admin, { method: 'GET', url: '/admin/reports?status=actioned' })).json();
    expect(actioned.items.map((item: { id: string }) => item.id)).toContain(created.id);
    expect(
      (
        await injectAs(t.app, admin, {
          method: 'PATCH',
          url: '/admin/reports/7c9e6679-7425-40de-944b-e07fc1f90ae7',
          payload: { status: 'dismissed' },
        })
      ).statusCode,
    ).toBe(404);
  });
});

describe('admin views', () => {
  it('counts users, calls, reports and who is online right now', async () => {
    const { ca, cb } = await call();
    const stats = (await injectAs(t.app, admin, { method: 'GET', url: '/admin/stats' })).json();
    expect(stats.users.total).toBeGreaterThanOrEqual(3);
    expect(stats.users.newToday).toBeGreaterThanOrEqual(2);
    expect(stats.onlineNow).toBeGreaterThanOrEqual(2);
    expect(stats.calls.today).toBeGreaterThanOrEqual(1);
    expect(stats.pendingReports).toBeGreaterThanOrEqual(0);
    ca.close();
    cb.close();
  });

  it('searches users with a total, filters banned and flagged, and pages stably', async () => {
    const marker = `findme${Date.now()}`;
    const accounts = [];
    for (let i = 0; i < 3; i += 1) accounts.push(await register(t.app, { email: `${marker}-${i}@parley.test` }));
    await injectAs(t.app, admin, {
      method: 'PATCH',
      url: `/admin/users/${accounts[0]!.user.id}/ban`,
      payload: { reason: 'testing filters' },
    });
    const first = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/users?search=${marker}&limit=2` })).json();
    expect(first.total).toBe(3);
    expect(first.items).toHaveLength(2);
    const second = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/users?search=${marker}&limit=2&cursor=${first.nextCursor}` })).json();
    expect(second.items).toHaveLength(1);
    expect(second.nextCursor).toBeNull();
    expect(new Set([...first.items, ...second.items].map((item: { id: string }) => item.id)).size).toBe(3);
    const banned = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/users?search=${marker}&banned=true` })).json();
    expect(banned.items.map((item: { id: string }) => item.id)).toEqual([accounts[0]!.user.id]);
    expect(banned.items[0]).toMatchObject({ isBanned: true, banReason: 'testing filters' });
    // a search string is matched literally, not as a pattern
    expect((await injectAs(t.app, admin, { method: 'GET', url: '/admin/users?search=%25' })).json().total).toBe(0);
  });

  it('shows one user with their calls and the reports they made and received', async () => {
    const { a, b, ca, cb, callId: sessionId } = await call();
    await report(a.accessToken, { reportedId: b.user.id, reason: 'spam', sessionId });
    const detail = (await injectAs(t.app, admin, { method: 'GET', url: `/admin/users/${b.user.id}` })).json();
    expect(detail.user).toMatchObject({ id: b.user.id });
    expect(detail.recentSessions.map((s: { id: string }) => s.id)).toContain(sessionId);
    expect(detail.reportsReceived).toEqual([expect.objectContaining({ reporterId: a.user.id, reason: 'spam' })]);
    expect(detail.reportsMade).toEqual([]);
    expect((await injectAs(t.app, admin, { method: 'GET', url: '/admin/users/7c9e6679-7425-40de-944b-e07fc1f90ae7' })).statusCode).toBe(404);
    ca.close();
    cb.close();
  });
});
