import { loadConfig } from './config/load.js';
import { createContainer } from './container.js';
import { buildApp, type App } from './app.js';
import { runEntryPoint } from './entry-point.js';
import { shutdown } from './lifecycle.js';

runEntryPoint('parley', async () => {
  const config = loadConfig({ env: process.env, cwd: process.cwd() });
  const container = await createContainer(config, { cwd: process.cwd() });
  let app: App;
  try {
    app = await buildApp(container);
  } catch (error) {
    await container.close();
    throw error;
  }
  return {
    logger: container.logger,
    start: async () => {
      await app.listen({ host: config.HOST, port: config.PORT });
      container.logger.info(
        {
          url: `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${config.PORT}`,
          docs: '/docs',
          env: config.NODE_ENV,
          database: container.embedded.database ? 'embedded PostgreSQL' : 'DATABASE_URL',
          redis: container.embedded.redis ? 'embedded emulation (single instance)' : config.REDIS_SOCKET_PATH ? 'REDIS_SOCKET_PATH' : 'REDIS_URL',
          kid: container.keys.kid,
        },
        'Parley is listening',
      );
    },
    drain: () => shutdown(app, container, config.SHUTDOWN_TIMEOUT),
    close: () => container.close(),
  };
});
