import type { Logger } from '../infra/logger.js';
import { registerAuthGuard, type AccessTokenVerifier, type CookieSessionVerifier, type PrincipalVerifier, type RoleLookup } from '../shared/auth.js';
import type { App } from './types.js';

/** Records that a signed-in user was active; throttled by the implementation. */
export interface ActivityRecorder {
  touchLastActive(userId: string): Promise<void>;
}

/** Records that a device session was used (its last_used_at); throttled by the implementation. */
export interface SessionActivityRecorder {
  recordSessionActivity(sessionId: string): Promise<void>;
}

/**
 * Bearer tokens and the browser session cookie on the routes that declare `config: { auth }` (the guard), and the caller's
 * last activity (and a bearer token's device session's) after each of their requests, off the response path.
 */
export function registerAuthentication(
  app: App,
  {
    verifier,
    cookies,
    roles,
    activity,
    sessions,
    logger,
  }: {
    verifier: AccessTokenVerifier & PrincipalVerifier;
    cookies: CookieSessionVerifier;
    roles: RoleLookup;
    activity: ActivityRecorder;
    sessions: SessionActivityRecorder;
    logger: Logger;
  },
): void {
  registerAuthGuard(app, verifier, roles, cookies);
  app.addHook('onResponse', (request, _reply, done) => {
    if (request.principal) {
      const userId = request.principal.userId;
      activity.touchLastActive(userId).catch((error: unknown) => logger.warn({ err: error, userId }, 'could not record activity'));
    }
    // a browser session records its own use as its expiry slides (CookieSessions)
    if (request.auth && request.authenticatedBy === 'bearer') {
      const sessionId = request.auth.sessionId;
      sessions.recordSessionActivity(sessionId).catch((error: unknown) => logger.warn({ err: error, sessionId }, 'could not record session activity'));
    }
    done();
  });
}
