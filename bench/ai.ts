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
 * Writes bench/results/ai.json.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHATS = Number(process.env.BENCH_AI_CHATS ?? 300);
const WARMUP = 30;
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
const fake = await startFakeOllama();
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

  report.machine = { cpus: os.cpus().length, node: process.version, loadAverageAtStart, loadAverageAtEnd: loadAverage() };
  report.services = {
    database: process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL' : 'embedded PostgreSQL',
    redis: process.env.BENCH_REDIS_URL ? 'BENCH_REDIS_URL' : 'in-process emulation',
  };
  report['first token, one chat at a time'] = {
    'GET /api/ollama/check-key (baseline: an authenticated read)': summary(authenticated),
    'POST /api/ollama/proxy-chat': { parleyOverhead: summary(proxy.overhead), model: summary(proxy.model), client: summary(proxy.client) },
    'POST /api/chat-stream (SSE, saved)': { parleyOverhead: summary(stream.overhead), model: summary(stream.model), client: summary(stream.client) },
    target: 'Parley overhead p99 < 5 ms',
    met: percentile(proxy.overhead, 99) < 5,
  };
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
