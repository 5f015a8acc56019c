import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { appendSetCookie, readCookie } from '../../shared/cookies.js';
import { AppError } from '../../shared/errors.js';
import { errorResponses } from '../../shared/responses.js';
import type { CookieSessions } from './cookie-sessions.js';
import { browserUserSchema, githubCallbackQuerySchema, githubLoginQuerySchema, githubLoginSchema, redirectSchema } from './schemas.js';
import type { AuthService, RequestMeta } from './service.js';

function meta(request: FastifyRequest): RequestMeta {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null };
}

/** A browser navigating (rather than a client calling the API): it is sent back to the front end with the error. */
function isNavigation(request: FastifyRequest): boolean {
  return request.headers.accept?.includes('text/html') ?? false;
}

function withError(returnTo: string, code: string): string {
  const url = new URL(returnTo);
  url.searchParams.set('error', code);
  return url.toString();
}

/** Signing a browser in with GitHub (document 000): the session cookie, and who it is. */
export const browserRoutes: FastifyPluginAsyncZod<{ auth: AuthService; cookies: CookieSessions }> = async (app, { auth, cookies }) => {
  const tags = ['auth'];

  app.get(
    '/auth/login',
    {
      schema: {
        tags,
        summary: 'Start signing in with GitHub: the URL of its sign-in page (or a 302 there with ?redirect=true)',
        description:
          'Sets a short-lived signed cookie that binds the OAuth state to this browser; the callback refuses a state without it. ' +
          '404 identity_provider_not_configured without GITHUB_CLIENT_ID; 400 return_to_not_allowed for a returnTo off the FRONTEND_URL origins.',
        querystring: githubLoginQuerySchema,
        response: { 200: githubLoginSchema, 302: redirectSchema, ...errorResponses(400, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const started = await auth.requireGitHub().start(request.query.returnTo);
      appendSetCookie(reply, started.cookie);
      if (request.query.redirect) return reply.redirect(started.url, 302);
      return reply.status(200).send({ url: started.url, state: started.state });
    },
  );

  app.get(
    '/auth/callback',
    {
      schema: {
        tags,
        summary: "GitHub's redirect back: signs the browser in (the session cookie) and sends it to the front end",
        description:
          'The state must be the one this browser started (its cookie), once, within 10 minutes: else 400 oauth_state_invalid. ' +
          'The account is the one linked to the GitHub user id; on first sign-in a new account with the verified primary e-mail ' +
          '(403 email_not_verified without one; 409 account_link_required when a password account has that e-mail: it is never taken over). ' +
          'After a valid state, a browser (Accept: text/html) is sent back to the front end with ?error=<code> instead of an error body.',
        querystring: githubCallbackQuerySchema,
        response: { 302: redirectSchema, ...errorResponses(400, 403, 404, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const oauth = auth.requireGitHub();
      const { code, state, error } = request.query;
      const pending = await oauth.takeState(state, readCookie(request.headers.cookie, oauth.stateCookieName));
      appendSetCookie(reply, oauth.clearStateCookie());
      try {
        if (error) throw new AppError('oauth_denied', 'The sign-in was declined on GitHub', { reason: error });
        if (!code) throw new AppError('oauth_code_invalid', 'The callback carries no code: sign in again');
        const signedIn = await auth.signInWithGitHub(code, pending.codeVerifier, meta(request));
        appendSetCookie(reply, signedIn.setCookie);
        return reply.redirect(pending.returnTo, 302);
      } catch (failure) {
        if (failure instanceof AppError && isNavigation(request)) return reply.redirect(withError(pending.returnTo, failure.code), 302);
        throw failure;
      }
    },
  );

  app.get(
    '/auth/user',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'The signed-in account and its CSRF token (session cookie or bearer token)',
        description:
          'A browser signed in by the session cookie sends the csrfToken as X-CSRF-Token on every write, from a FRONTEND_URL origin; a bearer token needs none.',
        response: { 200: browserUserSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const signedIn = caller(request);
      return { user: await auth.account(signedIn.userId), csrfToken: cookies.csrfToken(signedIn.sessionId) };
    },
  );
};
