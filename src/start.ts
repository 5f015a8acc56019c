import { loadConfig, ConfigError } from './config/load.js';
import { createContainer, type Container } from './container.js';
import { buildApp, type App } from './app.js';
import { shutdown } from './lifecycle.js';
import { MissingKeysError } from './infra/keys.js';
import { EmbeddedPostgresUnusableError } from './infra/embedded-postgres.js';

// SIGHUP too: a closed terminal stops the server cleanly (and the embedded PostgreSQL with it).
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env, cwd: process.cwd() });

  // The signals are ours from the first moment: a signal during start-up stops the server as
  // soon as it is built, one while serving drains it. Repeated signals (npm forwards the
  // terminal's SIGINT that the process already got) do not cut the drain short; it is bounded
  // by SHUTDOWN_TIMEOUT.
  let started: { app: App; container: Container } | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping || !started) return;
    stopping = true;
    const { app, container } = started;
    container.logger.info({ signal }, 'shutting down');
    const clean = await shutdown(app, container, config.SHUTDOWN_TIMEOUT);
    container.logger.info({ clean }, 'stopped');
    container.logger.flush();
    process.exit(clean ? 0 : 1);
  };
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      stopRequested ??= signal;
      void stop(signal);
    });
  }

  const container = await createContainer(config, { cwd: process.cwd() });
  const { logger } = container;
  let app: App;
  try {
    app = await buildApp(container);
    started = { app, container };
    if (stopRequested) return await stop(stopRequested);
    await app.listen({ host: config.HOST, port: config.PORT });
  } catch (error) {
    await container.close();
    throw error;
  }
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
  // Configuration, key and embedded-database problems are the operator's to fix: one clear line, no stack.
  if (error instanceof ConfigError || error instanceof MissingKeysError || error instanceof EmbeddedPostgresUnusableError) {
    process.stderr.write(`parley: ${error.message}\n`);
  } else {
    process.stderr.write(`parley: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
