import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';
import type { App } from './types.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: no access-log line for this route (probes). */
    accessLog?: boolean;
  }
}

/** One access-log line per request (instead of Fastify's two) and the request-duration histogram. */
export function registerAccessLog(app: App, { logger, metrics }: { logger: Logger; metrics: Metrics }): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeHttpRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    if (request.routeOptions.config.accessLog !== false) {
      // The root logger with the id as a field: the same line request.log would write,
      // without creating a child logger for every request.
      logger.info(
        {
          requestId: request.id,
          method: request.method,
          url: request.url,
          statusCode: reply.statusCode,
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
          ip: request.ip,
        },
        'request completed',
      );
    }
    done();
  });
}
