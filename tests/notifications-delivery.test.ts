import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, uniqueEmail, type Pair } from './helpers/auth.js';
import { INVALID_TOKEN_MESSAGE, makeServiceAccount, startFakeFcm, type FakeFcm, type TestServiceAccount } from './helpers/fake-fcm.js';
import { eventually, whenJobsIdle } from './helpers/jobs.js';
import { client, listen, matchedPair, readyUser, type Client } from './helpers/realtime.js';
import { startSmtpCapture } from './helpers/smtp.js';
import { until } from './helpers/wait.js';

let account: TestServiceAccount;
let fake: FakeFcm;
let smtp: Awaited<ReturnType<typeof startSmtpCapture>>;
let t: TestApp;
let url: string;
let admin: Pair;
const open: Client[] = [];

beforeAll(async () => {
  account = makeServiceAccount();
  fake = await startFakeFcm({ accounts: [account] });
  smtp = await startSmtpCapture();
  t = await buildTestApp({
    env: {
      FIREBASE_PROJECT_ID: account.projectId,
      FIREBASE_CLIENT_EMAIL: account.clientEmail,
      // as an .env file holds it: one line, with \n escapes
      FIREBASE_PRIVATE_KEY: account.privateKey.replace(/\n/g, '\\n'),
      FCM_API_URL: fake.url,
      FIREBASE_TOKEN_URL: fake.tokenUrl,
      SMTP_URL: smtp.url,
      APP_URL: 'https://parley.example',
      MATCH_BACKGROUND_GRACE: '30s',
    },
  });
  url = await listen(t.app);
  const email = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(email, PASSWORD);
  admin = await login(t.app, email);
});
afterEach(() => {
  for (const each of open.splice(0)) each.close();
});
afterAll(async () => {
  await t.close();
  await fake.close();
  await smtp.close();
});

const notifications = () => t.container.services.notifications;
const db = () => t.container.db;
const deliveryQueues = ['notifications.push', 'notifications.email', 'notifications.react', 'notifications.broadcast'];
const deliveriesSettled = () => whenJobsIdle(t.container.jobs.queue, deliveryQueues, 30_000);
const newToken = () => `fcm-${randomUUID()}-${'t'.repeat(24)}`;
/**
 * Signs the user in on each device, waits out the new-sign-in notices that brings, then
 * registers a push token for each device session; returns the tokens.
 */
const addDevices = async <const T extends readonly string[]>(user: Pair & { email: string }, deviceIds: T): Promise<{ [K in keyof T]: string }> => {
  const sessions = [];
  for (const deviceId of deviceIds) sessions.push(await login(t.app, user.email, { deviceId, platform: 'android' }));
  await deliveriesSettled();
  const tokens = [];
  for (const session of sessions) {
    const token = newToken();
    const res = await injectAs(t.app, session, { method: 'POST', url: '/notifications/device', payload: { platform: 'android', fcmToken: token } });
    expect(res.statusCode).toBe(200);
    tokens.push(token);
  }
  return tokens as { [K in keyof T]: string };
};
const sendsTo = (token: string) => fake.received.filter((push) => push.token === token);
const tokensOf = async (userId: string) =>
  (await db().query<Array<{ device_id: string }>>('SELECT device_id FROM device_tokens WHERE user_id = $1 ORDER BY device_id', [userId])).map(
    (row) => row.device_id,
  );
const deliveries = (notificationId: string) =>
  db().query<Array<{ channel: string; target: string; status: string; error: string | null }>>(
    'SELECT channel, target, status, error FROM notification_deliveries WHERE notification_id = $1 ORDER BY channel, target',
    [notificationId],
  );
const inbox = async (caller: Pair) =>
  (await injectAs(t.app, caller, { method: 'GET', url: '/notifications' })).json<{ items: Array<Record<string, unknown>> }>().items;

describe('push through FCM', () => {
  it('reaches every device of the user once, with the deep link, and records when it went out', async () => {
    const user = await register(t.app);
    const [phone, tablet] = await addDevices(user, ['pixel', 'tablet']);
    const created = await notifications().notify(user.user.id, 'achievement', { title: '7-day streak!', body: 'Keep going', data: { screen: 'profile' } });
    const [onPhone, onTablet] = await Promise.all([fake.nextPush(phone), fake.nextPush(tablet)]);
    for (const push of [onPhone, onTablet]) {
      expect(push.message.notification).toEqual({ title: '7-day streak!', body: 'Keep going' });
      expect(push.message.data).toEqual({ screen: 'profile', notificationId: created!.id, type: 'achievement' });
      expect(push.message.android).toMatchObject({ collapse_key: created!.id });
      expect(push.authorization).toMatch(/^Bearer ya29\.fake-/);
    }
    await deliveriesSettled();
    expect(await deliveries(created!.id)).toEqual([
      { channel: 'push', target: 'pixel', status: 'sent', error: null },
      { channel: 'push', target: 'tablet', status: 'sent', error: null },
    ]);
    const [row] = await db().query('SELECT sent_at FROM notifications WHERE id = $1', [created!.id]);
    expect(row.sent_at).toBeInstanceOf(Date);

    // a retried job (or the sweeper) reaching the same notification sends nothing again
    await notifications().drainDuePushes(Date.now(), { logger: t.container.logger });
    await notifications().redeliverStranded();
    await deliveriesSettled();
    expect([sendsTo(phone), sendsTo(tablet)].map((sends) => sends.length)).toEqual([1, 1]);
  });

  it('deletes a token FCM calls unregistered, and still reaches the other devices', async () => {
    const user = await register(t.app);
    const [dead, alive] = await addDevices(user, ['old-phone', 'new-phone']);
    fake.script(dead, { status: 404, fcmError: 'UNREGISTERED' });
    const created = await notifications().notify(user.user.id, 'system', { title: 'Hello', body: 'b', channels: ['push'] });
    await fake.nextPush(alive);
    await deliveriesSettled();
    expect(await tokensOf(user.user.id)).toEqual(['new-phone']);
    expect(await deliveries(created!.id)).toEqual([
      { channel: 'push', target: 'new-phone', status: 'sent', error: null },
      { channel: 'push', target: 'old-phone', status: 'failed', error: 'messaging/registration-token-not-registered' },
    ]);
    expect(sendsTo(dead)).toHaveLength(1);
  });

  it('retries after a 429 once FCM’s Retry-After has passed, and delivers once', async () => {
    const user = await register(t.app);
    const [token] = await addDevices(user, ['pixel']);
    fake.script(token, { status: 429, fcmError: 'QUOTA_EXCEEDED', retryAfter: '1' });
    const created = await notifications().notify(user.user.id, 'achievement', { title: 'slow down', body: 'b' });
    const first = await fake.nextPush(token);
    const second = await fake.nextPush(token);
    expect(first.status).toBe(429);
    expect(second.status).toBe(200);
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(1000);
    await deliveriesSettled();
    expect(await deliveries(created!.id)).toMatchObject([{ status: 'sent' }]);
    expect(sendsTo(token)).toHaveLength(2);
  });

  it('retries a 500 with backoff', async () => {
    const user = await register(t.app);
    const [token] = await addDevices(user, ['pixel']);
    fake.script(token, { status: 500 });
    const created = await notifications().notify(user.user.id, 'achievement', { title: 'flaky', body: 'b' });
    expect((await fake.nextPush(token)).status).toBe(500);
    expect((await fake.nextPush(token)).status).toBe(200);
    await deliveriesSettled();
    expect(await deliveries(created!.id)).toMatchObject([{ status: 'sent' }]);
  });

  it('does not retry a request FCM refuses for good: a 400 deletes the token, a 403 keeps it', async () => {
    const user = await register(t.app);
    const [malformed, foreign] = await addDevices(user, ['a', 'b']);
    fake.script(malformed, { status: 400, fcmError: 'INVALID_ARGUMENT', message: INVALID_TOKEN_MESSAGE });
    fake.script(foreign, { status: 403, fcmError: 'SENDER_ID_MISMATCH' });
    const created = await notifications().notify(user.user.id, 'achievement', { title: 'refused', body: 'b' });
    await deliveriesSettled();
    // settled with no retry pending: each was asked once
    expect([sendsTo(malformed).length, sendsTo(foreign).length]).toEqual([1, 1]);
    expect(await deliveries(created!.id)).toMatchObject([
      { target: 'a', status: 'failed', error: 'messaging/invalid-argument' },
      { target: 'b', status: 'failed', error: 'messaging/mismatched-credential' },
    ]);
    expect(await tokensOf(user.user.id)).toEqual(['b']);
    const [stats] = (await t.container.jobs.queue.stats()).filter((entry) => entry.queue === 'notifications.push');
    expect(stats!.counts.dead).toBe(0);
  });

  it('honours the push switch: a type turned off sends nothing', async () => {
    const user = await register(t.app);
    const [token] = await addDevices(user, ['pixel']);
    await injectAs(t.app, user, { method: 'PUT', url: '/notifications/preferences', payload: { channels: { achievement: { push: false } } } });
    const created = await notifications().notify(user.user.id, 'achievement', { title: 'quiet please', body: 'b' });
    await deliveriesSettled();
    expect(await deliveries(created!.id)).toEqual([]);
    expect(sendsTo(token)).toEqual([]);
  });
});

describe('e-mail', () => {
  it('sends the e-mail channel through SMTP as text and HTML, and not for a type whose e-mail is off', async () => {
    const user = await register(t.app);
    await smtp.nextMail(user.email); // the verification mail of the sign-up
    const notice = await notifications().notify(user.user.id, 'system', { title: 'Maintenance <tonight>', body: 'We will be back at 02:00 & sooner.' });
    const mail = await smtp.nextMail(user.email);
    expect(mail.raw).toContain('multipart/alternative');
    expect(mail.raw).toContain('Maintenance &lt;tonight&gt;');
    const silent = await notifications().notify(user.user.id, 'achievement', { title: 'no mail', body: 'b' });
    await deliveriesSettled();
    expect(await deliveries(notice!.id)).toEqual([{ channel: 'email', target: 'email', status: 'sent', error: null }]);
    expect(await deliveries(silent!.id)).toEqual([]);
  });
});

describe('what other modules tell users', () => {
  it('forgets the token of the device that signs out, then every token at logout-all', async () => {
    const user = await register(t.app); // signed in on phone-1
    const laptop = await login(t.app, user.email); // laptop-1
    await deliveriesSettled(); // the new-sign-in notice
    for (const session of [user, laptop]) {
      const res = await injectAs(t.app, session, { method: 'POST', url: '/notifications/device', payload: { platform: 'android', fcmToken: newToken() } });
      expect(res.statusCode).toBe(200);
    }
    expect(await tokensOf(user.user.id)).toEqual(['laptop-1', 'phone-1']);
    expect((await injectAs(t.app, user, { method: 'POST', url: '/auth/logout' })).statusCode).toBe(204);
    expect(await tokensOf(user.user.id)).toEqual(['laptop-1']);
    expect((await injectAs(t.app, laptop, { method: 'POST', url: '/auth/logout-all' })).statusCode).toBe(204);
    expect(await tokensOf(user.user.id)).toEqual([]);
  });

  it('tells a user of a sign-in from a new device, in the inbox and by e-mail, and not of a known one', async () => {
    const user = await register(t.app); // phone-1
    await smtp.nextMail(user.email);
    await login(t.app, user.email, { deviceId: 'phone-1', platform: 'ios' });
    const office = await login(t.app, user.email, { deviceId: 'office-pc', platform: 'web' });
    const mail = await smtp.nextMail(user.email);
    expect(mail.raw).toContain('New sign-in');
    await deliveriesSettled();
    const items = await inbox(office);
    expect(items.map((item) => item.title)).toEqual(['New sign-in to your account']);
  });

  it('bans: every token forgotten at once, and the notice by e-mail', async () => {
    const user = await register(t.app);
    await smtp.nextMail(user.email);
    await addDevices(user, ['pixel']);
    const banned = await injectAs(t.app, admin, { method: 'PATCH', url: `/admin/users/${user.user.id}/ban`, payload: { reason: 'abusive language' } });
    expect(banned.statusCode).toBe(204);
    expect(await tokensOf(user.user.id)).toEqual([]);
    const mail = await smtp.nextMail(user.email, 'Your Parley account is suspended');
    expect(mail.raw).toContain('abusive language');
  });

  it('tells the reporter how the report ended, and the admins when a user is flagged', async () => {
    const target = await register(t.app);
    const reporters = [await register(t.app), await register(t.app), await register(t.app)];
    const reportIds: string[] = [];
    for (const reporter of reporters) {
      const res = await injectAs(t.app, reporter, { method: 'POST', url: '/reports', payload: { reportedId: target.user.id, reason: 'spam' } });
      expect(res.statusCode).toBe(201);
      reportIds.push(res.json().id);
    }
    const adminInbox = await until(async () => (await inbox(admin)).find((item) => (item.data as Record<string, string>).userId === target.user.id), {
      timeoutMs: 15_000,
      message: 'the admin was told of the flagged user',
    });
    expect(adminInbox).toMatchObject({ type: 'system', title: 'A user was flagged for review' });

    const decided = await injectAs(t.app, admin, { method: 'PATCH', url: `/admin/reports/${reportIds[0]}`, payload: { status: 'actioned' } });
    expect(decided.statusCode).toBe(200);
    const update = await until(async () => (await inbox(reporters[0]!)).find((item) => item.type === 'report_update'), {
      timeoutMs: 15_000,
      message: 'the reporter heard',
    });
    expect(update).toMatchObject({ title: 'Your report was reviewed', data: { screen: 'reports', reportId: reportIds[0], status: 'actioned' } });
    expect(await inbox(reporters[1]!)).toEqual([]);
  });

  it('praises a streak milestone once, when the call that reaches it ends', async () => {
    const { a, b, ca, cb, roomId } = await matchedPair({ t, url }, { track: open });
    // two days of practice already, the last one yesterday
    await db().query("UPDATE profiles SET streak_days = 2, last_session_at = now() - interval '1 day' WHERE user_id = $1", [a.user.id]);
    ca.socket.emit('join_room', { roomId });
    await ca.next('peer_joined');
    cb.socket.emit('join_room', { roomId });
    await cb.next('peer_joined');
    ca.socket.emit('end_call', { roomId });
    await cb.next('peer_left');
    const praise = await until(async () => (await inbox(a)).find((item) => item.type === 'achievement'), {
      timeoutMs: 15_000,
      message: 'the streak was praised',
    });
    expect(praise).toMatchObject({ title: '3-day streak!', data: { screen: 'profile', streakDays: '3' } });
    await deliveriesSettled();
    expect(await inbox(b)).toEqual([]);
  });

  it('pushes match_found to a searcher whose app went to the background, and not to one still connected', async () => {
    const [waiting, arriving] = [await readyUser(t.app), await readyUser(t.app)];
    const [[waitingToken], [arrivingToken]] = [await addDevices(waiting, ['phone-w']), await addDevices(arriving, ['phone-a'])];
    const backgrounded = await client(url, waiting.accessToken);
    backgrounded.socket.emit('find_partner', {});
    await backgrounded.next('searching');
    backgrounded.close();
    await until(async () => (await t.container.redis.client.exists(`match:background:${waiting.user.id}`)) === 1, {
      message: 'the search went to the background',
    });

    const present = await client(url, arriving.accessToken);
    open.push(present);
    present.socket.emit('find_partner', {});
    const match = await present.next<{ roomId: string }>('match_found');
    const push = await fake.nextPush(waitingToken);
    expect(push.message.notification?.title).toBe('Partner found!');
    expect(push.message.data).toMatchObject({ screen: 'call', roomId: match.roomId, type: 'match_found' });
    await deliveriesSettled();
    expect(sendsTo(arrivingToken)).toEqual([]);
    // push only: the match is stale by the time anyone reads an inbox
    expect((await inbox(waiting)).filter((item) => item.type === 'match_found')).toEqual([]);

    // back in the foreground within the grace, the user joins the room the push named
    const back = await client(url, waiting.accessToken);
    open.push(back);
    back.socket.emit('join_room', { roomId: match.roomId });
    await back.next('peer_joined');
  });
});

describe('admin broadcast', () => {
  it('reaches the audience in the inbox and by push, as a job whose progress the admin can follow', async () => {
    const users = await Promise.all([readyUser(t.app, 'beginner'), readyUser(t.app, 'beginner'), readyUser(t.app, 'advanced')]);
    const tokens = (await Promise.all(users.map((user, index) => addDevices(user, [`device-${index}`])))).flat();
    const started = await injectAs(t.app, admin, {
      method: 'POST',
      url: '/admin/notifications/broadcast',
      payload: { title: 'New course', body: 'Beginners: a course for you', audience: 'level', level: 'beginner' },
    });
    expect(started.statusCode).toBe(202);
    const { broadcastId, jobId } = started.json();
    await Promise.all(tokens.slice(0, 2).map((token) => fake.nextPush(token)));
    const job = await eventually(
      async () => (await injectAs(t.app, admin, { method: 'GET', url: `/admin/jobs/${jobId}` })).json(),
      (body) => body.state === 'completed',
    );
    expect(job.progress).toBe(100);
    await deliveriesSettled();
    expect(sendsTo(tokens[2]!)).toEqual([]);
    expect((await inbox(users[0]))[0]).toMatchObject({ type: 'system', title: 'New course', data: { broadcastId } });
    const [broadcast] = await db().query('SELECT recipients, finished_at FROM notification_broadcasts WHERE id = $1', [broadcastId]);
    expect(broadcast.recipients).toBe(2);

    const stats = (await injectAs(t.app, admin, { method: 'GET', url: '/admin/stats' })).json();
    expect(stats.notifications.push.sent).toBeGreaterThanOrEqual(2);
    expect(stats.notifications).toHaveProperty('email.queued');
  });

  it('refuses a non-admin, an audience without its level or users, and an unknown audience', async () => {
    const user = await register(t.app);
    const body = { title: 't', body: 'b', audience: 'all' };
    const broadcasts = async () => (await db().query('SELECT count(*)::int AS count FROM notification_broadcasts'))[0].count as number;
    const before = await broadcasts();
    expect((await injectAs(t.app, user, { method: 'POST', url: '/admin/notifications/broadcast', payload: body })).statusCode).toBe(403);
    for (const payload of [
      { ...body, audience: 'level' },
      { ...body, audience: 'userIds' },
      { ...body, audience: 'everyone' },
      { ...body, audience: 'userIds', userIds: ['not-a-uuid'] },
    ]) {
      const res = await injectAs(t.app, admin, { method: 'POST', url: '/admin/notifications/broadcast', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    expect(await broadcasts()).toBe(before);
  });
});
