import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, separateDatabaseUrl, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { replyTo, startFakeOllama, tokensOf, type FakeOllama } from './helpers/fake-ollama.js';

const USER_KEY = 'sk-user-ollama-key-0123456789';

const chat = (t: TestApp, caller: Pair, model: string, content = 'hello there', headers: Record<string, string> = {}) =>
  injectAs(t.app, caller, { method: 'POST', url: '/api/ollama/proxy-chat', headers, payload: { model, messages: [{ role: 'user', content }] } });
const ndjson = (body: string) =>
  body
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { message?: { content: string }; done?: boolean; eval_count?: number; error?: { code: string } });

/** A server on loopback that no request may reach: it counts the connections it gets. */
async function untouchable(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((_request, response) => response.end('should never be reached'));
  server.on('connection', () => (count += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

describe('the Ollama proxy, with the operator’s Ollama (OLLAMA_BASE_URL) on loopback', () => {
  let fake: FakeOllama;
  let t: TestApp;
  beforeAll(async () => {
    fake = await startFakeOllama({ apiKey: USER_KEY });
    t = await buildTestApp({ env: { OLLAMA_BASE_URL: fake.url, AI_DAILY_TOKEN_LIMIT: '60', AI_IDLE_TIMEOUT: '300ms' } });
  });
  afterAll(async () => {
    await t.close();
    await fake.close();
  });
  beforeEach(() => truncateAll(t));

  const withKey = async () => {
    const user = await register(t.app);
    expect((await injectAs(t.app, user, { method: 'POST', url: '/api/ollama/store-key', payload: { apiKey: USER_KEY } })).statusCode).toBe(200);
    return user;
  };

  it('streams the reply as NDJSON with the user’s key, and as SSE when asked', async () => {
    const user = await withKey();
    const res = await chat(t, user, 'llama3.2');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-ndjson');
    const parts = ndjson(res.body);
    expect(parts.map((part) => part.message?.content ?? '').join('')).toBe(replyTo('hello there'));
    expect(parts.at(-1)).toMatchObject({ done: true, eval_count: tokensOf(replyTo('hello there')).length });
    expect(fake.requests.at(-1)!.headers.authorization).toBe(`Bearer ${USER_KEY}`);

    const sse = await chat(t, user, 'llama3.2', 'again', { accept: 'text/event-stream' });
    expect(sse.headers['content-type']).toContain('text/event-stream');
    const events = sse.body.split('\n\n').filter(Boolean);
    expect(events.every((event) => event.startsWith('data: '))).toBe(true);
    expect(events.map((event) => (JSON.parse(event.slice(6)) as { message: { content: string } }).message.content).join('')).toBe(replyTo('again'));

    const models = await injectAs(t.app, user, { method: 'GET', url: '/api/ollama/list-models' });
    expect(models.json().models[0]).toMatchObject({ name: 'llama3.2:latest', family: 'llama', parameterSize: '3.2B' });
  });

  it('answers a missing model 404, a refused key 422, bad input 400, and nothing without a sign-in', async () => {
    const user = await withKey();
    expect((await chat(t, user, 'missing')).json().error.code).toBe('ai_model_not_found');
    const keyless = await register(t.app);
    const refused = await chat(t, keyless, 'llama3.2');
    expect([refused.statusCode, refused.json().error.code]).toEqual([422, 'ai_key_rejected']);
    const bad = await injectAs(t.app, user, { method: 'POST', url: '/api/ollama/proxy-chat', payload: { model: '../etc', messages: [] } });
    expect(bad.statusCode).toBe(400);
    expect((await t.app.inject({ method: 'POST', url: '/api/ollama/proxy-chat', payload: { model: 'llama3.2', messages: [] } })).statusCode).toBe(401);
  });

  it('ends a reply that breaks off, or goes silent, with an error line', async () => {
    const user = await withKey();
    const dropped = ndjson((await chat(t, user, 'drop')).body);
    expect(dropped.slice(0, 2).every((part) => part.message)).toBe(true);
    expect(dropped.at(-1)).toEqual({ error: { code: 'ai_unavailable', message: 'The model stopped answering mid-reply; try again' } });

    const silent = chat(t, user, 'slow');
    const slow = await fake.chat(fake.chats.length);
    slow.release(1);
    const parts = ndjson((await silent).body);
    expect(parts[0]!.message?.content).toBe(tokensOf(replyTo('hello there'))[0]);
    expect(parts.at(-1)!.error?.code).toBe('ai_unavailable');
    expect(await slow.ended).toBe('aborted');
  });

  it('counts tokens against the daily budget and then answers 429', async () => {
    const user = await withKey();
    // each chat spends its prompt (2 words) and its reply's tokens; a chat starts while the day's total is under 60
    const perChat = 2 + tokensOf(replyTo('hello there')).length;
    const allowed = Math.ceil(60 / perChat);
    for (let index = 0; index < allowed; index += 1) expect((await chat(t, user, 'llama3.2')).statusCode).toBe(200);
    const over = await chat(t, user, 'llama3.2');
    expect([over.statusCode, over.json().error.code]).toEqual([429, 'ai_budget_exceeded']);
    expect(over.json().error.details).toEqual({ used: allowed * perChat, limit: 60 });
    const other = await withKey();
    expect((await chat(t, other, 'llama3.2')).statusCode).toBe(200);
  });

  it('cancels the upstream request when the client goes away mid-reply', async () => {
    const user = await withKey();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const client = new AbortController();
    const response = await Promise.all([
      fetch(`http://127.0.0.1:${port}/api/ollama/proxy-chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'are you there' }] }),
        signal: client.signal,
      }),
      fake.chat(fake.chats.length).then((upstream) => upstream.release(1)),
    ]).then(([res]) => res);
    const upstream = fake.chats.at(-1)!;
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain(tokensOf(replyTo('are you there'))[0]!);
    client.abort();
    expect(await upstream.ended).toBe('aborted');
  });
});

describe('the Ollama proxy’s limits on where it connects', () => {
  it('refuses a user’s base URL on loopback or a private address the operator did not configure, when stored and when used, without connecting', async () => {
    const target = await untouchable();
    const t = await buildTestApp({ env: { DATABASE_URL: await separateDatabaseUrl() } });
    try {
      const user = await register(t.app);
      const loopback = [`http://127.0.0.1:${target.port}`, `http://localhost:${target.port}`, `http://127.0.0.2:${target.port}`, `http://[::1]:${target.port}`];
      // written as an address: refused at once (classified, never contacted); 10/8 and 169.254/16 too
      for (const baseUrl of [...loopback, 'http://10.1.2.3:11434', 'http://169.254.169.254/', 'http://[fd00::1]:11434']) {
        const res = await injectAs(t.app, user, { method: 'POST', url: '/api/ollama/store-key', payload: { apiKey: USER_KEY, baseUrl } });
        expect([baseUrl, res.statusCode, res.json().error.code]).toEqual([baseUrl, 422, 'base_url_refused']);
      }
      expect((await injectAs(t.app, user, { method: 'GET', url: '/api/ollama/check-key' })).json().hasKey).toBe(false);
      // a name that resolves to such an address is only known at use: the proxy vets what DNS answers
      const stored = await injectAs(t.app, user, {
        method: 'POST',
        url: '/api/ollama/store-key',
        payload: { apiKey: USER_KEY, baseUrl: 'https://ollama.example.com' },
      });
      expect(stored.statusCode).toBe(200);
      for (const baseUrl of loopback) {
        await t.container.db.query('UPDATE ollama_keys SET base_url = $2 WHERE user_id = $1', [user.user.id, baseUrl]);
        const res = await chat(t, user, 'llama3.2');
        expect([baseUrl, res.statusCode, res.json().error.code]).toEqual([baseUrl, 422, 'base_url_refused']);
        expect((await injectAs(t.app, user, { method: 'GET', url: '/api/ollama/list-models' })).json().error.code).toBe('base_url_refused');
      }
      expect(target.connections()).toBe(0);
    } finally {
      await t.close();
      await new Promise((resolve) => target.server.close(resolve));
    }
  });

  it('answers 503 ai_unavailable with no Ollama configured and no key stored, and leaves the rest alone', async () => {
    const t = await buildTestApp({ env: { DATABASE_URL: await separateDatabaseUrl() } });
    try {
      const user = await register(t.app);
      const res = await chat(t, user, 'llama3.2');
      expect([res.statusCode, res.json().error.code]).toEqual([503, 'ai_unavailable']);
      expect((await injectAs(t.app, user, { method: 'GET', url: '/api/ollama/list-models' })).statusCode).toBe(503);
      expect((await t.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('stops calling a failing model after a few failures: a fast 503 with Retry-After', async () => {
    const fake = await startFakeOllama();
    const t = await buildTestApp({ env: { DATABASE_URL: await separateDatabaseUrl(), OLLAMA_BASE_URL: fake.url } });
    try {
      const user = await register(t.app);
      for (let index = 0; index < 5; index += 1) expect((await chat(t, user, 'fail')).json().error.code).toBe('ai_unavailable');
      expect(fake.chats).toHaveLength(5);
      const open = await chat(t, user, 'llama3.2');
      expect([open.statusCode, open.json().error.code]).toEqual([503, 'ai_unavailable']);
      expect(Number(open.headers['retry-after'])).toBeGreaterThan(0);
      expect(fake.chats).toHaveLength(5);
    } finally {
      await t.close();
      await fake.close();
    }
  });
});
