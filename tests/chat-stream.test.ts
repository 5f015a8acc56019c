import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { replyTo, startFakeOllama, tokensOf, type FakeOllama } from './helpers/fake-ollama.js';
import { listen } from './helpers/realtime.js';
import { openSse, readAll, type SseEvent } from './helpers/sse.js';

let fake: FakeOllama;
let t: TestApp;
let url: string;

beforeAll(async () => {
  fake = await startFakeOllama();
  t = await buildTestApp({ env: { OLLAMA_BASE_URL: fake.url, AI_SSE_HEARTBEAT: '50ms' } });
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
});
