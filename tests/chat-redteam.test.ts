import { request as httpRequest, type ClientRequest } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, PASSWORD, register, type Pair } from './helpers/auth.js';
import { replyTo, startFakeOllama, type FakeChat, type FakeOllama } from './helpers/fake-ollama.js';
import { listen } from './helpers/realtime.js';
import { openSse, readAll, type SseEvent, type SseStream } from './helpers/sse.js';

// A reply's clients, and what goes wrong around them: reconnecting at or past the end, the server
// stopping while the model is still loading, the account going away mid-reply, the token budget
// of a reply cut off, and clients leaving before the first token.

let fake: FakeOllama;
let t: TestApp;
let url: string;

// an idle timeout well under the test's: a follower waiting for events that never come shows it
const IDLE = '10s';

beforeAll(async () => {
  fake = await startFakeOllama();
  t = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url, AI_IDLE_TIMEOUT: IDLE, LOG_LEVEL: process.env.DEBUG_LOG ?? 'silent' } });
  url = await listen(t.app);
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => truncateAll(t));

const auth = (user: Pair) => ({ authorization: `Bearer ${user.accessToken}` });
const json = (event: SseEvent) => JSON.parse(event.data) as Record<string, unknown>;
const streamUrl = (base: string, query: Record<string, string>) => `${base}/api/chat-stream?${new URLSearchParams(query).toString()}`;
const createThread = async (app: TestApp, user: Pair, body: Record<string, unknown> = {}) => {
  const res = await injectAs(app.app, user, { method: 'POST', url: '/api/sessions/create', payload: body });
  expect(res.statusCode).toBe(201);
  return res.json<{ id: string }>();
};

/** Opens a reply on the `slow` model and reads its `start` and first `tokens` tokens. */
async function slowReply(base: string, user: Pair, threadId: string, message: string, tokens = 1) {
  const upstream = fake.chat(fake.chats.length);
  const opening = openSse(streamUrl(base, { sessionId: threadId, message }), { headers: auth(user) });
  (await upstream).release(tokens);
  const stream = await opening;
  expect(stream.status).toBe(200);
  const had: SseEvent[] = [];
  for (let index = 0; index <= tokens; index += 1) had.push((await stream.next())!);
  expect(had.map((event) => json(event).type)).toEqual(['start', ...Array<string>(tokens).fill('token')]);
  return { upstream: await upstream, stream, had, replyId: json(had[0]!).messageId as string };
}

/** A proxy-chat request left open: the test reads or drops it. */
function proxyChat(
  base: string,
  user: Pair,
  model: string,
  content: string,
): { request: ClientRequest; response: Promise<{ status: number; lines: AsyncIterable<string> }> } {
  const request = httpRequest(`${base}/api/ollama/proxy-chat`, {
    method: 'POST',
    headers: { ...auth(user), 'content-type': 'application/json' },
  });
  const response = new Promise<{ status: number; lines: AsyncIterable<string> }>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (res) => {
      res.setEncoding('utf8');
      resolve({ status: res.statusCode ?? 0, lines: res });
    });
  });
  // a client gone away is no error here
  response.catch(() => undefined);
  request.end(JSON.stringify({ model, messages: [{ role: 'user', content }] }));
  return { request, response };
}

describe('reconnecting with Last-Event-ID at or past the end of a reply', () => {
  it('after the last event (EventSource reconnects when the stream ends): 204, nothing more, and no made-up interruption', async () => {
    const user = await register(t.app);
    const events = await readAll(await openSse(streamUrl(url, { message: 'all of it' }), { headers: auth(user) }));
    const last = events.at(-1)!;
    expect(json(last)).toMatchObject({ type: 'done', content: replyTo('all of it') });
    const replyId = json(events[0]!).messageId as string;
    const seq = Number(last.id!.split(':')[1]);
    for (const lastEventId of [last.id!, `${replyId}:${seq + 1}`, `${replyId}:999999999`]) {
      const again = await openSse(streamUrl(url, { message: 'all of it' }), { headers: { ...auth(user), 'last-event-id': lastEventId } });
      expect([lastEventId, again.status]).toEqual([lastEventId, 204]);
      expect(await readAll(again)).toEqual([]);
    }
    // the reply is as it was saved
    const saved = await injectAs(t.app, user, { method: 'GET', url: `/api/sessions/messages?sessionId=${json(events[0]!).sessionId as string}` });
    expect(saved.json<{ items: Array<{ status: string }> }>().items.map((message) => message.status)).toEqual(['complete', 'complete']);
  });

  it('past the end of a reply still being written: ends with the reply, sending nothing twice', async () => {
    const user = await register(t.app);
    const thread = await createThread(t, user, { model: 'slow' });
    const { upstream, stream, replyId } = await slowReply(url, user, thread.id, 'count on me');
    const address = streamUrl(url, { sessionId: thread.id, message: 'count on me' });
    const beyond = openSse(address, { headers: { ...auth(user), 'last-event-id': `${replyId}:999999999` } });
    // a reconnect sent after it hears the next token: by then the first one follows the reply too
    const behind = openSse(address, { headers: { ...auth(user), 'last-event-id': `${replyId}:1` } });
    upstream.release(1);
    expect(json((await (await behind).next())!).type).toBe('token');
    upstream.release(Infinity);
    expect(json((await readAll(stream)).at(-1)!).type).toBe('done');
    const answer = await beyond;
    expect(answer.status).toBe(204);
    expect(await readAll(answer)).toEqual([]);
  });
});

/** Resolves once a connection to `app`'s Redis database is blocked in XREAD (an instance waits there for a reply's events), or `stop` aborts. */
async function readerBlocked(app: TestApp, stop: AbortSignal): Promise<void> {
  const redis = app.container.redis.client;
  const db = redis.options.db ?? 0;
  const blocked = async () => {
    const clients = (await redis.client('LIST')) as string;
    return clients.split('\n').some((line) => line.includes(` db=${db} `) && line.includes(' cmd=xread ') && / flags=\S*b/.test(line));
  };
  await expect.poll(async () => stop.aborted || (await blocked()), { timeout: 10_000 }).toBe(true);
}

describe.runIf(Boolean(inject('redisUrl')))('reconnecting on another instance', () => {
  let other: TestApp;
  let otherUrl: string;
  beforeAll(async () => {
    other = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url, AI_IDLE_TIMEOUT: IDLE, AI_SSE_HEARTBEAT: '400ms' } });
    otherUrl = await listen(other.app);
  });
  afterAll(() => other.close());

  it('keeps following while the model pauses longer than a Redis command may take', async () => {
    const user = await register(t.app);
    const thread = await createThread(t, user, { model: 'slow' });
    const { upstream, stream, had } = await slowReply(url, user, thread.id, 'take a breath');
    stream.close();
    // EventSource reconnects, here to the other instance, with the id of the last event it had
    const again = await openSse(streamUrl(otherUrl, { sessionId: thread.id, message: 'take a breath' }), {
      headers: { ...auth(user), 'last-event-id': had[0]!.id! },
    });
    expect(again.status).toBe(200);
    const token = (await again.next())!;
    expect(json(token).type).toBe('token');
    // the model thinks a while: a few heartbeats, longer than a Redis command may take (COMMAND_TIMEOUT_MS)
    await expect.poll(() => again.comments.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    upstream.release(Infinity);
    const rest = await readAll(again);
    expect([token, ...rest.slice(0, -1)].map((event) => json(event).text).join('')).toBe(replyTo('take a breath'));
    expect(json(rest.at(-1)!)).toMatchObject({ type: 'done', content: replyTo('take a breath') });
  });

  it('while the model still thinks (no token yet): waits for the reply instead of calling it interrupted', async () => {
    const user = await register(t.app);
    const thread = await createThread(t, user, { model: 'think' });
    const arriving = fake.chat(fake.chats.length);
    const first = await openSse(streamUrl(url, { sessionId: thread.id, message: 'let me think' }), { headers: auth(user) });
    const upstream = await arriving;
    const start = (await first.next())!;
    expect(json(start).type).toBe('start');
    first.close();
    const reconnecting = openSse(streamUrl(otherUrl, { sessionId: thread.id, message: 'let me think' }), {
      headers: { ...auth(user), 'last-event-id': start.id! },
    });
    // the model goes on once the other instance has answered, or waits on Redis for the reply's events
    const answered = new AbortController();
    await Promise.race([reconnecting.then(() => answered.abort()), readerBlocked(other, answered.signal)]);
    upstream.release(Infinity);
    const events = await readAll(await reconnecting);
    expect(
      events
        .slice(0, -1)
        .map((event) => json(event).text)
        .join(''),
    ).toBe(replyTo('let me think'));
    expect(json(events.at(-1)!)).toMatchObject({ type: 'done', content: replyTo('let me think') });
  });

  it('the account deleted through another instance: the reply ends with not_found, not a `done` for a reply nobody kept', async () => {
    const user = await register(t.app);
    const thread = await createThread(t, user, { model: 'slow' });
    const { upstream, stream } = await slowReply(url, user, thread.id, 'forget me there');
    const deleted = await injectAs(other.app, user, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } });
    expect(deleted.statusCode).toBe(204);
    upstream.release(Infinity);
    const rest = await readAll(stream);
    expect(json(rest.at(-1)!)).toMatchObject({ type: 'error', code: 'not_found' });
    expect(await t.container.db.query('SELECT id FROM chat_messages')).toEqual([]);
  });

  it('past the end of a reply still being written: ends with the reply, without a made-up interruption', async () => {
    const user = await register(t.app);
    const thread = await createThread(t, user, { model: 'slow' });
    const { upstream, stream, replyId } = await slowReply(url, user, thread.id, 'far away', 2);
    const beyond = openSse(streamUrl(otherUrl, { sessionId: thread.id, message: 'far away' }), {
      headers: { ...auth(user), 'last-event-id': `${replyId}:999999999` },
    });
    upstream.release(Infinity);
    expect(json((await readAll(stream)).at(-1)!).type).toBe('done');
    const answer = await beyond;
    expect(answer.status).toBe(204);
    expect(await readAll(answer)).toEqual([]);
  });
});

describe('a conversation named after its first message', () => {
  it('is cut between characters, never inside one (an emoji is two UTF-16 units)', async () => {
    const user = await register(t.app);
    const message = '🙂'.repeat(40);
    const events = await readAll(await openSse(streamUrl(url, { message }), { headers: auth(user) }));
    const announced = (json(events[0]!) as { session: { title: string } }).session.title;
    const listed = (await injectAs(t.app, user, { method: 'GET', url: '/api/sessions/list' })).json<{ items: Array<{ title: string }> }>().items[0]!.title;
    for (const title of [announced, listed]) {
      // no half of a character: a lone surrogate, or the U+FFFD PostgreSQL got for one
      expect(title).not.toMatch(/[\p{Cs}\uFFFD]/u);
      expect(title.endsWith('…')).toBe(true);
      expect(message.startsWith(title.slice(0, -1))).toBe(true);
    }
  });
});

describe('the account deleted while the partner answers', () => {
  it('stops the reply: the upstream is cancelled and the stream ends with an error, not a `done` for a reply nobody kept', async () => {
    const user = await register(t.app);
    const thread = await createThread(t, user, { model: 'slow' });
    const { upstream, stream } = await slowReply(url, user, thread.id, 'forget me');
    const deleted = await injectAs(t.app, user, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } });
    expect(deleted.statusCode).toBe(204);
    // had the reply gone on, this would be its next token
    upstream.release(1);
    expect(json((await stream.next())!)).toMatchObject({ type: 'error', code: 'not_found' });
    expect(await readAll(stream)).toEqual([]);
    expect(await upstream.ended).toBe('aborted');
    expect(await t.container.db.query('SELECT id FROM chat_messages')).toEqual([]);
  });
});

describe('shutdown while the model is still loading', () => {
  let stopping: TestApp;
  let stoppingUrl: string;
  beforeAll(async () => {
    stopping = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url } });
    stoppingUrl = await listen(stopping.app);
  });
  afterAll(() => stopping.close());

  it('answers 503 shutting_down at once, cancels the upstream, keeps nothing, and lets the server stop', async () => {
    const user = await register(stopping.app);
    const thread = await createThread(stopping, user, { model: 'slow' });
    const arriving = fake.chat(fake.chats.length);
    const opening = openSse(streamUrl(stoppingUrl, { sessionId: thread.id, message: 'are you awake' }), { headers: auth(user) });
    const upstream: FakeChat = await arriving;
    // the model has the request and has not answered yet: the server begins to stop
    const closed = stopping.app.close();
    try {
      const answer: SseStream = await opening;
      expect(answer.status).toBe(503);
      expect(JSON.parse(await answer.body())).toMatchObject({ error: { code: 'shutting_down' } });
      await closed;
      expect(await upstream.ended).toBe('aborted');
      expect(await stopping.container.db.query('SELECT id FROM chat_messages')).toEqual([]);
      const [row] = await stopping.container.db.query<Array<{ title: string; message_count: number }>>(
        'SELECT title, message_count FROM chat_threads WHERE id = $1',
        [thread.id],
      );
      expect(row).toEqual({ title: 'New conversation', message_count: 0 });
      expect(await stopping.container.redis.client.exists(`chat:busy:{${thread.id}}`)).toBe(0);
    } finally {
      upstream.release(Infinity);
    }
  });
});

describe('the daily token budget', () => {
  let limited: TestApp;
  let limitedUrl: string;
  beforeAll(async () => {
    limited = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url, AI_DAILY_TOKEN_LIMIT: '1', AI_REPLY_MAX_DURATION: '2s' } });
    limitedUrl = await listen(limited.app);
  });
  afterAll(() => limited.close());

  it('counts the tokens of a reply cut off before its last chunk, over SSE and through the proxy', async () => {
    // a reply the server cuts off (too long): what the model wrote is spent
    const talker = await register(limited.app);
    const thread = await createThread(limited, talker, { model: 'slow' });
    const { stream } = await slowReply(limitedUrl, talker, thread.id, 'write me a very long essay', 2);
    expect(json((await readAll(stream)).at(-1)!)).toMatchObject({ type: 'error', code: 'reply_too_long' });
    const next = await openSse(streamUrl(limitedUrl, { message: 'and another' }), { headers: auth(talker) });
    expect(next.status).toBe(429);
    expect(JSON.parse(await next.body())).toMatchObject({ error: { code: 'ai_budget_exceeded' } });

    // a proxy client that leaves before the last chunk has spent what it read
    const reader = await register(limited.app);
    const arriving = fake.chat(fake.chats.length);
    const { request, response } = proxyChat(limitedUrl, reader, 'slow', 'tell me everything');
    const upstream = await arriving;
    upstream.release(2);
    const { status, lines } = await response;
    expect(status).toBe(200);
    let read = '';
    for await (const chunk of lines) {
      read += chunk;
      if (read.split('\n').filter(Boolean).length >= 2) break;
    }
    request.destroy();
    expect(await upstream.ended).toBe('aborted');
    const after = proxyChat(limitedUrl, reader, 'llama3.2', 'again');
    expect((await after.response).status).toBe(429);
    after.request.destroy();
  });
});

describe('clients that leave before the first token', () => {
  let app: TestApp;
  let appUrl: string;
  beforeAll(async () => {
    // its own circuit breaker: the other apps of this file share the fake's host
    app = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url } });
    appUrl = await listen(app.app);
  });
  afterAll(() => app.close());

  it('do not count as the model failing: the circuit stays closed for everybody else', async () => {
    const impatient = await register(app.app);
    // as many as the breaker's threshold (5 failures in 30 s) opens it at
    for (let index = 0; index < 5; index += 1) {
      const arriving = fake.chat(fake.chats.length);
      const { request } = proxyChat(appUrl, impatient, 'slow', `still loading ${index}?`);
      const upstream = await arriving;
      request.destroy();
      expect(await upstream.ended).toBe('aborted');
    }
    const patient = await register(app.app);
    const mine = await openSse(streamUrl(appUrl, { message: 'my turn' }), { headers: auth(patient) });
    expect(mine.status).toBe(200);
    const events = await readAll(mine);
    expect(json(events.at(-1)!)).toMatchObject({ type: 'done', content: replyTo('my turn') });
    const proxied = proxyChat(appUrl, patient, 'llama3.2', 'and through the proxy');
    expect((await proxied.response).status).toBe(200);
    proxied.request.destroy();
  });
});
