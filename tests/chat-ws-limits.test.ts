import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { login, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { replyTo, startFakeOllama, type FakeOllama } from './helpers/fake-ollama.js';
import { listen } from './helpers/realtime.js';
import { until } from './helpers/wait.js';
import { chat, openWs, refusedUpgrade, wsUrl, type WsClient } from './helpers/ws.js';

/**
 * Every /ws limit tier, small enough to reach in a few messages, on two instances sharing
 * PostgreSQL, Redis and the injected clock. Clients pick their address with X-Forwarded-For
 * (the apps trust loopback proxies), so each test's IP windows are its own.
 */
const LIMITS = {
  AI_WS_USER_MESSAGE_LIMITS: '2/1m,3/1h',
  AI_WS_ANONYMOUS_MESSAGE_LIMITS: '1/1m,2/1h',
  AI_WS_IP_MESSAGE_LIMITS: '4/1m',
  AI_WS_GLOBAL_MESSAGE_LIMITS: '5/1s',
  AI_WS_USER_CONNECTION_LIMIT: '2/1m',
  AI_WS_ANONYMOUS_CONNECTION_LIMIT: '1/1m',
  AI_WS_IP_CONNECTION_LIMIT: '3/1m',
  AI_WS_MAX_CONNECTIONS: '4',
  TRUST_PROXY: 'loopback',
  // no background jobs (none of these tests needs one) and a small pool: the test PostgreSQL is shared
  WORKERS: 'off',
  DATABASE_POOL_SIZE: '4',
};

let fake: FakeOllama;
const clock = manualClock();
let a: TestApp;
let b: TestApp;
let urlA: string;
let urlB: string;
const open: WsClient[] = [];
let nextAddress = 1;

beforeAll(async () => {
  fake = await startFakeOllama();
});
afterAll(() => fake.close());
afterEach(() => {
  for (const client of open.splice(0)) client.close();
});

/** An address no other test uses. */
function newAddress(): string {
  nextAddress += 1;
  return `203.0.113.${nextAddress}`;
}

async function connect(ip: string, { url = urlA, headers = {} }: { url?: string; headers?: Record<string, string> } = {}): Promise<WsClient> {
  const client = await openWs(wsUrl(url), { headers: { 'x-forwarded-for': ip, ...headers } });
  open.push(client);
  return client;
}

async function signedIn(user: Pair, ip: string, url = urlA): Promise<WsClient> {
  const client = await connect(ip, { url, headers: { authorization: `Bearer ${user.accessToken}` } });
  expect(await client.next()).toMatchObject({ type: 'authenticated', userId: user.user.id });
  return client;
}

async function anonymous(ip: string): Promise<WsClient> {
  const client = await connect(ip);
  client.send({ type: 'authenticate', anonymous: true });
  expect(await client.next()).toMatchObject({ type: 'authenticated', anonymous: true });
  return client;
}

/** Sends a message and expects its refusal. */
async function refused(client: WsClient, content = 'One more?') {
  client.send({ type: 'message', content });
  const frame = await client.next();
  expect(frame).toMatchObject({ type: 'error', code: 'rate_limited' });
  return frame.details as { retryAfterSeconds: number; limit: string };
}

async function answered(client: WsClient, content = 'Hello') {
  const { end } = await chat(client, content);
  expect(end).toMatchObject({ type: 'done', content: replyTo(content) });
}

describe('on Redis, two instances', () => {
  beforeAll(async () => {
    const env = { ...LIMITS, OLLAMA_BASE_URL: fake.url };
    [a, b] = [await buildTestApp({ clock, env }), await buildTestApp({ clock, env })];
    [urlA, urlB] = [await listen(a.app), await listen(b.app)];
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });
  beforeEach(() => truncateAll(a));

  describe('/ws message limits', () => {
    it('holds a signed-in user to each of their windows, and lets them write again as each slides', async () => {
      const user = await register(a.app);
      const client = await signedIn(user, newAddress());
      await answered(client);
      await answered(client);
      expect(await refused(client)).toEqual({ retryAfterSeconds: 60, limit: 'user_messages' });
      clock.advance(60_000);
      await answered(client);
      // the hour's three are spent: free again when the first of them is an hour old
      expect(await refused(client)).toEqual({ retryAfterSeconds: 3540, limit: 'user_messages' });
      clock.advance(3540_000);
      // an hour on, the access token has expired: a fresh one
      client.send({ type: 'authenticate', token: (await login(a.app, user.email)).accessToken });
      await client.next('authenticated');
      await answered(client);
    });

    it('holds an anonymous session to its own, tighter windows', async () => {
      const client = await anonymous(newAddress());
      await answered(client);
      expect(await refused(client)).toEqual({ retryAfterSeconds: 60, limit: 'anonymous_messages' });
      clock.advance(60_000);
      await answered(client);
      expect(await refused(client)).toEqual({ retryAfterSeconds: 3540, limit: 'anonymous_messages' });
    });

    it('holds one IP to its window whoever writes from it', async () => {
      const ip = newAddress();
      const [first, second, third] = [await register(a.app), await register(a.app), await register(a.app)];
      for (const user of [first, second]) {
        const client = await signedIn(user, ip);
        await answered(client);
        await answered(client);
      }
      expect(await refused(await signedIn(third, ip))).toEqual({ retryAfterSeconds: 60, limit: 'ip_messages' });
      // another address is not held by this one's window
      await answered(await signedIn(third, newAddress()));
    });

    it('holds everyone together to the global window, across both instances', async () => {
      const users = [await register(a.app), await register(a.app), await register(a.app)];
      const clients = [
        await signedIn(users[0]!, newAddress(), urlA),
        await signedIn(users[1]!, newAddress(), urlB),
        await signedIn(users[2]!, newAddress(), urlA),
      ];
      await answered(clients[0]!);
      await answered(clients[0]!);
      await answered(clients[1]!);
      await answered(clients[1]!);
      await answered(clients[2]!);
      expect(await refused(clients[2]!)).toEqual({ retryAfterSeconds: 1, limit: 'global_messages' });
      clock.advance(1000);
      await answered(clients[2]!);
    });

    it('holds a user to one minute window when their messages alternate between two instances', async () => {
      const user = await register(a.app);
      const ip = newAddress();
      const [onA, onB] = [await signedIn(user, ip, urlA), await signedIn(user, ip, urlB)];
      await answered(onA, 'First, on A');
      await answered(onB, 'Second, on B');
      expect(await refused(onA)).toEqual({ retryAfterSeconds: 60, limit: 'user_messages' });
      expect(await refused(onB)).toEqual({ retryAfterSeconds: 60, limit: 'user_messages' });
    });

    it('does not count a refused message toward the windows that had room', async () => {
      const ip = newAddress();
      const [first, second] = [await register(a.app), await register(a.app)];
      const one = await signedIn(first, ip);
      await answered(one);
      await answered(one);
      // refused by first's window, these do not fill the IP's
      await refused(one);
      await refused(one);
      const two = await signedIn(second, ip);
      await answered(two);
      await answered(two);
    });
  });

  describe('/ws frames', () => {
    it('tells a client that floods frames to slow down, then closes it (1008)', async () => {
      const client = await connect(newAddress());
      for (let i = 0; i < 100; i += 1) client.send({ type: 'ping' });
      expect(await client.next('error')).toMatchObject({ code: 'rate_limited', details: { limit: 'frames' } });
      expect(await client.closed).toEqual({ code: 1008, reason: 'too many frames' });
      expect(client.pending.filter((frame) => frame.type === 'pong').length).toBeLessThan(100);
    });
  });

  describe('/ws connection limits', () => {
    it('refuses an IP its connections over its window at the upgrade (429 with Retry-After), until the window slides', async () => {
      const ip = newAddress();
      for (let i = 0; i < 3; i += 1) await connect(ip);
      const answer = await refusedUpgrade(wsUrl(urlB), { 'x-forwarded-for': ip });
      expect(answer.status).toBe(429);
      expect(answer.headers['retry-after']).toBe('60');
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'rate_limited', details: { retryAfterSeconds: 60 } } });
      clock.advance(60_000);
      await connect(ip, { url: urlB });
    });

    it('closes the connection of a user over their connection window with 1013', async () => {
      const user = await register(a.app);
      await signedIn(user, newAddress(), urlA);
      await signedIn(user, newAddress(), urlB);
      const third = await connect(newAddress());
      third.send({ type: 'authenticate', token: user.accessToken });
      expect(await third.next()).toMatchObject({ type: 'error', code: 'rate_limited', details: { retryAfterSeconds: 60, limit: 'user_connections' } });
      expect(await third.closed).toEqual({ code: 1013, reason: 'too many connections' });
    });

    it('lets one IP start one anonymous session a minute', async () => {
      const ip = newAddress();
      await anonymous(ip);
      const second = await connect(ip, { url: urlB });
      second.send({ type: 'authenticate', anonymous: true });
      expect(await second.next()).toMatchObject({ type: 'error', code: 'rate_limited', details: { limit: 'anonymous_connections' } });
      expect((await second.closed).code).toBe(1013);
      // signing in is not an anonymous session
      const user = await register(a.app);
      await signedIn(user, ip);
    });

    it('holds the connections open at once across both instances, and frees a place when one closes', async () => {
      const clients = [
        await connect(newAddress()),
        await connect(newAddress(), { url: urlB }),
        await connect(newAddress()),
        await connect(newAddress(), { url: urlB }),
      ];
      for (const url of [urlA, urlB]) {
        const answer = await refusedUpgrade(wsUrl(url), { 'x-forwarded-for': newAddress() });
        expect(answer.status).toBe(503);
        expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'too_many_connections' } });
      }
      clients[0]!.close();
      await clients[0]!.closed;
      const admitted = await until(
        async () => {
          try {
            return await connect(newAddress(), { url: urlB });
          } catch {
            return null;
          }
        },
        { message: 'a place is free once a connection closed' },
      );
      admitted.send({ type: 'ping' });
      expect(await admitted.next()).toEqual({ type: 'pong' });
    });
  });
});

describe('/ws limits on the embedded Redis emulation', () => {
  let embedded: TestApp;
  let url: string;
  beforeAll(async () => {
    embedded = await buildTestApp({ clock, env: { ...LIMITS, OLLAMA_BASE_URL: fake.url, REDIS_URL: undefined } });
    url = await listen(embedded.app);
  });
  afterAll(() => embedded.close());

  it('runs the same windows on ioredis-mock', async () => {
    expect(embedded.container.embedded.redis).toBe(true);
    const user = await register(embedded.app);
    const ip = newAddress();
    const client = await signedIn(user, ip, url);
    for (let i = 0; i < 2; i += 1) await connect(ip, { url });
    expect((await refusedUpgrade(wsUrl(url), { 'x-forwarded-for': ip })).status).toBe(429);

    await answered(client);
    await answered(client);
    expect(await refused(client)).toEqual({ retryAfterSeconds: 60, limit: 'user_messages' });
    clock.advance(60_000);
    await answered(client);
  });
});
