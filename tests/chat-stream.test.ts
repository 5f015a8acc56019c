import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { replyTo, startFakeOllama, tokensOf, type FakeOllama } from './helpers/fake-ollama.js';
import { listen, readyUser } from './helpers/realtime.js';
import { openSse, readAll, type SseEvent } from './helpers/sse.js';

let fake: FakeOllama;
let t: TestApp;
let url: string;

beforeAll(async () => {
  fake = await startFakeOllama();
  t = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url, AI_SSE_HEARTBEAT: '50ms', LOG_LEVEL: process.env.DEBUG_LOG ?? 'silent' } });
  url = await listen(t.app);
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => truncateAll(t));

const auth = (user: Pair) => ({ authorization: `Bearer ${user.accessToken}` });
const json = (event: SseEvent) => JSON.parse(event.data) as Record<string, unknown>;
const streamUrl = (query: Record<string, string>) => `${url}/api/chat-stream?${new URLSearchParams(query).toString()}`;
const createThread = async (user: Pair, body: Record<string, unknown> = {}) => {
  const res = await injectAs(t.app, user, { method: 'POST', url: '/api/sessions/create', payload: body });
  expect(res.statusCode).toBe(201);
  return res.json<{ id: string; title: string; model: string; topic: string | null }>();
};
const messagesOf = async (user: Pair, sessionId: string) => {
  const res = await injectAs(t.app, user, { method: 'GET', url: `/api/sessions/messages?sessionId=${sessionId}` });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: Array<{ id: string; role: string; content: string; status: string }> }>().items;
};

describe('GET /api/chat-stream', () => {
  it('streams the reply token by token with numbered ids, then saves both messages', async () => {
    const user = await register(t.app);
    const thread = await createThread(user, { topic: 'travel in Japan' });
    const stream = await openSse(streamUrl({ sessionId: thread.id, message: 'I goed to Tokyo last year' }), { headers: auth(user) });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toContain('text/event-stream');
    const events = await readAll(stream);
    const [start, ...rest] = events;
    const replyId = json(start!).messageId as string;
    expect(json(start!)).toMatchObject({ type: 'start', sessionId: thread.id, messageId: replyId });
    // the conversation as the list shows it, nothing more (no owner ids)
    expect(Object.keys((json(start!) as { session: object }).session).sort()).toEqual([
      'createdAt',
      'id',
      'messageCount',
      'model',
      'title',
      'topic',
      'updatedAt',
    ]);
    expect(events.map((event) => event.id)).toEqual(events.map((_, index) => `${replyId}:${index}`));
    const reply = replyTo('I goed to Tokyo last year');
    const tokens = rest.slice(0, -1).map((event) => json(event));
    expect(tokens.every((token) => token.type === 'token')).toBe(true);
    expect(tokens.map((token) => token.text).join('')).toBe(reply);
    expect(json(rest.at(-1)!)).toMatchObject({ type: 'done', messageId: replyId, content: reply });

    const saved = await messagesOf(user, thread.id);
    expect(saved.map(({ role, content, status }) => ({ role, content, status }))).toEqual([
      { role: 'user', content: 'I goed to Tokyo last year', status: 'complete' },
      { role: 'assistant', content: reply, status: 'complete' },
    ]);
    expect(saved[1]!.id).toBe(replyId);
    // the model was told who it is, at what level, on which topic, and what was said
    const sent = fake.chats.at(-1)!.messages;
    expect(sent[0]!.role).toBe('system');
    expect(sent[0]!.content).toContain('travel in Japan');
    expect(sent.at(-1)).toEqual({ role: 'user', content: 'I goed to Tokyo last year' });
    expect(tokensOf(reply).length).toBe(tokens.length);
  });

  it('speaks at the student’s level', async () => {
    const user = await readyUser(t.app, 'beginner');
    await readAll(await openSse(streamUrl({ message: 'Hello' }), { headers: auth(user) }));
    expect(fake.chats.at(-1)!.messages[0]!.content).toContain('The student is a beginner');
  });

  it('starts a new conversation when none is named, titled after the message, and continues it with its history', async () => {
    const user = await register(t.app);
    const first = await readAll(await openSse(streamUrl({ message: 'My cat is called Tom' }), { headers: auth(user) }));
    const start = json(first[0]!) as { sessionId: string; session: { title: string } };
    expect(start.session.title).toBe('My cat is called Tom');
    await readAll(await openSse(streamUrl({ sessionId: start.sessionId, message: 'What is his name?' }), { headers: auth(user) }));
    // the model is given the conversation so far, oldest first
    expect(
      fake.chats
        .at(-1)!
        .messages.slice(1)
        .map((message) => message.role),
    ).toEqual(['user', 'assistant', 'user']);
    expect(fake.chats.at(-1)!.messages[1]!.content).toBe('My cat is called Tom');
    expect(await messagesOf(user, start.sessionId)).toHaveLength(4);
  });

  it('takes the message in a POST body as well', async () => {
    const user = await register(t.app);
    const events = await readAll(await openSse(`${url}/api/chat-stream`, { method: 'POST', headers: auth(user), body: { message: 'Posted' } }));
    expect(json(events.at(-1)!)).toMatchObject({ type: 'done', content: replyTo('Posted') });
  });

  it('resumes with Last-Event-ID: the rest of the reply, nothing twice, and the message is not saved again', async () => {
    const user = await register(t.app);
    const thread = await createThread(user, { model: 'slow' });
    const address = streamUrl({ sessionId: thread.id, message: 'tell me a story' });
    const upstream = fake.chat(fake.chats.length);
    const opening = openSse(address, { headers: auth(user) });
    (await upstream).release(2);
    const first = await opening;
    const had = [(await first.next())!, (await first.next())!, (await first.next())!];
    first.close();
    await first.ended;

    // EventSource reconnects to the same URL with the id of the last event it had
    const reconnecting = openSse(address, { headers: { ...auth(user), 'last-event-id': had[2]!.id! } });
    (await upstream).release(1);
    const again = await reconnecting;
    expect(again.status).toBe(200);
    (await upstream).release(Infinity);
    const rest = await readAll(again);
    const replyId = json(had[0]!).messageId as string;
    expect(rest[0]!.id).toBe(`${replyId}:3`);
    const text = [...had.slice(1), ...rest.slice(0, -1)].map((event) => json(event).text).join('');
    expect(text).toBe(replyTo('tell me a story'));
    expect(json(rest.at(-1)!)).toMatchObject({ type: 'done', content: replyTo('tell me a story') });
    expect((await upstream).outcome).toBe('done');
    expect((await messagesOf(user, thread.id)).map((message) => message.role)).toEqual(['user', 'assistant']);

    // after the end, and after the kept events expired: the saved reply
    const late = await readAll(await openSse(address, { headers: { ...auth(user), 'last-event-id': had[1]!.id! } }));
    expect(late.map((event) => json(event).type)).toEqual([...rest.slice(0, -1).map(() => 'token'), 'token', 'done']);
    await t.container.redis.client.del(`chat:reply:{${replyId}}`);
    const expired = await readAll(await openSse(address, { headers: { ...auth(user), 'last-event-id': had[1]!.id! } }));
    expect(expired.map((event) => json(event))).toEqual([expect.objectContaining({ type: 'done', messageId: replyId, content: replyTo('tell me a story') })]);
  });

  it('keeps the connection alive with heartbeat comments while the model thinks', async () => {
    const user = await register(t.app);
    const thread = await createThread(user, { model: 'slow' });
    const upstream = fake.chat(fake.chats.length);
    const opening = openSse(streamUrl({ sessionId: thread.id, message: 'take your time' }), { headers: auth(user) });
    (await upstream).release(1);
    const stream = await opening;
    await expect.poll(() => stream.comments.filter((comment) => comment === 'heartbeat').length, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    (await upstream).release(Infinity);
    expect(json((await readAll(stream)).at(-1)!).type).toBe('done');
  });

  it('refuses a second message while the partner is still answering in that conversation', async () => {
    const user = await register(t.app);
    const thread = await createThread(user, { model: 'slow' });
    const upstream = fake.chat(fake.chats.length);
    const opening = openSse(streamUrl({ sessionId: thread.id, message: 'first' }), { headers: auth(user) });
    (await upstream).release(1);
    const stream = await opening;
    expect(stream.status).toBe(200);
    const second = await openSse(streamUrl({ sessionId: thread.id, message: 'second' }), { headers: auth(user) });
    expect(second.status).toBe(409);
    expect(JSON.parse(await second.body())).toMatchObject({ error: { code: 'reply_in_progress' } });
    (await upstream).release(Infinity);
    await readAll(stream);
    // once the reply is saved the conversation takes the next message
    const next = fake.chat(fake.chats.length);
    const thirdOpening = openSse(streamUrl({ sessionId: thread.id, message: 'third' }), { headers: auth(user) });
    (await next).release(Infinity);
    const third = await readAll(await thirdOpening);
    expect(json(third.at(-1)!).type).toBe('done');
    expect((await messagesOf(user, thread.id)).map((message) => message.content.slice(0, 5))).toEqual(['first', 'You s', 'third', 'You s']);
  });

  it('saves nothing when the model refuses to answer, and says why', async () => {
    const user = await register(t.app);
    const crashed = await createThread(user, { model: 'fail' });
    const refused = await openSse(streamUrl({ sessionId: crashed.id, message: 'hello?' }), { headers: auth(user) });
    expect(refused.status).toBe(503);
    expect(JSON.parse(await refused.body())).toMatchObject({ error: { code: 'ai_unavailable' } });
    const absent = await createThread(user, { model: 'missing' });
    const missing = await openSse(streamUrl({ sessionId: absent.id, message: 'hello?' }), { headers: auth(user) });
    expect(missing.status).toBe(404);
    expect(JSON.parse(await missing.body())).toMatchObject({ error: { code: 'ai_model_not_found' } });
    for (const thread of [crashed, absent]) expect(await messagesOf(user, thread.id)).toEqual([]);
    const listed = (await injectAs(t.app, user, { method: 'GET', url: '/api/sessions/list' })).json<{
      items: Array<{ title: string; messageCount: number }>;
    }>();
    expect(listed.items.map(({ title, messageCount }) => ({ title, messageCount }))).toEqual([
      { title: 'New conversation', messageCount: 0 },
      { title: 'New conversation', messageCount: 0 },
    ]);
  });

  it('ends with an error event when the model breaks off mid-reply, and keeps what came as a failed reply', async () => {
    const user = await register(t.app);
    const thread = await createThread(user, { model: 'drop' });
    const events = await readAll(await openSse(streamUrl({ sessionId: thread.id, message: 'go on' }), { headers: auth(user) }));
    // the tokens that made it before the cut (the client may see the reset before the last of them)
    const tokens = events.slice(1, -1).map((event) => json(event));
    expect(tokens.every((token) => token.type === 'token')).toBe(true);
    expect(tokens.length).toBeLessThanOrEqual(2);
    expect(json(events.at(-1)!)).toMatchObject({ type: 'error', code: 'ai_unavailable' });
    const [, reply] = await messagesOf(user, thread.id);
    expect(reply).toMatchObject({ status: 'failed', content: tokens.map((token) => token.text).join('') });
    // a failed reply is not part of what the model is given next time
    await readAll(await openSse(streamUrl({ sessionId: thread.id, message: 'again' }), { headers: auth(user) }));
  });

  it('answers 404 for another user’s conversation or reply, and 400 for a bad request', async () => {
    const owner = await register(t.app);
    const stranger = await register(t.app);
    const events = await readAll(await openSse(streamUrl({ message: 'mine' }), { headers: auth(owner) }));
    const { sessionId, messageId } = json(events[0]!) as { sessionId: string; messageId: string };
    const intrude = await openSse(streamUrl({ sessionId, message: 'hi' }), { headers: auth(stranger) });
    expect(intrude.status).toBe(404);
    const peek = await openSse(streamUrl({ message: 'hi' }), { headers: { ...auth(stranger), 'last-event-id': `${messageId}:1` } });
    expect(peek.status).toBe(404);
    for (const [query, headers] of [
      [{ message: 'hi' }, { 'last-event-id': 'garbage' }],
      [{ message: '' }, {}],
      [{ sessionId: 'nope', message: 'hi' }, {}],
      [{ message: 'x'.repeat(4001) }, {}],
    ] as const) {
      const res = await openSse(streamUrl(query), { headers: { ...auth(owner), ...headers } });
      expect(res.status, JSON.stringify(query).slice(0, 60)).toBe(400);
      expect(JSON.parse(await res.body())).toMatchObject({ error: { code: 'validation_failed' } });
    }
    const anonymous = await openSse(streamUrl({ message: 'hi' }));
    expect(anonymous.status).toBe(401);
    expect(await messagesOf(owner, sessionId)).toHaveLength(2);
  });
});

describe.runIf(Boolean(inject('redisUrl')))('a reply resumed on another instance', () => {
  let other: TestApp;
  let otherUrl: string;
  beforeAll(async () => {
    other = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url } });
    otherUrl = await listen(other.app);
  });
  afterAll(() => other.close());

  it('gets the rest from Redis as the first instance writes it', async () => {
    const user = await register(t.app);
    const thread = await createThread(user, { model: 'slow' });
    const query = new URLSearchParams({ sessionId: thread.id, message: 'across instances' }).toString();
    const upstream = fake.chat(fake.chats.length);
    const opening = openSse(`${url}/api/chat-stream?${query}`, { headers: auth(user) });
    (await upstream).release(1);
    const first = await opening;
    const had = [(await first.next())!, (await first.next())!];
    first.close();
    const reconnecting = openSse(`${otherUrl}/api/chat-stream?${query}`, { headers: { ...auth(user), 'last-event-id': had[1]!.id! } });
    (await upstream).release(1);
    const again = await reconnecting;
    expect(again.status).toBe(200);
    (await upstream).release(Infinity);
    const rest = await readAll(again);
    expect([had[1]!, ...rest.slice(0, -1)].map((event) => json(event).text).join('')).toBe(replyTo('across instances'));
    expect(json(rest.at(-1)!)).toMatchObject({ type: 'done' });
  });
});

describe('shutdown', () => {
  it('ends open streams with reply_interrupted and saves what came', async () => {
    const stopping = await buildTestApp({ env: { WORKERS: 'off', OLLAMA_BASE_URL: fake.url } });
    const stoppingUrl = await listen(stopping.app);
    const user = await register(stopping.app);
    const created = await injectAs(stopping.app, user, { method: 'POST', url: '/api/sessions/create', payload: { model: 'slow' } });
    const thread = created.json<{ id: string }>();
    const upstream = fake.chat(fake.chats.length);
    const opening = openSse(`${stoppingUrl}/api/chat-stream?${new URLSearchParams({ sessionId: thread.id, message: 'wait for it' }).toString()}`, {
      headers: auth(user),
    });
    (await upstream).release(1);
    const stream = await opening;
    expect(json((await stream.next())!).type).toBe('start');
    expect(json((await stream.next())!).type).toBe('token');
    const rows = () =>
      stopping.container.db.query<Array<{ status: string; content: string }>>(`SELECT status, content FROM chat_messages WHERE role = 'assistant'`);
    const closed = stopping.app.close();
    const last = (await readAll(stream)).at(-1)!;
    expect(json(last)).toMatchObject({ type: 'error', code: 'reply_interrupted' });
    await closed;
    expect(await (await upstream).ended).toBe('aborted');
    expect(await rows()).toEqual([{ status: 'interrupted', content: tokensOf(replyTo('wait for it'))[0] }]);
    await stopping.container.close();
  });
});

describe('without an AI upstream', () => {
  it('answers 503 ai_unavailable and saves nothing; the rest of the server works', async () => {
    const bare = await buildTestApp({ env: { WORKERS: 'off' } });
    try {
      const user = await register(bare.app);
      const res = await injectAs(bare.app, user, {
        method: 'POST',
        url: '/api/chat-stream',
        headers: { accept: 'text/event-stream' },
        payload: { message: 'anyone?' },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({ code: 'ai_unavailable' });
      expect(res.json().error.message).toMatch(/OLLAMA_BASE_URL/);
      const listed = await injectAs(bare.app, user, { method: 'GET', url: '/api/sessions/list' });
      expect(listed.json().items).toEqual([]);
    } finally {
      await bare.close();
    }
  });
});
