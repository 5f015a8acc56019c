import type { Container } from './container.js';
import { registerAccessLog } from './http/access-log.js';
import { registerCookies } from './http/cookies.js';
import { registerAuthentication } from './http/authentication.js';
import { registerCors } from './http/cors.js';
import { registerDraining } from './http/draining.js';
import { registerForceHttps } from './http/https.js';
import { idempotency } from './http/idempotency/plugin.js';
import { registerOpenApi } from './http/openapi.js';
import { registerRateLimit } from './http/rate-limit.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { createServer } from './http/server.js';
import { registerSockets } from './http/sockets.js';
import type { App } from './http/types.js';
import { moduleTags } from './modules/index.js';
import { registerErrorHandling } from './shared/error-handler.js';
import { registerInputGuards } from './shared/input.js';

export type { App };

/** The HTTP server: the cross-cutting plugins of src/http, then every module's routes and socket handlers. */
export async function buildApp(container: Container): Promise<App> {
  const { config, logger, services } = container;
  const app = createServer(config, logger);
  registerErrorHandling(app);
  registerInputGuards(app);
  registerSecurityHeaders(app, config);
  registerForceHttps(app, config);
  registerAccessLog(app, { logger, metrics: container.metrics });
  await registerCors(app, config);
  await registerCookies(app, { secret: config.SESSION_SECRET });
  registerDraining(app);
  await registerRateLimit(app, { config, redis: container.redis, security: services.audit });
  await registerOpenApi(app, { config, tags: moduleTags });
  registerAuthentication(app, {
    verifier: services.bearer,
    cookies: services.auth.cookies,
    roles: services.accounts,
    activity: services.profiles,
    sessions: services.auth,
    logger,
  });
  // Routes opt in with config: { idempotent: true }; must come before the routes.
  await app.register(idempotency, { store: container.idempotency });

  const modules = Object.values(container.modules);
  for (const module of modules) if ('http' in module && module.http) await app.register(module.http);
  registerSockets(app, {
    config,
    logger,
    redis: container.redis,
    realtime: container.realtime,
    verifier: services.bearer,
    accounts: services.accounts,
    security: services.audit,
    handlers: modules.flatMap((module) => ('sockets' in module && module.sockets ? [module.sockets] : [])),
  });
  return app;
}
