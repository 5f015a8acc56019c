import type { Config } from '../config/load.js';
import { AppError } from '../shared/errors.js';
import type { App } from './types.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** true: answered over plain HTTP even with FORCE_HTTPS (probes: load balancers check over HTTP). */
    plainHttp?: boolean;
  }
}

/**
 * FORCE_HTTPS: a request the proxy received over plain HTTP (request.protocol reads the
 * trusted X-Forwarded-Proto) is sent to https. A GET or HEAD is redirected (301) to the same
 * path on APP_URL when APP_URL is https, else on the request's own host; any other method is
 * refused, since a redirect would make the client send its body (and credentials) in clear again.
 */
export function registerForceHttps(app: App, config: Config): void {
  if (!config.FORCE_HTTPS) return;
  const appUrl = new URL(config.APP_URL);
  const publicOrigin = appUrl.protocol === 'https:' ? appUrl.origin : undefined;
  app.addHook('onRequest', (request, reply, done) => {
    if (request.protocol === 'https' || request.routeOptions.config.plainHttp) return done();
    const origin = publicOrigin ?? (request.host ? `https://${request.host}` : undefined);
    if ((request.method === 'GET' || request.method === 'HEAD') && origin) {
      // a response sent from a callback hook ends the request there: done() is not called
      void reply.redirect(`${origin}${request.url}`, 301);
      return;
    }
    done(new AppError('https_required', 'This server answers over HTTPS only: send the request to its https:// address'));
  });
}
