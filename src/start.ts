import { loadConfig, ConfigError } from './config/load.js';
import { createContainer } from './container.js';
import { buildApp } from './app.js';
import { shutdown } from './lifecycle.js';
import { MissingKeysError } from './infra/keys.js';

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env, cwd: process.cwd() });
  const container = await createContainer(config, { cwd: process.cwd() });
  const { logger } = container;
  const app = await buildApp(container);

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const clean = await shutdown(app, container, config.SHUTDOWN_TIMEOUT);
    logger.info({ clean }, 'stopped');
    logger.flush();
    process.exit(clean ? 0 : 1);
  };
  process.once('SIGTERM', (signal) => void stop(signal));
  process.once('SIGINT', (signal) => void stop(signal));

  await app.listen({ host: config.HOST, port: config.PORT });
  logger.info(
    {
      url: `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}`,
      docs: '/docs',
      env: config.NODE_ENV,
      database: container.embedded.database ? 'embedded PostgreSQL' : 'DATABASE_URL',
      redis: container.embedded.redis ? 'embedded emulation (single instance)' : 'REDIS_URL',
      kid: container.keys.kid,
    },
    'Parley is listening',
  );
}

main().catch((error: unknown) => {
  // Configuration and key problems are the operator's to fix: one clear line, no stack.
  if (error instanceof ConfigError || error instanceof MissingKeysError) {
    process.stderr.write(`parley: ${error.message}\n`);
  } else {
    process.stderr.write(`parley: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
