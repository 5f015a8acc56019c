/**
 * Entry point of a worker process (`npm run worker`): runs the background jobs, serves no HTTP.
 * Pair it with API processes started with WORKERS=off.
 */
import { ConfigError, loadConfig } from './config/load.js';
import { createContainer } from './container.js';
import { runEntryPoint } from './entry-point.js';
import { stopWorker } from './lifecycle.js';

runEntryPoint('parley worker', async () => {
  // This process exists to run jobs, whatever WORKERS says for the API processes.
  const config = loadConfig({ env: { ...process.env, WORKERS: 'on' }, cwd: process.cwd() });
  // An embedded PostgreSQL belongs to the one process that started it under DATA_DIR.
  if (!config.DATABASE_URL) throw new ConfigError('Invalid configuration: a worker process needs DATABASE_URL (the database the API processes use)');
  const container = await createContainer(config, { cwd: process.cwd() });
  return {
    logger: container.logger,
    // The container started the workers already.
    start: async () =>
      container.logger.info(
        {
          env: config.NODE_ENV,
          jobs: config.JOBS_BACKEND,
          database: 'DATABASE_URL',
          redis: container.embedded.redis ? 'embedded emulation (single instance)' : config.REDIS_SOCKET_PATH ? 'REDIS_SOCKET_PATH' : 'REDIS_URL',
        },
        'Parley worker is running',
      ),
    drain: () => stopWorker(container, config.SHUTDOWN_TIMEOUT),
    close: () => container.close(),
  };
});
