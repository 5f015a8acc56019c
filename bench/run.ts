import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { best, load, startServer, type LoadResult } from './lib.js';

/**
 * npm run bench
 * Starts Parley (compiled, every production plugin on, LOG_LEVEL=info, bcrypt cost 12) and a
 * bare Fastify hello-world, drives both with autocannon in the same run, and writes
 * bench/results/http.json. Uses BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else the
 * embedded defaults. The login limits are lifted so the bench can measure logins.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const durationSeconds = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);

execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });

const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
chmodSync(cwd, 0o755);
const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME };

const baselinePort = await findFreePort();
const baseline = await startServer(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'bench/hello-server.ts'), String(baselinePort)], {
  cwd: root,
  env: baseEnv,
  readyUrl: `http://127.0.0.1:${baselinePort}/health`,
});
const parleyPort = await findFreePort();
const parley = await startServer(process.execPath, [path.join(root, 'dist/src/main.js')], {
  cwd,
  env: {
    ...baseEnv,
    PORT: String(parleyPort),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    BCRYPT_COST: '12',
    AUTH_LOGIN_LIMIT: '1000000/1m',
    AUTH_REGISTER_LIMIT: '1000000/1m',
    RATE_LIMIT_REQUESTS: '100000000',
    DATABASE_URL: process.env.BENCH_DATABASE_URL,
    REDIS_URL: process.env.BENCH_REDIS_URL,
  },
  readyUrl: `http://127.0.0.1:${parleyPort}/ready`,
});
const base = `http://127.0.0.1:${parleyPort}`;

// One account: its token for /auth/me, its credentials for the logins.
const credentials = { email: `bench-${Date.now()}@parley.test`, password: 'benchmark passphrase', deviceId: 'bench', platform: 'web' };
const registered = await fetch(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
if (registered.status !== 201) throw new Error(`could not register the bench account: ${registered.status} ${await registered.text()}`);
const { accessToken } = (await registered.json()) as { accessToken: string };
const authorized = { authorization: `Bearer ${accessToken}` };
const loginRequest = {
  url: `${base}/auth/login`,
  method: 'POST' as const,
  headers: { 'content-type': 'application/json' },
  // a device of its own per request would grow the sessions table without end; one device is replaced each time
  body: JSON.stringify({ ...credentials, deviceId: 'bench-login' }),
};

// Throughput: both servers side by side (each idle while the other is driven), alternating
// rounds, the better round of each kept so a noisy moment does not decide a ratio.
const rounds_ = { baseline: [] as LoadResult[], health: [] as LoadResult[], me: [] as LoadResult[] };
for (let round = 0; round < rounds; round += 1) {
  rounds_.baseline.push(await load({ url: `http://127.0.0.1:${baselinePort}/health`, connections, durationSeconds }));
  rounds_.health.push(await load({ url: `${base}/health`, connections, durationSeconds }));
  rounds_.me.push(await load({ url: `${base}/auth/me`, connections, durationSeconds, headers: authorized }));
}
await baseline.stop();
const baselineHealth = best(rounds_.baseline);

// Logins per second against bcrypt cost 12.
const logins = await load({ ...loginRequest, connections: 8, durationSeconds, warmup: false });

// /auth/me latency at a fixed 500 req/s, idle and while 4 clients loop on login.
const meAtRate = { url: `${base}/auth/me`, headers: authorized, connections: 10, overallRate: 500, durationSeconds };
const meIdle = await load(meAtRate);
const [meDuringLogins, burst] = await Promise.all([
  load({ ...meAtRate, warmup: false }),
  load({ ...loginRequest, connections: 4, durationSeconds, warmup: false }),
]);
await parley.stop();

const ratio = (result: LoadResult) => Math.round((result.requestsPerSecond / baselineHealth.requestsPerSecond) * 100) / 100;
const report = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  settings: {
    connections,
    durationSeconds,
    rounds,
    bcryptCost: 12,
    database: process.env.BENCH_DATABASE_URL ? 'configured' : 'embedded',
    redis: process.env.BENCH_REDIS_URL ? 'configured' : 'embedded',
  },
  scenarios: {
    'baseline GET /health (bare Fastify)': { ...baselineHealth, ratio: 1 },
    'GET /health': { ...best(rounds_.health), ratio: ratio(best(rounds_.health)) },
    'GET /auth/me': { ...best(rounds_.me), ratio: ratio(best(rounds_.me)) },
    'POST /auth/login (bcrypt 12, 8 clients)': logins,
    'GET /auth/me at 500 req/s, idle': meIdle,
    'GET /auth/me at 500 req/s, 4 clients looping on login': {
      ...meDuringLogins,
      p99VsIdle: Math.round((meDuringLogins.p99Ms / Math.max(meIdle.p99Ms, 1)) * 100) / 100,
    },
    'POST /auth/login during that burst': burst,
  },
};

mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/http.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(`\n${'scenario'.padEnd(56)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'ratio'.padStart(6)} ${'non2xx'.padStart(7)}`);
for (const [name, result] of Object.entries(report.scenarios)) {
  const shown = 'ratio' in result ? result.ratio : 'p99VsIdle' in result ? `${result.p99VsIdle}x` : '';
  console.log(
    `${name.padEnd(56)} ${String(result.requestsPerSecond).padStart(8)} ${String(result.p50Ms).padStart(7)} ${String(result.p99Ms).padStart(7)} ${String(shown).padStart(6)} ${String(result.non2xx).padStart(7)}`,
  );
}
console.log('\nratio: req/s over bare Fastify; for the burst row, its p99 over the idle p99. Wrote bench/results/http.json');
