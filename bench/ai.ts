import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { startFakeOllama, type FakeChat } from '../tests/helpers/fake-ollama.js';
import { openWs, replyFrames, type WsClient } from '../tests/helpers/ws.js';
import { startServer } from './lib.js';

/**
 * npm run bench:ai (and a part of npm run bench)
 * Issue 15's targets. Parley (compiled, one instance: BENCH_DATABASE_URL / BENCH_REDIS_URL when
 * set, else the embedded defaults) in its own process, the fake Ollama (tests/helpers/fake-ollama.ts)
 * in this one, so the client's clock and the model's are the same:
 * - time to first token, one chat at a time (BENCH_AI_CHATS, 300, after 30 to warm up), through
 *   POST /api/ollama/proxy-chat and GET /api/chat-stream: what the client waits minus what the model
 *   took to its first token (from the request's arrival at the fake to that token's write) is
 *   Parley's overhead, both hops included. Target: p99 < 5 ms.
 * - the same through /ws (one signed-in connection, a message after the previous reply's done);
 * - BENCH_AI_SOCKETS (1,000) /ws connections open at once, each sending one message at the same
 *   moment to a model writing a token every 20 ms: the server's memory per open connection, its
 *   event-loop lag while they all stream (prom-client's p99 on /metrics), each chat's first token.
 * Writes bench/results/ai.json.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHATS = Number(process.env.BENCH_AI_CHATS ?? 300);
const WARMUP = 30;
const SOCKETS = Number(process.env.BENCH_AI_SOCKETS ?? 1000);
const SLOW_TOKEN_MS = 20;
const PASSWORD = 'benchmark passphrase';

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const summary = (values: number[]) => ({
  samples: values.length,
  p50Ms: round(percentile(values, 50)),
  p90Ms: round(percentile(values, 90)),
  p99Ms: round(percentile(values, 99)),
  maxMs: round(Math.max(...values)),
});
const loadAverage = () => os.loadavg().map((value) => round(value));
const loadAverageAtStart = loadAverage();

execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
const fake = await startFakeOllama({ slowTokenMs: SLOW_TOKEN_MS });
const work = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-ai-'));
// run as root, the embedded PostgreSQL (as user postgres) must be able to enter its data folder
chmodSync(work, 0o755);
const port = await findFreePort();
const base = `http://127.0.0.1:${port}`;
const server = await startServer(process.execPath, [path.join(root, 'dist/src/main.js')], {
  cwd: work,
  readyUrl: `${base}/ready`,
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    BCRYPT_COST: '4',
    AUTH_REGISTER_LIMIT: '1000000/1m',
    RATE_LIMIT_REQUESTS: '100000000',
    AI_DAILY_TOKEN_LIMIT: '0',
    OLLAMA_BASE_URL: fake.url,
    // one client IP and one user for every connection: the /ws limits out of the way
    AI_WS_USER_MESSAGE_LIMITS: '100000000/1m',
    AI_WS_IP_MESSAGE_LIMITS: '100000000/1m',
    AI_WS_GLOBAL_MESSAGE_LIMITS: '100000000/1s',
    AI_WS_USER_CONNECTION_LIMIT: '100000000/1m',
    AI_WS_IP_CONNECTION_LIMIT: '100000000/1m',
    AI_WS_MAX_CONNECTIONS: String(SOCKETS * 2),
    DATABASE_URL: process.env.BENCH_DATABASE_URL,
    REDIS_URL: process.env.BENCH_REDIS_URL,
  },
});

async function cleanUp(): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) await server.stop();
  await fake.close();
  rmSync(work, { recursive: true, force: true });
}
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

async function api<T>(method: string, pathname: string, token: string | undefined, payload: unknown): Promise<T> {
  const response = await fetch(`${base}${pathname}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(payload),
  });
  const body = await response.text();
  if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${body}`);
  return JSON.parse(body) as T;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * Sends one request and resolves when `isFirstToken` sees the first chunk holding a token: the
 * client's wait, and the fake's chat (to subtract the model's own time). The rest of the reply
 * is read to its end before the next request.
 */
function firstToken(request: { method: string; path: string; token: string; body?: unknown; accept: string }, isFirstToken: (text: string) => boolean) {
  const chatIndex = fake.chats.length;
  return new Promise<{ waitedMs: number; chat: FakeChat }>((resolve, reject) => {
    const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
    const sent = performance.now();
    const req = http.request(`${base}${request.path}`, {
      method: request.method,
      agent,
      headers: { authorization: `Bearer ${request.token}`, accept: request.accept, ...(payload ? { 'content-type': 'application/json' } : {}) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`${request.path}: ${res.statusCode}`));
        res.resume();
        return;
      }
      let seen = '';
      let waited: number | undefined;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (waited !== undefined) return;
        seen += chunk;
        if (isFirstToken(seen)) waited = performance.now() - sent;
      });
      res.on('end', () => {
        if (waited === undefined) return reject(new Error(`${request.path}: no token in ${seen.slice(0, 200)}`));
        void fake.chat(chatIndex).then((chat) => resolve({ waitedMs: waited!, chat }));
      });
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Parley's share of the wait for the first token: the client's wait minus the model's. */
async function overheads(count: number, send: () => ReturnType<typeof firstToken>): Promise<{ overhead: number[]; model: number[]; client: number[] }> {
  const overhead: number[] = [];
  const model: number[] = [];
  const client: number[] = [];
  for (let index = 0; index < WARMUP + count; index += 1) {
    const { waitedMs, chat } = await send();
    if (index < WARMUP) continue;
    const modelMs = chat.firstTokenAt! - chat.receivedAt;
    overhead.push(waitedMs - modelMs);
    model.push(modelMs);
    client.push(waitedMs);
  }
  return { overhead, model, client };
}

/** An authenticated request's time to its answer (the guard, one read): what any route costs before a model is asked. */
async function baseline(count: number, token: string): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < WARMUP + count; index += 1) {
    const sent = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${base}/api/ollama/check-key`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    if (index >= WARMUP) times.push(performance.now() - sent);
  }
  return times;
}

/** The first reply of a fresh /ws chat: its id, for the messages that follow. */
async function firstWsReply(client: WsClient): Promise<{ chatId: string }> {
  client.send({ type: 'message', content: 'Hello there' });
  const { start, end } = await replyFrames(client);
  if (end.type !== 'done') throw new Error(`/ws reply ended with ${JSON.stringify(end)}`);
  return { chatId: String(start.chatId) };
}

/** The gateway lets a connection send 10 frames a second (after a burst of 30): the messages keep under it, as a person's would. */
const WS_MESSAGE_INTERVAL_MS = 110;
let lastWsMessageAt = 0;

/** One message over /ws: the wait for its first token frame (then the reply read to its done). */
async function wsFirstToken(client: WsClient, chatId: string): Promise<{ waitedMs: number; chat: FakeChat }> {
  const pause = lastWsMessageAt + WS_MESSAGE_INTERVAL_MS - performance.now();
  if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
  lastWsMessageAt = performance.now();
  const chatIndex = fake.chats.length;
  const sent = performance.now();
  client.send({ type: 'message', content: 'Hello there', chatId });
  await client.next('token', { timeoutMs: 30_000 });
  const waitedMs = performance.now() - sent;
  for (let frame = await client.next(undefined, { timeoutMs: 30_000 }); frame.type !== 'done'; frame = await client.next(undefined, { timeoutMs: 30_000 })) {
    if (frame.type === 'error') throw new Error(`/ws reply ended with ${JSON.stringify(frame)}`);
  }
  return { waitedMs, chat: await fake.chat(chatIndex) };
}

const metric = async (name: string) => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
};

/**
 * SOCKETS connections, each signed in, then one message on every one at once: memory per
 * connection, event-loop lag while the replies stream, and how long each waited for its first token.
 */
async function manySockets(token: string) {
  const rssBefore = await metric('process_resident_memory_bytes');
  const clients: WsClient[] = [];
  for (let index = 0; index < SOCKETS; index += 1) {
    const client = await openWs(`${base.replace(/^http/, 'ws')}/ws`);
    client.send({ type: 'authenticate', token });
    clients.push(client);
  }
  await Promise.all(clients.map((client) => client.next('authenticated', { timeoutMs: 60_000 })));
  // each on a conversation of its own with the model that writes a token every SLOW_TOKEN_MS
  const chatIds: string[] = [];
  for (let index = 0; index < SOCKETS; index += 1) chatIds.push((await api<{ id: string }>('POST', '/api/sessions/create', token, { model: 'slow' })).id);
  const rssOpen = await metric('process_resident_memory_bytes');
  const lagBefore = await metric('nodejs_eventloop_lag_p99_seconds');
  const started = performance.now();
  const firsts: number[] = [];
  const replies = clients.map(async (client, index) => {
    const sent = performance.now();
    client.send({ type: 'message', content: 'Hello there', chatId: chatIds[index] });
    const { tokens, end } = await replyFramesWithin(client);
    if (end.type !== 'done') throw new Error(`a reply ended with ${JSON.stringify(end)}`);
    firsts.push(tokens - sent);
  });
  // the server's own view while they stream (its p99 over its recent window)
  let lagDuring = 0;
  let rssDuring = 0;
  const sampling = (async () => {
    while (firsts.length < SOCKETS) {
      lagDuring = Math.max(lagDuring, await metric('nodejs_eventloop_lag_p99_seconds'));
      rssDuring = Math.max(rssDuring, await metric('process_resident_memory_bytes'));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  await Promise.all(replies);
  const allDoneSeconds = (performance.now() - started) / 1000;
  await sampling;
  for (const client of clients) client.close();
  return {
    connections: SOCKETS,
    modelTokenEveryMs: SLOW_TOKEN_MS,
    rssBeforeMB: round(rssBefore / 1024 ** 2),
    rssWithConnectionsOpenMB: round(rssOpen / 1024 ** 2),
    memoryPerOpenConnectionKB: round((rssOpen - rssBefore) / SOCKETS / 1024),
    peakRssWhileStreamingMB: round(rssDuring / 1024 ** 2),
    eventLoopLagP99BeforeMs: round(lagBefore * 1000),
    eventLoopLagP99WhileStreamingMs: round(lagDuring * 1000),
    firstToken: summary(firsts),
    allRepliesDoneSeconds: round(allDoneSeconds),
  };
}

/** A reply's frames, with the time its first token arrived. */
async function replyFramesWithin(client: WsClient): Promise<{ tokens: number; end: Record<string, unknown> }> {
  await client.next('start', { timeoutMs: 120_000 });
  await client.next('token', { timeoutMs: 120_000 });
  const firstAt = performance.now();
  for (;;) {
    const frame = await client.next(undefined, { timeoutMs: 120_000 });
    if (frame.type === 'done' || frame.type === 'error') return { tokens: firstAt, end: frame };
  }
}

const report: Record<string, unknown> = {};
try {
  const email = `bench-ai-${randomUUID()}@example.com`;
  const { accessToken } = await api<{ accessToken: string }>('POST', '/auth/register', undefined, {
    email,
    password: PASSWORD,
    deviceId: 'bench',
    platform: 'web',
  });
  const authenticated = await baseline(CHATS, accessToken);

  const proxy = await overheads(CHATS, () =>
    firstToken(
      {
        method: 'POST',
        path: '/api/ollama/proxy-chat',
        token: accessToken,
        accept: 'application/x-ndjson',
        body: { model: 'llama3.2', messages: [{ role: 'user', content: 'Hello there' }] },
      },
      (text) => /"content":"[^"]+"/.test(text),
    ),
  );
  const { id: sessionId } = await api<{ id: string }>('POST', '/api/sessions/create', accessToken, {});
  const stream = await overheads(CHATS, () =>
    firstToken(
      { method: 'POST', path: '/api/chat-stream', token: accessToken, accept: 'text/event-stream', body: { sessionId, message: 'Hello there' } },
      (text) => text.includes('"type":"token"'),
    ),
  );

  const ws = await openWs(`${base.replace(/^http/, 'ws')}/ws`);
  ws.send({ type: 'authenticate', token: accessToken });
  await ws.next('authenticated');
  const { chatId } = await firstWsReply(ws);
  const socket = await overheads(CHATS, () => wsFirstToken(ws, chatId));
  ws.close();

  const crowd = await manySockets(accessToken);

  report.machine = { cpus: os.cpus().length, node: process.version, loadAverageAtStart, loadAverageAtEnd: loadAverage() };
  report.services = {
    database: process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL' : 'embedded PostgreSQL',
    redis: process.env.BENCH_REDIS_URL ? 'BENCH_REDIS_URL' : 'in-process emulation',
  };
  report['first token, one chat at a time'] = {
    'GET /api/ollama/check-key (baseline: an authenticated read)': summary(authenticated),
    'POST /api/ollama/proxy-chat': { parleyOverhead: summary(proxy.overhead), model: summary(proxy.model), client: summary(proxy.client) },
    'POST /api/chat-stream (SSE, saved)': { parleyOverhead: summary(stream.overhead), model: summary(stream.model), client: summary(stream.client) },
    '/ws message (saved)': { parleyOverhead: summary(socket.overhead), model: summary(socket.model), client: summary(socket.client) },
    target: 'Parley overhead p99 < 5 ms (proxy and /ws)',
    met: percentile(proxy.overhead, 99) < 5 && percentile(socket.overhead, 99) < 5,
  };
  report[`${SOCKETS} /ws chats at once`] = crowd;
  report.notes = [
    'overhead: the client’s wait from sending the request to the first chunk with a token, minus the fake model’s own time from the request’s arrival to its first token (both measured in this process); it holds both loopback hops, authentication, the budget check and, for chat-stream, the history read (the messages are written while the model starts).',
    'one chat at a time on one kept-alive connection; the first 30 of each are a warm-up, not counted.',
  ];
} finally {
  await cleanUp();
}

mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/ai.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report['first token, one chat at a time'], null, 2));
console.log('Wrote bench/results/ai.json');
