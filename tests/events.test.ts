import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainEventError, EventBus, type DomainEventName } from '../src/infra/events.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, login, type Pair, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { listen, matchedPair } from './helpers/realtime.js';

declare module '../src/infra/events.js' {
  interface DomainEvents {
    'test.happened': { id: string };
    'test.other': { n: number };
  }
}

describe('domain event bus', () => {
  it('runs every handler of an event, in subscription order, and only that event', async () => {
    const bus = new EventBus();
    const seen: string[] = [];
    bus.on('test.happened', ({ id }) => void seen.push(`first:${id}`));
    bus.on('test.happened', async ({ id }) => {
      await Promise.resolve();
      seen.push(`second:${id}`);
    });
    bus.on('test.other', ({ n }) => void seen.push(`other:${n}`));
    await bus.publish('test.happened', { id: 'a' });
    expect(seen).toEqual(['first:a', 'second:a']);
  });

  it('runs the later handlers when one fails, then rejects with its error', async () => {
    const bus = new EventBus();
    const seen: string[] = [];
    const failure = new Error('subscriber down');
    bus.on('test.happened', () => {
      throw failure;
    });
    bus.on('test.happened', ({ id }) => void seen.push(id));
    await expect(bus.publish('test.happened', { id: 'b' })).rejects.toBe(failure);
    expect(seen).toEqual(['b']);
  });

  it('reports every failure when several handlers fail', async () => {
    const bus = new EventBus();
    bus.on('test.other', () => Promise.reject(new Error('one')));
    bus.on('test.other', () => Promise.reject(new Error('two')));
    const error = await bus.publish('test.other', { n: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainEventError);
    expect((error as DomainEventError).errors.map((e: Error) => e.message)).toEqual(['one', 'two']);
  });

  it('stops calling a handler once unsubscribed; publishing with no subscriber is a no-op', async () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const off = bus.on('test.other', ({ n }) => void seen.push(n));
    await bus.publish('test.other', { n: 1 });
    off();
    await bus.publish('test.other', { n: 2 });
    await bus.publish('test.happened', { id: 'nobody listens' });
    expect(seen).toEqual([1]);
  });
});

describe('the events modules publish', () => {
  let t: TestApp;
  let url: string;
  let admin: Pair;
  const seen: Array<{ name: DomainEventName; payload: unknown }> = [];
  const names: DomainEventName[] = ['user.registered', 'user.banned', 'user.unbanned', 'user.deleted', 'report.created', 'report.resolved', 'call.ended'];

  beforeAll(async () => {
    t = await buildTestApp();
    url = await listen(t.app);
    for (const name of names) t.container.events.on(name, (payload) => void seen.push({ name, payload }));
    const email = uniqueEmail('admin');
    await t.container.services.auth.ensureAdmin(email, PASSWORD);
    admin = await login(t.app, email);
  });
  afterAll(() => t.close());

  const of = (name: DomainEventName) => seen.filter((event) => event.name === name).map((event) => event.payload);

  it('registration, a report, its decision with a ban, an unban, a call and a deletion each say so once', async () => {
    const { a, b, ca, cb, roomId, callId } = await matchedPair({ t, url });
    expect(of('user.registered')).toEqual(
      expect.arrayContaining([
        { userId: a.user.id, email: a.email },
        { userId: b.user.id, email: b.email },
      ]),
    );

    const ended = new Promise<void>((resolve) => t.container.events.on('call.ended', () => resolve()));
    ca.socket.emit('end_call', { roomId });
    await ended;
    expect(of('call.ended')).toEqual([
      { callId, roomId, userIds: expect.arrayContaining([a.user.id, b.user.id]), durationSeconds: expect.any(Number), endedBy: expect.any(String) },
    ]);

    const created = await injectAs(t.app, a, { method: 'POST', url: '/reports', payload: { reportedId: b.user.id, reason: 'spam', sessionId: callId } });
    expect(created.statusCode).toBe(201);
    const reportId = created.json().id as string;
    expect(of('report.created')).toEqual([{ reportId, reporterId: a.user.id, reportedId: b.user.id, reason: 'spam', flagged: false }]);

    const decided = await injectAs(t.app, admin, {
      method: 'PATCH',
      url: `/admin/reports/${reportId}`,
      payload: { status: 'actioned', ban: { reason: 'spamming partners' } },
    });
    expect(decided.statusCode).toBe(200);
    expect(of('report.resolved')).toEqual([{ reportId, reporterId: a.user.id, reportedId: b.user.id, status: 'actioned', actorId: admin.user.id }]);
    expect(of('user.banned')).toEqual([{ userId: b.user.id, actorId: admin.user.id, reason: 'spamming partners', sessionIds: [expect.any(String)] }]);
    // the auth module's subscriber denied the session at once (not after the 1 s status cache)
    const [banned] = of('user.banned') as Array<{ sessionIds: string[] }>;
    expect(await t.container.redis.client.exists(`auth:revoked-session:${banned!.sessionIds[0]}`)).toBe(1);
    expect((await injectAs(t.app, b, { method: 'GET', url: '/auth/me' })).json().error.code).toBe('account_banned');

    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/admin/users/${b.user.id}/unban` })).statusCode).toBe(204);
    expect(of('user.unbanned')).toEqual([{ userId: b.user.id, actorId: admin.user.id }]);

    expect((await injectAs(t.app, a, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } })).statusCode).toBe(204);
    expect(of('user.deleted')).toEqual([{ userId: a.user.id }]);
    ca.close();
    cb.close();
  });

  it('publishes nothing for a refused request', async () => {
    const before = seen.length;
    const user = await register(t.app);
    const registered = seen.length;
    expect(registered).toBe(before + 1);
    expect((await injectAs(t.app, user, { method: 'POST', url: '/reports', payload: { reportedId: user.user.id, reason: 'spam' } })).statusCode).toBe(400);
    expect((await injectAs(t.app, user, { method: 'DELETE', url: '/users/me', payload: { password: 'not the password' } })).statusCode).toBe(401);
    expect(seen.length).toBe(registered);
  });
});
