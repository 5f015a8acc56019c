/**
 * Entry point of a worker process (`npm run worker`): runs the background jobs, serves no HTTP.
 * Pair it with API processes started with WORKERS=off.
 */
import { loadConfig, ConfigError } from './config/load.js';
import { createContainer, type Container } from './container.js';
import { stopWorker } from './lifecycle.js';
import { MissingKeysError } from './infra/keys.js';
import { EmbeddedPostgresUnusableError } from './infra/embedded-postgres.js';

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

async function main(): Promise<void> {
  // This process exists to run jobs, whatever WORKERS says for the API processes.
  const config = loadConfig({ env: { ...process.env, WORKERS: 'on' }, cwd: process.cwd() });
  // An embedded PostgreSQL belongs to the one process that started it under DATA_DIR.
  if (!config.DATABASE_URL) throw new ConfigError('Invalid configuration: a worker process needs DATABASE_URL (the database the API processes use)');

  // As in start.ts: a signal during start-up stops the worker once it is built; repeated
  // signals do not cut the drain short (it is bounded by SHUTDOWN_TIMEOUT).
  const state: { started?: Container; stopRequested?: NodeJS.Signals; stopping: boolean } = { stopping: false };
  const stop = async (signal: NodeJS.Signals) => {
    if (state.stopping || !state.started) return;
    state.stopping = true;
    const container = state.started;
    container.logger.info({ signal }, 'shutting down');
    const clean = await stopWorker(container, config.SHUTDOWN_TIMEOUT);
    container.logger.info({ clean }, 'stopped');
    container.logger.flush();
    process.exit(clean ? 0 : 1);
  };
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      state.stopRequested ??= signal;
      void stop(signal);
    });
  }

  const container = await createContainer(config, { cwd: process.cwd() });
  state.started = container;
  if (state.stopRequested) return await stop(state.stopRequested);
  container.logger.info(
    {
      env: config.NODE_ENV,
      jobs: config.JOBS_BACKEND,
      database: container.embedded.database ? 'embedded PostgreSQL' : 'DATABASE_URL',
      redis: container.embedded.redis ? 'embedded emulation (single instance)' : 'REDIS_URL',
    },
    'Parley worker is running',
  );
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof MissingKeysError || error instanceof EmbeddedPostgresUnusableError) {
    process.stderr.write(`parley worker: ${error.message}\n`);
  } else {
    process.stderr.write(`parley worker: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
