import type { Config } from '../config/load.js';
import { computeSecurityHeaders } from '../shared/security-headers.js';
import type { App } from './types.js';

/**
 * Headers every response carries, in one synchronous hook: the request id, and helmet's
 * security headers computed once at start.
 */
export function registerSecurityHeaders(app: App, config: Config): void {
  const staticHeaders = config.SECURITY_HEADERS_ENABLED
    ? computeSecurityHeaders({
        strictTransportSecurity: { maxAge: config.HSTS_MAX_AGE, includeSubDomains: true },
        contentSecurityPolicy: {
          // Outside production the server is reached over plain http (LAN, tunnels): do not
          // ask browsers to rewrite its own URLs to https.
          directives: { upgradeInsecureRequests: config.NODE_ENV === 'production' ? [] : null },
        },
      })
    : {};
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(staticHeaders).header('x-request-id', request.id);
    done();
  });
}
