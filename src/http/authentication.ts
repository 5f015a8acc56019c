import type { Logger } from '../infra/logger.js';
import { registerAuthGuard, type AccessTokenVerifier, type CookieSessionVerifier, type PrincipalVerifier, type RoleLookup } from '../shared/auth.js';
import type { App } from './types.js';

/** Records that a signed-in user was active; throttled by the implementation. */
export interface ActivityRecorder {
  touchLastActive(userId: string): Promise<void>;
}

/**
 * Bearer tokens and the browser session cookie on the routes that declare `config: { auth }` (the guard), and the caller's
 * last activity after each of their requests, off the response path.
 */
export function registerAuthentication(
  app: App,
  {
    verifier,
    cookies,
    roles,
    activity,
    logger,
  }: { verifier: AccessTokenVerifier & PrincipalVerifier; cookies: CookieSessionVerifier; roles: RoleLookup; activity: ActivityRecorder; logger: Logger },
): void {
  registerAuthGuard(app, verifier, roles, cookies);
  app.addHook('onResponse', (request, _reply, done) => {
    if (request.principal) {
      const userId = request.principal.userId;
      activity.touchLastActive(userId).catch((error: unknown) => logger.warn({ err: error, userId }, 'could not record activity'));
    }
    done();
  });
}
