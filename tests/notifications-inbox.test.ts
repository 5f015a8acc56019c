import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { quietDelayMs } from '../src/modules/notifications/preferences.js';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const clock = manualClock();
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());
beforeEach(async () => {
  clock.set(new Date());
  await truncateAll(t);
});

const notifications = () => t.container.services.notifications;
const fcmToken = (name: string) => `fcm-token-${name}-${'x'.repeat(40)}`;
const registerDevice = (caller: Pair, body: Record<string, unknown>) =>
  injectAs(t.app, caller, { method: 'POST', url: '/notifications/device', payload: body });
const deviceRows = (userId?: string) =>
  t.container.db.query<Array<{ user_id: string; device_id: string; fcm_token: string; platform: string }>>(
    `SELECT user_id, device_id, fcm_token, platform FROM device_tokens ${userId ? 'WHERE user_id = $1' : ''} ORDER BY device_id`,
    userId ? [userId] : [],
  );
const inbox = (caller: Pair, query = '') => injectAs(t.app, caller, { method: 'GET', url: `/notifications${query}` });

describe('push devices', () => {
  it('registers a device token, updates it in place when the app starts again with a rotated one, and forgets it on DELETE', async () => {
    const user = await register(t.app);
    const first = await registerDevice(user, { deviceId: 'phone-1', platform: 'ios', fcmToken: fcmToken('a') });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ deviceId: 'phone-1', platform: 'ios' });
    expect(first.json()).not.toHaveProperty('fcmToken');

    // the device id may be left out: the session's own is taken
    expect((await registerDevice(user, { platform: 'ios', fcmToken: fcmToken('b') })).statusCode).toBe(200);
    const tablet = await login(t.app, user.email, { deviceId: 'tablet', platform: 'android' });
    expect((await registerDevice(tablet, { platform: 'android', fcmToken: fcmToken('c') })).statusCode).toBe(200);
    expect(await deviceRows(user.user.id)).toEqual([
      { user_id: user.user.id, device_id: 'phone-1', fcm_token: fcmToken('b'), platform: 'ios' },
      { user_id: user.user.id, device_id: 'tablet', fcm_token: fcmToken('c'), platform: 'android' },
    ]);

    const removed = await injectAs(t.app, user, { method: 'DELETE', url: '/notifications/device', payload: { deviceId: 'phone-1' } });
    expect(removed.statusCode).toBe(204);
    expect((await deviceRows(user.user.id)).map((row) => row.device_id)).toEqual(['tablet']);
    // nothing left to forget is not an error: the app calls it on every sign-out
    expect((await injectAs(t.app, user, { method: 'DELETE', url: '/notifications/device', payload: { deviceId: 'phone-1' } })).statusCode).toBe(204);
  });

  it('moves a token to the account that registers it last (another account signed in on that phone)', async () => {
    const [first, second] = [await register(t.app), await register(t.app)];
    await registerDevice(first, { platform: 'android', fcmToken: fcmToken('shared') });
    await registerDevice(second, { platform: 'android', fcmToken: fcmToken('shared') });
    expect(await deviceRows()).toEqual([{ user_id: second.user.id, device_id: 'phone-1', fcm_token: fcmToken('shared'), platform: 'android' }]);
  });

  it('keeps one row when the same token is registered by two accounts at the same moment', async () => {
    const users = await Promise.all([register(t.app), register(t.app), register(t.app)]);
    const answers = await Promise.all(users.map((user) => registerDevice(user, { platform: 'web', fcmToken: fcmToken('race') })));
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 200]);
    expect(await deviceRows()).toHaveLength(1);
  });

  it('refuses a bad platform, an empty device id, another device than the session’s, a token too short, and an anonymous caller', async () => {
    const user = await register(t.app);
    for (const body of [
      { platform: 'windows-phone', fcmToken: fcmToken('a') },
      { deviceId: '', platform: 'ios', fcmToken: fcmToken('a') },
      { deviceId: 'someone-elses-phone', platform: 'ios', fcmToken: fcmToken('a') },
      { platform: 'ios', fcmToken: 'short' },
      { platform: 'ios' },
    ]) {
      const res = await registerDevice(user, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
    const anonymous = await t.app.inject({
      method: 'POST',
      url: '/notifications/device',
      payload: { deviceId: 'p', platform: 'ios', fcmToken: fcmToken('a') },
    });
    expect(anonymous.statusCode).toBe(401);
    expect(await deviceRows()).toEqual([]);
  });
});

describe('the inbox', () => {
  const notify = async (userId: string, title: string) => {
    clock.advance(1000);
    const created = await notifications().notify(userId, 'achievement', { title, body: `${title} body`, data: { screen: 'profile' } });
    return created!.id;
  };

  it('lists my notifications newest first, page by page, with the unread count and an unread filter', async () => {
    const user = await register(t.app);
    const other = await register(t.app);
    const ids = [];
    for (const n of [1, 2, 3, 4, 5]) ids.push(await notify(user.user.id, `n${n}`));
    await notify(other.user.id, 'not mine');

    const first = await inbox(user, '?limit=2');
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      unreadCount: 5,
      items: [{ id: ids[4], title: 'n5', type: 'achievement', read: false, data: { screen: 'profile' } }, { id: ids[3] }],
    });
    const second = (await inbox(user, `?limit=2&cursor=${first.json().nextCursor}`)).json();
    const third = (await inbox(user, `?limit=2&cursor=${second.nextCursor}`)).json();
    expect([...second.items, ...third.items].map((item: { id: string }) => item.id)).toEqual([ids[2], ids[1], ids[0]]);
    expect(third.nextCursor).toBeNull();

    expect((await injectAs(t.app, user, { method: 'PATCH', url: `/notifications/${ids[1]}/read` })).statusCode).toBe(200);
    const unread = (await inbox(user, '?unread=true')).json();
    expect(unread.unreadCount).toBe(4);
    expect(unread.items.map((item: { id: string }) => item.id)).toEqual([ids[4], ids[3], ids[2], ids[0]]);
  });

  it('marks one read (keeping the first read time), then all; another user gets 404 and changes nothing', async () => {
    const user = await register(t.app);
    const stranger = await register(t.app);
    const [a, b] = [await notify(user.user.id, 'a'), await notify(user.user.id, 'b')];

    const read = await injectAs(t.app, user, { method: 'PATCH', url: `/notifications/${a}/read` });
    expect(read.json()).toMatchObject({ id: a, read: true });
    const readAt = read.json().readAt;
    clock.advance(60_000);
    expect((await injectAs(t.app, user, { method: 'PATCH', url: `/notifications/${a}/read` })).json().readAt).toBe(readAt);

    for (const request of [
      { method: 'PATCH', url: `/notifications/${b}/read` },
      { method: 'DELETE', url: `/notifications/${b}` },
    ] as const) {
      const res = await injectAs(t.app, stranger, request);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    expect((await injectAs(t.app, stranger, { method: 'PATCH', url: '/notifications/read-all' })).json()).toEqual({ updated: 0 });
    expect((await inbox(user)).json().unreadCount).toBe(1);

    expect((await injectAs(t.app, user, { method: 'PATCH', url: '/notifications/read-all' })).json()).toEqual({ updated: 1 });
    expect((await inbox(user)).json().unreadCount).toBe(0);
  });

  it('deletes my own notification once; a malformed id or cursor is a 400', async () => {
    const user = await register(t.app);
    const id = await notify(user.user.id, 'gone soon');
    expect((await injectAs(t.app, user, { method: 'DELETE', url: `/notifications/${id}` })).statusCode).toBe(204);
    expect((await injectAs(t.app, user, { method: 'DELETE', url: `/notifications/${id}` })).statusCode).toBe(404);
    expect((await inbox(user)).json()).toEqual({ items: [], nextCursor: null, unreadCount: 0 });
    expect((await injectAs(t.app, user, { method: 'PATCH', url: '/notifications/not-a-uuid/read' })).statusCode).toBe(400);
    expect((await inbox(user, '?cursor=bogus')).json().error.code).toBe('validation_failed');
    expect((await t.app.inject({ method: 'GET', url: '/notifications' })).statusCode).toBe(401);
  });

  it('notifies once per dedupe key', async () => {
    const user = await register(t.app);
    const payload = { title: '7-day streak', body: 'b', dedupeKey: 'streak:7:2026-12-01' };
    const [first, second] = await Promise.all([
      notifications().notify(user.user.id, 'achievement', payload),
      notifications().notify(user.user.id, 'achievement', payload),
    ]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    expect((await inbox(user)).json().items).toHaveLength(1);
  });
});

describe('preferences', () => {
  const preferences = (caller: Pair) => injectAs(t.app, caller, { method: 'GET', url: '/notifications/preferences' });
  const put = (caller: Pair, payload: Record<string, unknown>) => injectAs(t.app, caller, { method: 'PUT', url: '/notifications/preferences', payload });

  it('starts from the documented defaults: everything in-app and as push, e-mail for system and payments only', async () => {
    const user = await register(t.app);
    const res = await preferences(user);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      channels: {
        match_found: { push: true, in_app: true, email: false },
        payment_success: { push: true, in_app: true, email: true },
        system: { push: true, in_app: true, email: true },
        achievement: { push: true, in_app: true, email: false },
        report_update: { push: true, in_app: true, email: false },
        course_ready: { push: true, in_app: true, email: false },
      },
      quietHours: null,
    });
  });

  it('changes only what a PUT names, keeps the rest, and resets to the defaults', async () => {
    const user = await register(t.app);
    const quietHours = { start: '22:00', end: '07:30', timeZone: 'Europe/Berlin' };
    const changed = await put(user, { channels: { achievement: { push: false } }, quietHours });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().channels.achievement).toEqual({ push: false, in_app: true, email: false });
    const again = (await put(user, { channels: { match_found: { email: true } } })).json();
    expect(again.channels.achievement.push).toBe(false);
    expect(again.channels.match_found.email).toBe(true);
    expect(again.quietHours).toEqual(quietHours);
    expect((await preferences(user)).json()).toEqual(again);
    expect((await put(user, { quietHours: null })).json().quietHours).toBeNull();

    const reset = await injectAs(t.app, user, { method: 'POST', url: '/notifications/preferences/reset' });
    expect(reset.statusCode).toBe(200);
    expect(reset.json().channels.achievement.push).toBe(true);
    expect(reset.json()).toEqual((await preferences(user)).json());
  });

  it('keeps both of two concurrent changes', async () => {
    const user = await register(t.app);
    await Promise.all([put(user, { channels: { achievement: { push: false } } }), put(user, { channels: { course_ready: { in_app: false } } })]);
    const { channels } = (await preferences(user)).json();
    expect(channels.achievement.push).toBe(false);
    expect(channels.course_ready.in_app).toBe(false);
  });

  it('refuses to turn system notices off, an unknown time zone, an empty window, a bad time, an unknown type', async () => {
    const user = await register(t.app);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ channels: { system: { email: false } } }, 'channels.system.email'],
      [{ quietHours: { start: '22:00', end: '07:00', timeZone: 'Mars/Olympus' } }, 'quietHours.timeZone'],
      [{ quietHours: { start: '22:00', end: '22:00', timeZone: 'UTC' } }, 'quietHours.end'],
      [{ quietHours: { start: '24:10', end: '07:00', timeZone: 'UTC' } }, 'quietHours.start'],
      [{ channels: { newsletter: { push: false } } }, 'channels'],
    ];
    for (const [payload, path] of cases) {
      const res = await put(user, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.details.fields.map((field: { path: string }) => field.path)).toContain(path);
    }
    expect((await preferences(user)).json().channels.system.email).toBe(true);
  });

  it('writes no inbox row for a type turned off in-app, and nothing at all when every channel is off', async () => {
    const user = await register(t.app);
    await put(user, { channels: { achievement: { in_app: false }, course_ready: { in_app: false, push: false } } });
    const pushOnly = await notifications().notify(user.user.id, 'achievement', { title: 'push only', body: 'b' });
    expect(pushOnly).not.toBeNull();
    expect(await notifications().notify(user.user.id, 'course_ready', { title: 'nothing', body: 'b' })).toBeNull();
    expect((await inbox(user)).json()).toMatchObject({ items: [], unreadCount: 0 });
    // the inbox never shows it, so it cannot be read or deleted there either
    expect((await injectAs(t.app, user, { method: 'PATCH', url: `/notifications/${pushOnly!.id}/read` })).statusCode).toBe(404);
  });
});

describe('quiet hours', () => {
  const berlinNight = { start: '22:00', end: '07:00', timeZone: 'Europe/Berlin' };

  it('delays a push until the window ends in the user’s zone, across midnight and across a clock change', () => {
    // 23:30 in Berlin (UTC+1 in winter): the push waits until 07:00 there, 06:00 UTC
    expect(quietDelayMs(new Date('2026-01-10T22:30:00Z'), berlinNight)).toBe(7.5 * 3600_000);
    // 06:59:30 in Berlin: 30 s left
    expect(quietDelayMs(new Date('2026-01-10T05:59:30Z'), berlinNight)).toBe(30_000);
    // 21:59 and 07:00 are outside
    expect(quietDelayMs(new Date('2026-01-10T20:59:00Z'), berlinNight)).toBe(0);
    expect(quietDelayMs(new Date('2026-01-10T06:00:00Z'), berlinNight)).toBe(0);
    // the same instant is quiet in Berlin and not in New York (17:30 there)
    expect(quietDelayMs(new Date('2026-01-10T22:30:00Z'), { ...berlinNight, timeZone: 'America/New_York' })).toBe(0);
    // the night clocks go forward in Berlin (29 March 2026, 02:00 -> 03:00): from 01:00 CET
    // (00:00 UTC) to 07:00 CEST (05:00 UTC) is 5 hours, not the 6 the clock face shows
    expect(quietDelayMs(new Date('2026-03-29T00:00:00Z'), berlinNight)).toBe(5 * 3600_000);
    // and back (25 October 2026, 03:00 -> 02:00): from 01:00 CEST (23:00 UTC) to 07:00 CET (06:00 UTC) is 7 hours
    expect(quietDelayMs(new Date('2026-10-24T23:00:00Z'), berlinNight)).toBe(7 * 3600_000);
    // a daytime window
    expect(quietDelayMs(new Date('2026-01-10T12:00:00Z'), { start: '09:00', end: '17:00', timeZone: 'UTC' })).toBe(5 * 3600_000);
  });

  it('shows the in-app row at once and holds the push until the end of the window', async () => {
    // now, on the minute; the user's quiet window in Tokyo (UTC+9, no DST) runs from an hour ago to three hours ahead
    const now = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    clock.set(now);
    const user = await register(t.app);
    const tokyo = (offsetMinutes: number) => new Date(now.getTime() + (9 * 60 + offsetMinutes) * 60_000).toISOString().slice(11, 16);
    const quietHours = { start: tokyo(-60), end: tokyo(180), timeZone: 'Asia/Tokyo' };
    await injectAs(t.app, user, { method: 'PUT', url: '/notifications/preferences', payload: { quietHours } });
    await registerDevice(user, { deviceId: 'phone-1', platform: 'ios', fcmToken: fcmToken('quiet') });
    const created = await notifications().notify(user.user.id, 'achievement', { title: 'late', body: 'b' });
    expect((await inbox(user)).json().items.map((item: { id: string }) => item.id)).toEqual([created!.id]);
    const [delivery] = await t.container.db.query('SELECT status, not_before FROM notification_deliveries WHERE notification_id = $1', [created!.id]);
    expect(delivery).toEqual({ status: 'queued', not_before: new Date(now.getTime() + 3 * 3600_000) });
    // due only then: a worker reaching it earlier (a retry, the sweeper) leaves it queued
    await notifications().drainDuePushes(Date.now(), { logger: t.container.logger });
    expect((await t.container.db.query('SELECT status FROM notification_deliveries WHERE notification_id = $1', [created!.id]))[0].status).toBe('queued');
  });
});

describe('an erased account', () => {
  it('loses its devices, notifications and preferences', async () => {
    const user = await register(t.app);
    await registerDevice(user, { deviceId: 'phone-1', platform: 'ios', fcmToken: fcmToken('erased') });
    await injectAs(t.app, user, { method: 'PUT', url: '/notifications/preferences', payload: { channels: { achievement: { push: false } } } });
    await notifications().notify(user.user.id, 'system', { title: 't', body: 'b' });
    const deleted = await injectAs(t.app, user, { method: 'DELETE', url: '/users/me', payload: { password: 'correct horse battery' } });
    expect(deleted.statusCode).toBe(204);
    for (const table of ['device_tokens', 'notifications', 'notification_preferences']) {
      const [{ count }] = await t.container.db.query(`SELECT count(*)::int AS count FROM ${table} WHERE user_id = $1`, [user.user.id]);
      expect(count, table).toBe(0);
    }
  });
});

describe('the e-mail template preview', () => {
  it('renders every template outside production, and does not exist in production', async () => {
    const list = await t.app.inject({ method: 'GET', url: '/dev/mail' });
    expect(list.statusCode).toBe(200);
    const { templates } = list.json<{ templates: string[] }>();
    expect(templates).toEqual(expect.arrayContaining(['verify-email', 'reset-password', 'password-changed', 'payment-receipt', 'new-sign-in', 'notification']));
    for (const template of templates) {
      const html = await t.app.inject({ method: 'GET', url: `/dev/mail/${template}` });
      expect(html.statusCode, template).toBe(200);
      expect(html.headers['content-type']).toMatch(/^text\/html/);
      const text = await t.app.inject({ method: 'GET', url: `/dev/mail/${template}?format=text` });
      expect(text.headers['content-type']).toMatch(/^text\/plain/);
    }
    expect((await t.app.inject({ method: 'GET', url: '/dev/mail/newsletter' })).statusCode).toBe(404);

    const production = await buildTestApp({
      env: {
        NODE_ENV: 'production',
        SESSION_SECRET: 'a production session secret of 32+ chars',
        METRICS_TOKEN: 'a production metrics token',
        OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32),
      },
    });
    try {
      expect((await production.app.inject({ method: 'GET', url: '/dev/mail' })).statusCode).toBe(404);
      expect((await production.app.inject({ method: 'GET', url: '/dev/mail/verify-email' })).statusCode).toBe(404);
    } finally {
      await production.close();
    }
  });
});
