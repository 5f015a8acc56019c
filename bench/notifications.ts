import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { createContainer } from '../src/container.js';

/**
 * npm run bench:notifications (and the second half of npm run bench)
 * Parley's container in this process (API services and workers, as `npm start` runs them),
 * FCM faked by a local server in another process (bench/fake-fcm-server.ts), PostgreSQL and
 * Redis from BENCH_DATABASE_URL / BENCH_REDIS_URL, else the embedded defaults. Measures:
 * - notify() -> the push received by FCM, at a fixed rate (BENCH_NOTIFY_RATE, 200/s) for
 *   BENCH_NOTIFY_SECONDS (15 s): p50/p99 of that delay, and of notify() itself;
 * - an admin broadcast to BENCH_BROADCAST_USERS (10,000) users with one device each: the time
 *   until FCM has received every push, and this process's memory meanwhile.
 * Writes bench/results/notifications.json.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rate = Number(process.env.BENCH_NOTIFY_RATE ?? 200);
const seconds = Number(process.env.BENCH_NOTIFY_SECONDS ?? 15);
const broadcastUsers = Number(process.env.BENCH_BROADCAST_USERS ?? 10_000);
const notifyUsers = 200;

// node itself (tsx as a loader), not the tsx wrapper: the SIGTERM at the end must reach the server
const fake = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/fake-fcm-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
const lines = createInterface({ input: fake.stdout });
const received = new Map<string, number>();
/** The broadcast's audience, once known, and how many of its tokens got their push. */
let audienceTokens = new Set<string>();
let audienceReceived = 0;
let onReceived = () => undefined as void;
const fcm = await new Promise<{ url: string; tokenUrl: string; projectId: string; clientEmail: string; privateKey: string }>((resolve) => {
  let first = true;
  lines.on('line', (line) => {
    const parsed = JSON.parse(line) as Record<string, string | number>;
    if (first) {
      first = false;
      resolve(parsed as never);
      return;
    }
    received.set(String(parsed.notificationId), Number(parsed.receivedAt));
    if (audienceTokens.delete(String(parsed.token))) audienceReceived += 1;
    onReceived();
  });
});
const until = (done: () => boolean, timeoutMs: number, what: string) =>
  new Promise<void>((resolve, reject) => {
    if (done()) return resolve();
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    onReceived = () => {
      if (!done()) return;
      clearTimeout(timer);
      onReceived = () => undefined;
      resolve();
    };
  });

const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-notifications-'));
// run as root, the embedded PostgreSQL (as user postgres) must be able to enter its data folder
chmodSync(cwd, 0o755);
const config = loadConfig({
  cwd,
  env: {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    DATABASE_URL: process.env.BENCH_DATABASE_URL,
    REDIS_URL: process.env.BENCH_REDIS_URL,
    FIREBASE_PROJECT_ID: fcm.projectId,
    FIREBASE_CLIENT_EMAIL: fcm.clientEmail,
    FIREBASE_PRIVATE_KEY: fcm.privateKey,
    FCM_API_URL: fcm.url,
    FIREBASE_TOKEN_URL: fcm.tokenUrl,
  },
});
const container = await createContainer(config, { cwd });
const { db } = container;
const notifications = container.services.notifications;

/** Users with one device each, written straight to the tables (signing up thousands is not what is measured). */
async function seedUsers(count: number, level: string | null): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (let start = 0; start < ids.length; start += 5000) {
    const page = ids.slice(start, start + 5000);
    await db.query(
      `INSERT INTO users (id, email, password_hash, role, created_at, updated_at) SELECT id, 'bench-' || id || '@parley.test', NULL, 'student', now(), now() FROM unnest($1::uuid[]) AS id`,
      [page],
    );
    await db.query('INSERT INTO profiles (user_id, english_level, created_at, updated_at) SELECT id, $2, now(), now() FROM unnest($1::uuid[]) AS id', [
      page,
      level,
    ]);
    await db.query(
      `INSERT INTO device_tokens (id, user_id, device_id, platform, fcm_token, created_at, updated_at)
       SELECT gen_random_uuid(), id, 'phone', 'android', 'bench-token-' || id, now(), now() FROM unnest($1::uuid[]) AS id`,
      [page],
    );
  }
  return ids;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const summary = (values: number[]) => ({
  count: values.length,
  p50Ms: percentile(values, 50),
  p90Ms: percentile(values, 90),
  p99Ms: percentile(values, 99),
  maxMs: Math.max(...values),
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// 1. notify() -> push received, at a fixed rate
const users = await seedUsers(notifyUsers, null);
const sentAt = new Map<string, number>();
const notifyDurations: number[] = [];
const fire = async (index: number) => {
  const started = Date.now();
  const created = await notifications.notify(users[index % users.length]!, 'achievement', { title: 'Keep going', body: `notification ${index}` });
  notifyDurations.push(Date.now() - started);
  if (created) sentAt.set(created.id, started);
};
// warm-up: the FCM token, the connections, the JIT
await Promise.all(Array.from({ length: 50 }, (_, index) => fire(index)));
await until(() => [...sentAt.keys()].every((id) => received.has(id)), 30_000, 'the warm-up pushes');
sentAt.clear();
notifyDurations.length = 0;

const total = rate * seconds;
const firing: Array<Promise<void>> = [];
const began = Date.now();
for (let index = 0; index < total; index += 1) {
  await sleep(began + (index * 1000) / rate - Date.now());
  firing.push(fire(index));
}
await Promise.all(firing);
const achievedRate = Math.round((total / ((Date.now() - began) / 1000)) * 10) / 10;
await until(() => [...sentAt.keys()].every((id) => received.has(id)), 60_000, 'every push of the rate run');
const pushDelays = [...sentAt].map(([id, started]) => received.get(id)! - started);

// 2. a broadcast to many users
const audience = await seedUsers(broadcastUsers, 'advanced');
audienceTokens = new Set(audience.map((id) => `bench-token-${id}`));
global.gc?.();
const memory = { rssBeforeMb: 0, rssPeakMb: 0, heapBeforeMb: 0, heapPeakMb: 0, rssAfterMb: 0 };
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const before = process.memoryUsage();
memory.rssBeforeMb = mb(before.rss);
memory.heapBeforeMb = mb(before.heapUsed);
let rssPeak = before.rss;
let heapPeak = before.heapUsed;
const sampler = setInterval(() => {
  const now = process.memoryUsage();
  rssPeak = Math.max(rssPeak, now.rss);
  heapPeak = Math.max(heapPeak, now.heapUsed);
}, 20);
const broadcastStarted = Date.now();
const [admin] = users;
const { jobId } = await notifications.broadcast(admin!, { title: 'New course', body: 'For advanced speakers', audience: { kind: 'level', level: 'advanced' } });
await until(() => audienceReceived === broadcastUsers, 120_000, 'every push of the broadcast');
const broadcastSeconds = (Date.now() - broadcastStarted) / 1000;
clearInterval(sampler);
memory.rssPeakMb = mb(rssPeak);
memory.heapPeakMb = mb(heapPeak);
memory.rssAfterMb = mb(process.memoryUsage().rss);
const job = await container.jobs.queue.get(jobId);

const report = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  settings: {
    database: process.env.BENCH_DATABASE_URL ? 'configured' : 'embedded',
    redis: process.env.BENCH_REDIS_URL ? 'configured' : 'embedded',
    jobsBackend: config.JOBS_BACKEND,
    pushConcurrency: config.PUSH_CONCURRENCY,
  },
  'notify() -> push received by FCM': {
    targetRate: rate,
    achievedRate,
    seconds,
    pushDelay: summary(pushDelays),
    notifyCall: summary(notifyDurations),
    target: 'p99 < 500 ms',
  },
  'broadcast to many users': {
    users: broadcastUsers,
    secondsUntilEveryPushReceived: Math.round(broadcastSeconds * 10) / 10,
    pushesPerSecond: Math.round(broadcastUsers / broadcastSeconds),
    jobState: job?.state,
    memory,
    target: '< 30 s, flat memory',
  },
};

await container.close();
fake.kill('SIGTERM');
mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/notifications.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));
console.log('Wrote bench/results/notifications.json');
