import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { load, startServer, type LoadResult } from './lib.js';

/**
 * npm run bench
 * Starts Parley (compiled, every production plugin on, LOG_LEVEL=info) and a bare Fastify
 * hello-world, drives both with autocannon in the same run, and writes bench/results/.
 * Uses BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else the embedded defaults.
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
    DATABASE_URL: process.env.BENCH_DATABASE_URL,
    REDIS_URL: process.env.BENCH_REDIS_URL,
  },
  readyUrl: `http://127.0.0.1:${parleyPort}/ready`,
});

// Both servers run side by side (each idle while the other is driven), measured in
// alternating rounds; the better round of each is kept, so a noisy moment on this shared
// machine does not decide the ratio.
const best = (results: LoadResult[]) => results.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
const baselineRounds: LoadResult[] = [];
const parleyRounds: LoadResult[] = [];
for (let round = 0; round < rounds; round += 1) {
  baselineRounds.push(await load({ url: `http://127.0.0.1:${baselinePort}/health`, connections, durationSeconds }));
  parleyRounds.push(await load({ url: `http://127.0.0.1:${parleyPort}/health`, connections, durationSeconds }));
}
const baselineHealth = best(baselineRounds);
const parleyHealth = best(parleyRounds);
await baseline.stop();
await parley.stop();

const ratio = (result: LoadResult) => Math.round((result.requestsPerSecond / baselineHealth.requestsPerSecond) * 100) / 100;
const report = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  settings: {
    connections,
    durationSeconds,
    rounds,
    database: process.env.BENCH_DATABASE_URL ? 'configured' : 'embedded',
    redis: process.env.BENCH_REDIS_URL ? 'configured' : 'embedded',
  },
  scenarios: {
    'baseline GET /health (bare Fastify)': { ...baselineHealth, ratio: 1 },
    'GET /health': { ...parleyHealth, ratio: ratio(parleyHealth) },
  },
};

mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/platform.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(`\n${'scenario'.padEnd(40)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'ratio'.padStart(6)}`);
for (const [name, result] of Object.entries(report.scenarios)) {
  console.log(
    `${name.padEnd(40)} ${String(result.requestsPerSecond).padStart(8)} ${String(result.p50Ms).padStart(7)} ${String(result.p99Ms).padStart(7)} ${String(result.ratio).padStart(6)}`,
  );
}
console.log('\nwrote bench/results/platform.json');
