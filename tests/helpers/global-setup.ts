import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { migrations, entities } from '../../src/database-schema.js';
import { createDataSource } from '../../src/infra/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/infra/embedded-postgres.js';
import { generateKeyFiles } from '../../src/infra/keys.js';
import { createLogger } from '../../src/infra/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Maintenance connection on the test server, for CREATE/DROP DATABASE. */
    adminDatabaseUrl: string;
    /** A migrated database every test file clones. */
    templateDatabase: string;
    /** Real Redis for tests, or '' to use the in-process emulation. */
    redisUrl: string;
    /** A signing key pair shared by every test app. */
    keysDir: string;
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Once per run: a PostgreSQL (TEST_DATABASE_URL, or an embedded one in a temp folder),
 * a template database with every migration applied, one key pair, and the compiled server.
 */
export default async function setup(project: TestProject) {
  // The tests that start the server as its own process run dist/; built once here, because two
  // workers building it at once could let one child load a file the other is rewriting.
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: path.resolve(import.meta.dirname, '../..'), stdio: 'inherit' });
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-test-'));
  const logger = createLogger({ level: 'warn' });
  let embedded: EmbeddedDatabase | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: path.join(workDir, 'postgres'), database: 'test', logger });
    adminUrl = embedded.url;
  }

  const templateDatabase = `parley_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${templateDatabase}`);
  await admin.query(`CREATE DATABASE ${templateDatabase}`);
  const dataSource = createDataSource({ url: withDatabase(adminUrl, templateDatabase), poolSize: 1, entities, migrations });
  await dataSource.initialize();
  await dataSource.runMigrations();
  await dataSource.destroy();

  const keysDir = path.join(workDir, 'keys');
  await generateKeyFiles(keysDir, { markAsDevelopment: false });

  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', templateDatabase);
  project.provide('redisUrl', process.env.TEST_REDIS_URL ?? '');
  project.provide('keysDir', keysDir);

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await admin.end();
    await embedded?.stop();
    await rm(workDir, { recursive: true, force: true });
  };
}
