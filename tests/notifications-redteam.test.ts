import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, uniqueEmail, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { quietDelayMs } from '../src/modules/notifications/preferences.js';
import { makeServiceAccount, startFakeFcm, type FakeFcm } from './helpers/fake-fcm.js';
import { whenJobsIdle } from './helpers/jobs.js';
import { until } from './helpers/wait.js';

// Findings of a red-team review of the notifications module: each test states what a client or an operator is owed.

const clock = manualClock();
let fake: FakeFcm;
let t: TestApp;
let admin: Pair;

beforeAll(async () => {
  const account = makeServiceAccount();
  fake = await startFakeFcm({ accounts: [account] });
  t = await buildTestApp({
    clock,
    env: {
      FIREBASE_PROJECT_ID: account.projectId,
      FIREBASE_CLIENT_EMAIL: account.clientEmail,
      FIREBASE_PRIVATE_KEY: account.privateKey.replace(/\n/g, '\\n'),
      FCM_API_URL: fake.url,
      FIREBASE_TOKEN_URL: fake.tokenUrl,
    },
  });
  const email = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(email, PASSWORD);
  admin = await login(t.app, email);
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => clock.set(new Date()));

const newToken = () => `fcm-${randomUUID()}-${'t'.repeat(24)}`;
const registerDevice = (caller: Pair, body: Record<string, unknown>) =>
  injectAs(t.app, caller, { method: 'POST', url: '/notifications/device', payload: body });
const cursorOf = (createdAt: string, id: string) => Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');

describe('a forged cursor', () => {
  it.each([
    ['an id that is not a uuid', cursorOf(new Date().toISOString(), '-'.repeat(36))],
    ['a time before 4713 BC', cursorOf('-100000-01-01T00:00:00.000Z', randomUUID())],
  ])('is a 400, not a 500: %s', async (_case, cursor) => {
    const user = await register(t.app);
    const res = await injectAs(t.app, user, { method: 'GET', url: `/notifications?cursor=${cursor}` });
    expect(res.statusCode).toBe(400);
  });
});

describe('push drain windows', () => {
  it('sends a push whose notification committed after the drain of its window already ran', async () => {
    // The window of a push is taken from the time notify started, before its transaction: a notify whose commit comes
    // after that window's drain job has claimed (a slow transaction, under load) enqueues the same job id again, which
    // BullMQ ignores while the finished job is kept (24 h). The frozen clock reproduces that timing exactly.
    const user = await register(t.app);
    const token = newToken();
    expect((await registerDevice(user, { platform: 'android', fcmToken: token })).statusCode).toBe(200);
    const notifications = t.container.services.notifications;

    await notifications.notify(user.user.id, 'achievement', { title: 'First', body: 'one' });
    await fake.nextPush(token);
    await whenJobsIdle(t.container.jobs.queue, ['notifications.push'], 15_000);

    const second = await notifications.notify(user.user.id, 'achievement', { title: 'Second', body: 'two' });
    await until(() => fake.received.some((push) => push.token === token && push.message.data?.notificationId === second!.id), {
      timeoutMs: 10_000,
      message: 'the second push reached FCM',
    });
  });
});

describe('quiet hours', () => {
  it('holds a push until after the window when its end falls in the hour skipped by a clock change', () => {
    // Europe/Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST, so 02:30 never shows. At 01:00 local the user is
    // inside 22:00-02:30; the push must wait until the first moment after the window, 03:00 CEST (01:00Z).
    const now = new Date('2026-03-29T00:00:00Z');
    const releasedAt = new Date(now.getTime() + quietDelayMs(now, { start: '22:00', end: '02:30', timeZone: 'Europe/Berlin' }));
    expect(releasedAt.toISOString()).toBe('2026-03-29T01:00:00.000Z');
  });
});

describe('device registration', () => {
  it('stops pushing to a device once its session signs out, whatever device id the app registered the token under', async () => {
    // Logout forgets the tokens of the signed-out session's device id; the token's device id is taken from the body,
    // never checked against the caller's session, so a token filed under another id outlives the sign-out.
    const user = await register(t.app, { deviceId: 'phone-1' });
    const token = newToken();
    const registered = await registerDevice(user, { deviceId: 'fcm-install-7', platform: 'ios', fcmToken: token });
    // refused: a token belongs to the device its session signed in with
    expect(registered.statusCode).toBe(400);
    expect(registered.json().error.details.fields[0].path).toBe('deviceId');
    expect((await injectAs(t.app, user, { method: 'POST', url: '/auth/logout' })).statusCode).toBe(204);
    const left = await until(
      async () => {
        const rows = await t.container.db.query<Array<{ device_id: string }>>('SELECT device_id FROM device_tokens WHERE fcm_token = $1', [token]);
        return rows.length === 0 ? 'gone' : null;
      },
      { timeoutMs: 3_000, message: 'the signed-out device token was forgotten' },
    );
    expect(left).toBe('gone');
  });

  it('keeps one row when the app registers the same device and token twice at once (two starts racing)', async () => {
    const user = await register(t.app);
    const token = newToken();
    const answers = await Promise.all(Array.from({ length: 4 }, () => registerDevice(user, { deviceId: 'phone-1', platform: 'ios', fcmToken: token })));
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 200, 200]);
    const rows = await t.container.db.query('SELECT device_id FROM device_tokens WHERE fcm_token = $1', [token]);
    expect(rows).toHaveLength(1);
  });

  it('answers 200 to every account registering the same token at the same moment', async () => {
    const users = await Promise.all(Array.from({ length: 8 }, () => register(t.app)));
    const token = newToken();
    const answers = await Promise.all(users.map((user) => registerDevice(user, { platform: 'android', fcmToken: token })));
    expect(answers.map((answer) => answer.statusCode)).toEqual(users.map(() => 200));
    const rows = await t.container.db.query('SELECT user_id FROM device_tokens WHERE fcm_token = $1', [token]);
    expect(rows).toHaveLength(1);
  });
});

describe('broadcast audience', () => {
  it('reaches no banned and no deleted account, even when the admin names them', async () => {
    const [live, banned, deleted] = [await register(t.app), await register(t.app), await register(t.app)];
    const ban = await injectAs(t.app, admin, { method: 'PATCH', url: `/admin/users/${banned.user.id}/ban`, payload: { reason: 'spam' } });
    expect(ban.statusCode).toBe(204);
    expect((await injectAs(t.app, deleted, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } })).statusCode).toBe(204);

    const started = await injectAs(t.app, admin, {
      method: 'POST',
      url: '/admin/notifications/broadcast',
      payload: { title: 'Survey', body: 'Tell us what you think', audience: 'userIds', userIds: [live.user.id, banned.user.id, deleted.user.id] },
    });
    expect(started.statusCode).toBe(202);
    const { broadcastId } = started.json<{ broadcastId: string }>();
    const finished = await until(
      async () =>
        (
          await t.container.db.query<Array<{ recipients: number }>>(
            'SELECT recipients FROM notification_broadcasts WHERE id = $1 AND finished_at IS NOT NULL',
            [broadcastId],
          )
        )[0],
      { timeoutMs: 15_000, message: 'the broadcast finished' },
    );
    expect(finished.recipients).toBe(1);
    const reached = await t.container.db.query<Array<{ user_id: string }>>('SELECT user_id FROM notifications WHERE dedupe_key = $1', [
      `broadcast:${broadcastId}`,
    ]);
    expect(reached.map((row) => row.user_id)).toEqual([live.user.id]);
  });
});

describe('a broadcast too big for FCM', () => {
  it('is refused up front, or at least costs nobody their device token', async () => {
    // 1,500 Japanese characters pass the schema (max 2000) but are 4,500 bytes of UTF-8, past FCM's 4,096-byte limit.
    // FCM answers such a message 400 INVALID_ARGUMENT ("Message is too big"), which the sender takes for a dead
    // token: the broadcast deletes the token of every recipient.
    const user = await register(t.app);
    const token = newToken();
    expect((await registerDevice(user, { platform: 'android', fcmToken: token })).statusCode).toBe(200);
    const payload = { title: 'Parley のお知らせ', body: '日本語'.repeat(500), audience: 'userIds', userIds: [user.user.id] };
    expect(Buffer.byteLength(payload.title + payload.body)).toBeGreaterThan(4096);
    fake.script(token, { status: 400, fcmError: 'INVALID_ARGUMENT' });

    const started = await injectAs(t.app, admin, { method: 'POST', url: '/admin/notifications/broadcast', payload });
    if (started.statusCode === 400) return;
    expect(started.statusCode).toBe(202);
    await fake.nextPush(token);
    await whenJobsIdle(t.container.jobs.queue, ['notifications.broadcast', 'notifications.push'], 15_000);
    const rows = await t.container.db.query('SELECT device_id FROM device_tokens WHERE fcm_token = $1', [token]);
    expect(rows).toHaveLength(1);
  });
});
