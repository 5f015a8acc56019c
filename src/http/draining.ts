import { ShuttingDownError } from '../shared/errors.js';
import type { App } from './types.js';

/**
 * Draining: once the listener is closed (the first step of a shutdown) or close() has begun,
 * a new request on a connection opened before runs no handler; requests already in their
 * handlers finish. Registered after CORS, so a browser can read the 503.
 */
export function registerDraining(app: App): void {
  let listened = false;
  let closing = false;
  app.server.once('listening', () => (listened = true));
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, _reply, done) => done(closing || (listened && !app.server.listening) ? new ShuttingDownError() : undefined));
}
