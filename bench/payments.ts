import { createHmac, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { startServer, type Server } from './lib.js';

/**
 * npm run bench:payments (and the last part of npm run bench)
 * Two Parley processes (src/main.ts under tsx, workers on, the local payment provider) sharing
 * one cwd (so one keys/ folder and one webhook secret), BENCH_DATABASE_URL and BENCH_REDIS_URL;
 * the signed webhooks come from this process, round-robin over both. Measures:
 * - ingest: signed `payment_intent.created` events (stored, then applied as ignored) from
 *   BENCH_INGEST_CONCURRENCY (32) clients for BENCH_INGEST_SECONDS (10 s): events accepted per
 *   second, response latency; then 200 events delivered 3 times at once each: one row each;
 * - event -> effect: `checkout.session.completed` of pending course orders at BENCH_EFFECT_RATE
 *   (100/s) for BENCH_EFFECT_SECONDS (10 s): from the request's sending to the order's paid_at
 *   (the server's clock; same machine), every order paid and enrolled once.
 * Two instances cannot share the embedded PostgreSQL or the in-process Redis emulation: without
 * both BENCH_ variables the bench says so and does nothing. Writes bench/results/payments.json.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INGEST_SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? 10);
const INGEST_CONCURRENCY = Number(process.env.BENCH_INGEST_CONCURRENCY ?? 32);
const EFFECT_RATE = Number(process.env.BENCH_EFFECT_RATE ?? 100);
const EFFECT_SECONDS = Number(process.env.BENCH_EFFECT_SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const DUPLICATE_EVENTS = 200;
const DELIVERIES_PER_DUPLICATE = 3;
const EFFECT_DEADLINE_MS = 30_000;
const PASSWORD = 'benchmark passphrase';

const databaseUrl = process.env.BENCH_DATABASE_URL;
const redisUrl = process.env.BENCH_REDIS_URL;
if (!databaseUrl || !redisUrl) {
  console.error('bench:payments skipped: two instances need a shared PostgreSQL and Redis (set BENCH_DATABASE_URL and BENCH_REDIS_URL)');
  process.exit(0);
}

const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
const loadAverageAtStart = os.loadavg().map((load) => Math.round(load * 100) / 100);
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();

// --- the two instances

const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-payments-'));
// run as root, the server processes must be able to enter the folder they work in
chmodSync(cwd, 0o755);
const servers: Server[] = [];
/** SIGTERM to each server still running, its exit, then the folder goes (it holds the servers' keys and webhook secret). */
async function stopServers(): Promise<void> {
  await Promise.all(
    servers.splice(0).map((server) => (server.child.exitCode === null && server.child.signalCode === null ? server.stop() : Promise.resolve())),
  );
  rmSync(cwd, { recursive: true, force: true });
}
process.once('SIGINT', () => void stopServers().then(() => process.exit(130)));
process.once('SIGTERM', () => void stopServers().then(() => process.exit(143)));

const ports = [await findFreePort(), await findFreePort()];
/** Node flags for the servers, e.g. `--cpu-prof --cpu-prof-dir=/tmp/profiles` (refused in NODE_OPTIONS) to see where their time goes. */
const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
async function startParley(port: number): Promise<Server> {
  // node itself with tsx as a loader, not the tsx wrapper: the SIGTERM at the end must reach the server
  return startServer(process.execPath, [...serverFlags, '--import', import.meta.resolve('tsx'), path.join(root, 'src/main.ts')], {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // tsx looks for tsconfig.json from the cwd; without Parley's, its decorators would compile as TC39 ones
      TSX_TSCONFIG_PATH: path.join(root, 'tsconfig.json'),
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      BCRYPT_COST: '4',
      AUTH_LOGIN_LIMIT: '1000000/1m',
      AUTH_REGISTER_LIMIT: '1000000/1m',
      RATE_LIMIT_REQUESTS: '100000000',
      PAYMENT_PROVIDER: 'local',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
    },
    readyUrl: `http://127.0.0.1:${port}/ready`,
  });
}

// --- HTTP, keep-alive, straight on node:http (this process shares the two cores with what it measures)

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
interface Answer {
  status: number;
  body: string;
}
function post(port: number, pathname: string, body: string, headers: Record<string, string> = {}, method = 'POST'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: pathname,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
async function api<T>(instance: number, pathname: string, payload: unknown, token?: string, headers: Record<string, string> = {}): Promise<T> {
  const answer = await post(ports[instance % ports.length]!, pathname, JSON.stringify(payload), {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...headers,
  });
  if (answer.status < 200 || answer.status >= 300) throw new Error(`${pathname}: ${answer.status} ${answer.body}`);
  return JSON.parse(answer.body) as T;
}

let secret = '';
/** As the local provider signs: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. */
function deliver(instance: number, body: string): Promise<Answer> {
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return post(ports[instance % ports.length]!, '/webhooks/local', body, { 'parley-signature': `t=${timestamp},v1=${signature}` });
}
const event = (id: string, type: string, object: Record<string, unknown>) =>
  JSON.stringify({ id, object: 'event', type, created: Math.floor(Date.now() / 1000), data: { object } });
/** An event the local provider maps to `ignored`: stored and applied as nothing, so ingest is what costs. */
const ignoredEvent = (id: string) => event(id, 'payment_intent.created', { id: `pi_${id}`, object: 'payment_intent', amount: 1999, currency: 'usd' });

// --- measures

const round = (value: number) => Math.round(value * 10) / 10;
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
};
const summary = (values: number[]) => ({
  count: values.length,
  p50Ms: percentile(values, 50),
  p90Ms: percentile(values, 90),
  p99Ms: percentile(values, 99),
  maxMs: round(Math.max(...values)),
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
async function inBatches<T>(count: number, size: number, make: (index: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += size)
    out.push(...(await Promise.all(Array.from({ length: Math.min(size, count - start) }, (_, i) => make(start + i)))));
  return out;
}
/** Polls the database (the servers' work is seen nowhere else) until `done`, or throws after `timeoutMs`. */
async function until(done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = performance.now();
  while (!(await done())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
  return performance.now() - started;
}
/**
 * Calls `send(i)` for i = 0..count-1 at `perSecond`, sending whatever is due every
 * millisecond; it sleeps in between, so the pacer takes no core from the servers.
 */
async function atSteadyRate(count: number, perSecond: number, send: (index: number) => void): Promise<number> {
  const start = performance.now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - start) * perSecond) / 1000) + 1);
    while (sent < due) send(sent++);
    await sleep(1);
  }
  return (performance.now() - start) / 1000;
}
const count = async (sql: string, parameters: unknown[] = []) => Number((await db.query<{ n: string }>(sql, parameters)).rows[0]!.n);
const unprocessedEvents = () => count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'received'`);
/** Busy share of the machine's cores, each server's CPU time (prom-client's counter on /metrics) and PostgreSQL's transactions, to read as a difference. */
async function usage() {
  const cores = os
    .cpus()
    .map(({ times }) => ({ busy: times.user + times.nice + times.sys + times.irq, total: times.user + times.nice + times.sys + times.irq + times.idle }));
  const cpuSeconds = await Promise.all(
    ports.map(async (port) => {
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^process_cpu_seconds_total (\S+)/m.exec(metrics)?.[1] ?? Number.NaN);
    }),
  );
  const transactions = await count(`SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`);
  return { busy: cores.reduce((sum, core) => sum + core.busy, 0), total: cores.reduce((sum, core) => sum + core.total, 0), cpuSeconds, transactions };
}
async function usageSince(before: Awaited<ReturnType<typeof usage>>, events: number) {
  const after = await usage();
  const serverCpuSeconds = after.cpuSeconds.map((seconds, index) => round(seconds - before.cpuSeconds[index]!));
  return {
    machineBusyPercent: Math.round(((after.busy - before.busy) / (after.total - before.total)) * 100),
    serverCpuSeconds,
    serverCpuMsPerEvent: round((serverCpuSeconds.reduce((sum, seconds) => sum + seconds, 0) * 1000) / events),
    // PostgreSQL counts a statement outside a transaction block as one: roughly the round trips of every kind
    postgresTransactionsPerEvent: round((after.transactions - before.transactions) / events),
  };
}

/** Closed loop: `concurrency` clients, each sending its next distinct event once the last is answered. */
async function ingest(prefix: string, seconds: number) {
  const latencies: number[] = [];
  const outcome = { sent: 0, accepted: 0, reportedDuplicate: 0, non2xx: 0, errors: 0 };
  const began = performance.now();
  const end = began + seconds * 1000;
  await Promise.all(
    Array.from({ length: INGEST_CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const index = outcome.sent++;
        const started = performance.now();
        try {
          const answer = await deliver(index, ignoredEvent(`evt_${prefix}_${index}`));
          latencies.push(performance.now() - started);
          if (answer.status < 200 || answer.status >= 300) outcome.non2xx += 1;
          else if ((JSON.parse(answer.body) as { duplicate: boolean }).duplicate) outcome.reportedDuplicate += 1;
          else outcome.accepted += 1;
        } catch {
          outcome.errors += 1;
        }
      }
    }),
  );
  return { ...outcome, seconds: (performance.now() - began) / 1000, latencies };
}

interface Order {
  id: string;
  sessionId: string;
  amountMinor: number;
  currency: string;
}
const completedEvent = (order: Order) =>
  event(`evt_${order.sessionId}_completed`, 'checkout.session.completed', {
    id: order.sessionId,
    object: 'checkout.session',
    order_id: order.id,
    payment_id: `lpi_${order.sessionId.slice(4)}`,
    amount_total: order.amountMinor,
    currency: order.currency,
    status: 'complete',
    payment_status: 'paid',
  });

/** Open loop at EFFECT_RATE; each order's send time, and every response's latency. */
async function complete(orders: Order[]) {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const outcome = { non2xx: 0, errors: 0 };
  const sending: Array<Promise<void>> = [];
  const seconds = await atSteadyRate(orders.length, EFFECT_RATE, (index) => {
    const order = orders[index]!;
    const body = completedEvent(order);
    const started = performance.now();
    sentAt.set(order.id, Date.now());
    sending.push(
      deliver(index, body).then(
        (answer) => {
          latencies.push(performance.now() - started);
          if (answer.status < 200 || answer.status >= 300) outcome.non2xx += 1;
        },
        () => void (outcome.errors += 1),
      ),
    );
  });
  await Promise.all(sending);
  const ids = orders.map((order) => order.id);
  const paidSeconds = await until(
    async () => (await count(`SELECT count(*) AS n FROM orders WHERE id = ANY($1::uuid[]) AND status = 'paid'`, [ids])) === ids.length,
    EFFECT_DEADLINE_MS,
    'every order to be paid',
  ).then(
    (ms) => ms / 1000,
    () => null,
  );
  return { sentAt, latencies, ...outcome, seconds, paidSeconds };
}

let report: Record<string, unknown>;
try {
  servers.push(await startParley(ports[0]!));
  // the first start migrated the database and wrote the shared secret: the second only reads them
  servers.push(await startParley(ports[1]!));
  secret = readFileSync(path.join(cwd, 'keys', 'local-payments-webhook.secret'), 'utf8').trim();

  // 1. Ingest, as fast as 32 clients go: verify, Redis gate, inbox row, drain job.
  await ingest(`${run}_warmup`, WARMUP_SECONDS);
  await until(async () => (await unprocessedEvents()) === 0, 120_000, 'the warm-up events to be applied');
  const ingestUsage = await usage();
  const measured = await ingest(`${run}_ingest`, INGEST_SECONDS);
  const ingestCpu = await usageSince(ingestUsage, measured.accepted);
  const drainedMs = await until(async () => (await unprocessedEvents()) === 0, 300_000, 'the ingested events to be applied');
  const stored = await count(`SELECT count(*) AS n FROM payment_webhook_events WHERE provider = 'local' AND event_id LIKE $1`, [`evt\\_${run}\\_ingest\\_%`]);
  const failedEvents = await count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'failed'`);

  // Each event three times at once, the copies on both instances: one row, one first delivery.
  const duplicateIds = Array.from({ length: DUPLICATE_EVENTS }, (_, index) => `evt_${run}_dup_${index}`);
  const deliveries = await inBatches(DUPLICATE_EVENTS, 16, (index) => {
    const body = ignoredEvent(duplicateIds[index]!);
    return Promise.all(Array.from({ length: DELIVERIES_PER_DUPLICATE }, (_, copy) => deliver(index + copy, body)));
  });
  const answers = deliveries.flat();
  const duplicateRows = await count(`SELECT count(*) AS n FROM payment_webhook_events WHERE provider = 'local' AND event_id = ANY($1::text[])`, [duplicateIds]);
  const firstDeliveries = answers.filter((answer) => answer.status === 200 && !(JSON.parse(answer.body) as { duplicate: boolean }).duplicate).length;

  // 2. Event -> effect. Buyers and their checkouts through the API (bcrypt cost 4), a course by an admin.
  const preparing = performance.now();
  const adminEmail = `bench-admin-${run}@parley.test`;
  const device = { deviceId: 'bench', platform: 'web' };
  await api(0, '/auth/register', { email: adminEmail, password: PASSWORD, ...device });
  await db.query(`UPDATE users SET role = 'admin' WHERE email = $1`, [adminEmail]);
  const admin = await api<{ accessToken: string }>(0, '/auth/login', { email: adminEmail, password: PASSWORD, ...device });
  const course = await api<{ id: string }>(
    0,
    '/courses',
    { title: `Bench course ${run}`, level: 'beginner', price: { amount: 1999, currency: 'usd' }, published: true },
    admin.accessToken,
  );
  const warmupCount = WARMUP_SECONDS * EFFECT_RATE;
  const measuredCount = EFFECT_SECONDS * EFFECT_RATE;
  const orderIds = await inBatches(warmupCount + measuredCount, 16, async (index) => {
    const buyer = await api<{ accessToken: string }>(index, '/auth/register', {
      email: `bench-buyer-${run}-${index}@parley.test`,
      password: PASSWORD,
      ...device,
    });
    const checkout = await api<{ orderId: string }>(index, '/payments/create-checkout-session', { courseId: course.id }, buyer.accessToken, {
      'idempotency-key': randomUUID(),
    });
    return checkout.orderId;
  });
  const rows = await db.query<Order>(
    `SELECT id, provider_session_id AS "sessionId", amount_minor AS "amountMinor", currency FROM orders WHERE id = ANY($1::uuid[]) AND status = 'pending'`,
    [orderIds],
  );
  const byId = new Map(rows.rows.map((order) => [order.id, order]));
  const orders = orderIds.map((id) => byId.get(id)!);
  const prepareSeconds = (performance.now() - preparing) / 1000;

  const warmup = await complete(orders.slice(0, warmupCount));
  if (warmup.paidSeconds === null) throw new Error('the warm-up orders were not all paid in time');
  const effectUsage = await usage();
  const effects = await complete(orders.slice(warmupCount));
  const effectCpu = await usageSince(effectUsage, measuredCount);
  const measuredIds = orders.slice(warmupCount).map((order) => order.id);
  const timings = await db.query<{ id: string; paidAt: Date | null; receivedAt: Date; appliedAt: Date | null; processedAt: Date | null }>(
    `SELECT o.id, o.paid_at AS "paidAt", e.received_at AS "receivedAt", e.applied_at AS "appliedAt", e.processed_at AS "processedAt"
     FROM orders o JOIN payment_webhook_events e ON e.provider = 'local' AND e.event_id = 'evt_' || o.provider_session_id || '_completed'
     WHERE o.id = ANY($1::uuid[])`,
    [measuredIds],
  );
  const paid = timings.rows.filter((row) => row.paidAt);
  const paidTimes = paid.map((row) => row.paidAt!.getTime());
  const since = (row: { id: string }, at: Date) => at.getTime() - effects.sentAt.get(row.id)!;
  const enrolledOnce = await count(
    `SELECT count(*) AS n FROM (SELECT o.id FROM orders o LEFT JOIN enrollments e ON e.order_id = o.id AND e.revoked_at IS NULL
     WHERE o.id = ANY($1::uuid[]) AND o.status = 'paid' GROUP BY o.id HAVING count(e.id) = 1) AS once`,
    [measuredIds],
  );

  // the drain jobs of those events, as the job queue (JOBS_BACKEND=postgres: BullMQ's tables in the schema bullmq) recorded them
  const sendTimes = [...effects.sentAt.values()];
  const drainJobs = await db.query<{ pickupMs: string; runMs: string }>(
    `SELECT processed_at_ms - greatest(added_at_ms, coalesce(process_at_ms, 0)) AS "pickupMs", finished_at_ms - processed_at_ms AS "runMs"
     FROM bullmq.job WHERE queue = 'payments.webhooks' AND added_at_ms BETWEEN $1 AND $2 AND finished_at_ms IS NOT NULL`,
    [Math.min(...sendTimes), Math.max(...sendTimes)],
  );
  const redis = new Redis(redisUrl, { lazyConnect: true });
  await redis.connect();
  const redisVersion = /^redis_version:(.+)$/m.exec(await redis.info('server'))?.[1]?.trim();
  await redis.quit();
  const postgresVersion = (await db.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  const ingestRate = round(measured.accepted / measured.seconds);
  const effectP99 = percentile(
    paid.map((row) => since(row, row.paidAt!)),
    99,
  );

  report = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      node: process.version,
      loadAverageAtStart,
      loadAverageAtEnd: os.loadavg().map((load) => Math.round(load * 100) / 100),
    },
    settings: {
      database: 'configured',
      redis: 'configured',
      postgres: postgresVersion,
      redisServer: redisVersion,
      instances: servers.length,
      server: 'node --import tsx src/main.ts, NODE_ENV=development, LOG_LEVEL=warn, workers on, JOBS_BACKEND=postgres, PAYMENT_PROVIDER=local',
    },
    'webhook ingest (2 instances)': {
      eventType: 'payment_intent.created (stored, applied as ignored)',
      concurrency: INGEST_CONCURRENCY,
      seconds: round(measured.seconds),
      sent: measured.sent,
      accepted: measured.accepted,
      acceptedPerSecond: ingestRate,
      response: summary(measured.latencies),
      non2xx: measured.non2xx,
      errors: measured.errors,
      reportedDuplicate: measured.reportedDuplicate,
      rowsStored: stored,
      secondsUntilEveryEventApplied: round(drainedMs / 1000),
      cpu: ingestCpu,
      failedEvents,
      target: '>= 500 events/s accepted',
      met: ingestRate >= 500,
    },
    'duplicate deliveries': {
      events: DUPLICATE_EVENTS,
      deliveriesEach: DELIVERIES_PER_DUPLICATE,
      answered200: answers.filter((answer) => answer.status === 200).length,
      firstDeliveries,
      rows: duplicateRows,
      exactlyOnce: duplicateRows === DUPLICATE_EVENTS && firstDeliveries === DUPLICATE_EVENTS,
    },
    'checkout.session.completed -> order paid': {
      targetRate: EFFECT_RATE,
      achievedRate: round(measuredCount / effects.seconds),
      seconds: round(effects.seconds),
      events: measuredCount,
      warmupEvents: warmupCount,
      ordersPreparedThroughTheApi: orders.length,
      prepareSeconds: round(prepareSeconds),
      paid: paid.length,
      // as fast as the servers applied them: the offered rate when they keep up, their capacity when a backlog builds
      paidPerSecond: round(paid.length / ((Math.max(...paidTimes) - Math.min(...paidTimes)) / 1000)),
      secondsFromLastSendUntilAllPaid: effects.paidSeconds === null ? null : round(effects.paidSeconds),
      enrolledExactlyOnce: enrolledOnce,
      effect: summary(paid.map((row) => since(row, row.paidAt!))),
      response: summary(effects.latencies),
      sentToStored: summary(timings.rows.map((row) => since(row, row.receivedAt))),
      storedToPaid: summary(paid.map((row) => row.paidAt!.getTime() - row.receivedAt.getTime())),
      sentToNoticesSent: summary(timings.rows.filter((row) => row.processedAt).map((row) => since(row, row.processedAt!))),
      appliedToNoticesSent: summary(
        timings.rows.filter((row) => row.appliedAt && row.processedAt).map((row) => row.processedAt!.getTime() - row.appliedAt!.getTime()),
      ),
      drainJobs: {
        started: drainJobs.rows.length,
        waitForAWorker: summary(drainJobs.rows.map((row) => Number(row.pickupMs))),
        run: summary(drainJobs.rows.map((row) => Number(row.runMs))),
      },
      cpu: effectCpu,
      non2xx: effects.non2xx,
      errors: effects.errors,
      target: 'p99 < 1 s, every order paid and enrolled once',
      met: effectP99 < 1000 && paid.length === measuredCount && enrolledOnce === measuredCount,
    },
    notes: [
      'Times: effect is orders.paid_at (server clock) minus the send time (this process, same machine); sentToStored uses the event row received_at (set after verification, before the insert); sentToNoticesSent uses processed_at (after the paid notice went out).',
      "drainJobs: the payments.webhooks jobs enqueued while the events were sent, from BullMQ's own table (bullmq.job): waitForAWorker is from when a job could run until a worker took it, run is its handler (which first sleeps to the end of its 100 ms window).",
      "cpu: machineBusyPercent over both cores; serverCpuSeconds from each server's process_cpu_seconds_total; postgresTransactionsPerEvent from pg_stat_database (every client of the database, job queue included).",
      'This client process, both servers, PostgreSQL and Redis share the machine; the load averages show what else was running.',
    ],
  };
} finally {
  await stopServers();
  agent.destroy();
  await db.end();
}

mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/payments.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));
console.log('Wrote bench/results/payments.json');
