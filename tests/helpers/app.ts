import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import { QueryFailedError } from 'typeorm';
import { afterAll, inject } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createContainer, type Container, type ContainerOptions } from '../../src/container.js';
import { createLogger, type Logger } from '../../src/infra/logger.js';
import { guardNestedPoolAcquisition } from './transaction-guard.js';

export interface TestApp {
  app: App;
  container: Container;
  close(): Promise<void>;
}

let database: Promise<string> | undefined;
let databaseName: string | undefined;
/** Databases made by separateDatabaseUrl, dropped with the file's own. */
const separateDatabases: string[] = [];
let redisFlushed = false;

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function cloneTemplate(): Promise<string> {
  const name = `parley_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDatabase')}`);
  } finally {
    await admin.end();
  }
  return name;
}

/** This test file's own database, cloned from the migrated template on first use. */
export function testDatabaseUrl(): Promise<string> {
  database ??= (async () => {
    databaseName = await cloneTemplate();
    return withDatabase(inject('adminDatabaseUrl'), databaseName);
  })();
  return database;
}

/**
 * Another database for one app of the file: apps on one database share one job queue, so an
 * app whose jobs (its mailer, its clock) no other app may run gets its own.
 */
export async function separateDatabaseUrl(): Promise<string> {
  const name = await cloneTemplate();
  separateDatabases.push(name);
  return withDatabase(inject('adminDatabaseUrl'), name);
}

afterAll(async () => {
  const names = [...(databaseName ? [databaseName] : []), ...separateDatabases.splice(0)];
  if (!names.length) return;
  const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await admin.connect();
  for (const name of names) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

/**
 * Real Redis when TEST_REDIS_URL is set: each worker gets its own db index, emptied when a
 * file first uses it. Otherwise undefined, i.e. the in-process emulation.
 */
export async function testRedisUrl(): Promise<string | undefined> {
  const base = inject('redisUrl');
  if (!base) return undefined;
  const url = new URL(base);
  // TEST_REDIS_DB_BASE lets two suites share one Redis (two checkouts) without flushing each other.
  url.pathname = `/${(Number(process.env.TEST_REDIS_DB_BASE ?? 0) + Number(process.env.VITEST_POOL_ID ?? 1)) % 16}`;
  if (!redisFlushed) {
    const client = new Redis(url.toString());
    await client.flushdb();
    await client.quit();
    redisFlushed = true;
  }
  return url.toString();
}

/** Settings every test app shares; a test overrides what it is about. */
export async function testEnv(overrides: Record<string, string | undefined> = {}): Promise<Record<string, string | undefined>> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: await testDatabaseUrl(),
    REDIS_URL: await testRedisUrl(),
    DATABASE_MIGRATE_ON_START: 'false',
    // the test PostgreSQL is shared: two connections for queries (and one per job kind for LISTEN)
    JOBS_DATABASE_POOL_SIZE: '2',
    JWT_KEYS_DIR: inject('keysDir'),
    // cheap hashes and loose limits, except where a test is about them
    BCRYPT_COST: '4',
    AUTH_LOGIN_LIMIT: '1000/15m',
    AUTH_REGISTER_LIMIT: '1000/1h',
    AUTH_FORGOT_PASSWORD_LIMIT: '1000/1h',
    AUTH_GITHUB_LIMIT: '1000/15m',
    // each test app is its own Socket.io cluster unless a test joins two on purpose
    REALTIME_CHANNEL_PREFIX: `parley-test-${randomBytes(4).toString('hex')}`,
    ...overrides,
  };
}

export interface BuildTestAppOptions extends Partial<Omit<ContainerOptions, 'cwd'>> {
  env?: Record<string, string | undefined>;
  /** Adds test-only routes before the app is sealed. */
  extend?: (app: App) => unknown;
}

export async function buildTestApp(options: BuildTestAppOptions = {}): Promise<TestApp> {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-app-'));
  const config = loadConfig({ env: await testEnv(options.env), cwd });
  const container = await createContainer(config, { cwd, ...options });
  const guard = guardNestedPoolAcquisition(container.db);
  const app = await buildApp(container);
  await options.extend?.(app);
  await app.ready();
  return {
    app,
    container,
    close: async () => {
      await app.close();
      await container.close();
      const [violation] = guard.violations;
      if (violation) throw violation;
    },
  };
}

/**
 * Tables no entity describes, which truncateAll empties with the entities' tables: activity_logs is
 * partitioned, which TypeORM cannot map (see src/database-schema.ts).
 */
const TABLES_WITHOUT_ENTITY = ['activity_logs'];

/** Empties every table (between tests that must not see each other's rows): each entity's, and TABLES_WITHOUT_ENTITY. */
export async function truncateAll(t: TestApp): Promise<void> {
  const db = t.container.db;
  const tables = [...db.entityMetadatas.filter((entity) => entity.tableType !== 'view').map((entity) => entity.tableName), ...TABLES_WITHOUT_ENTITY];
  // a table that is neither would keep its rows from one test to the next: say so instead
  const missed: Array<{ name: string }> = await db.query(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> ALL($1)`,
    [[...tables, db.options.migrationsTableName ?? 'migrations']],
  );
  if (missed.length > 0) {
    throw new Error(`truncateAll knows no entity for ${missed.map((table) => table.name).join(', ')}: add it to TABLES_WITHOUT_ENTITY in tests/helpers/app.ts`);
  }
  // Background work of the previous test (a notice its events queued) finishes first: it would
  // write into the emptied tables, or take their locks in another order than TRUNCATE (a deadlock).
  await jobsSettled(t);
  for (let attempt = 1; ; attempt += 1) {
    try {
      await db.query(`TRUNCATE ${tables.map((table) => db.driver.escape(table)).join(', ')} CASCADE`);
      break;
    } catch (error) {
      // a job started meanwhile can still meet TRUNCATE's locks: PostgreSQL cancels one side, this one tries again
      const deadlock = error instanceof QueryFailedError && (error.driverError as { code?: string }).code === '40P01';
      if (!deadlock || attempt === 3) throw error;
    }
  }
  await t.container.redis.client.flushdb();
}

/**
 * Until no job is waiting or running (delayed ones, such as the next tick of a schedule, may stay), at most 10 s.
 * An app with WORKERS=off runs no job, so its waiting ones stay waiting: only a running one (in
 * another process) is waited for.
 */
async function jobsSettled(t: TestApp): Promise<void> {
  const deadline = Date.now() + 10_000;
  const runsJobs = t.container.config.WORKERS;
  let quietInARow = 0;
  while (quietInARow < 2 && Date.now() < deadline) {
    const busy = (await t.container.jobs.queue.stats()).some(({ counts }) => (runsJobs ? counts.waiting : 0) + counts.active > 0);
    quietInARow = busy ? 0 : quietInARow + 1;
    if (quietInARow < 2) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A logger whose lines the test can read back as parsed JSON. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}
