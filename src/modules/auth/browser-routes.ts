import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import { errorResponses } from '../../shared/responses.js';
import type { CookieSessions } from './cookie-sessions.js';
import type { GitHubOAuth } from './github.js';
import { browserUserSchema, githubCallbackQuerySchema, githubLinkBodySchema, githubLoginQuerySchema, githubLoginSchema, redirectSchema } from './schemas.js';
import type { AuthService, RequestMeta } from './service.js';

export interface BrowserRoutesOptions {
  auth: AuthService;
  cookies: CookieSessions;
  /** Null when GitHub sign-in is not configured: its routes then answer 404 identity_provider_not_configured. */
  github: GitHubOAuth | null;
  /** Per client IP, for each of: starting a GitHub sign-in (or link), and its callback. */
  limit: { max: number; windowMs: number };
}

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

/** Signing a browser in with GitHub (document 000), linking GitHub to an account: the session cookie, and who it is. */
export const browserRoutes: FastifyPluginAsyncZod<BrowserRoutesOptions> = async (app, { auth, cookies, github, limit }) => {
  const tags = ['auth'];
  // each sign-in writes to Redis and may make GitHub calls: a per-IP limit that fails closed (503) when Redis cannot count
  const rateLimit = { max: limit.max, timeWindow: limit.windowMs, skipOnError: false };
  // @fastify/oauth2 on this plugin's scope: the routes below use it through GitHubOAuth
  if (github) await github.register(app);

  app.get(
    '/auth/login',
    {
      config: { rateLimit },
      schema: {
        tags,
        summary: 'Start signing in with GitHub: the URL of its sign-in page (or a 302 there with ?redirect=true)',
        description:
          'Sets two short-lived signed cookies, the OAuth state (binding it to this browser) and the PKCE verifier; the callback refuses a state without them. ' +
          '404 identity_provider_not_configured without GITHUB_CLIENT_ID; 400 return_to_not_allowed for a returnTo off the FRONTEND_URL origins.',
        querystring: githubLoginQuerySchema,
        response: { 200: githubLoginSchema, 302: redirectSchema, ...errorResponses(400, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const started = await auth.requireGitHub().start(request, reply, { returnTo: request.query.returnTo });
      if (request.query.redirect) return reply.redirect(started.url, 302);
      return reply.status(200).send(started);
    },
  );

  app.post(
    '/auth/github/link',
    {
      config: { auth: 'user', rateLimit },
      schema: {
        tags,
        summary: 'Start linking a GitHub account to my account: the URL of its sign-in page',
        description:
          'The way out of 409 account_link_required: once linked, signing in with that GitHub account signs in to mine. ' +
          'Confirm with the current password, or do it within 10 minutes of signing in (403 recent_login_required). ' +
          'A POST, so a cookie-signed-in browser sends its X-CSRF-Token from an allowed origin: another site cannot start a link. ' +
          'Sets the same two cookies as GET /auth/login; the browser then goes to the URL, and GET /auth/callback links the GitHub account ' +
          'to the account that started (never to the one the callback might be signed in as), and sends it to returnTo; ' +
          '409 identity_already_linked when that GitHub account is linked to another account.',
        body: githubLinkBodySchema,
        response: { 200: githubLoginSchema, ...errorResponses(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const signedIn = caller(request);
      const oauth = auth.requireGitHub();
      await auth.confirmGitHubLink(signedIn, request.body?.password);
      return reply.status(200).send(await oauth.start(request, reply, { returnTo: request.body?.returnTo, linkTo: signedIn }));
    },
  );

  app.get(
    '/auth/callback',
    {
      config: { rateLimit },
      schema: {
        tags,
        summary: "GitHub's redirect back: signs the browser in (the session cookie), or links GitHub, and sends it to the front end",
        description:
          'The state must be the one this browser started (its signed cookie), once, within 10 minutes: else 400 oauth_state_invalid. ' +
          'The code is exchanged with the PKCE verifier of its cookie (400 oauth_code_invalid when GitHub refuses it; 503 identity_provider_unavailable when GitHub cannot be reached). ' +
          'The account is the one linked to the GitHub user id; on first sign-in a new account with the verified primary e-mail ' +
          '(403 email_not_verified without one; 409 account_link_required when a password account has that e-mail: it is never taken over, that account links GitHub with POST /auth/github/link). ' +
          'A link started by POST /auth/github/link links instead (409 identity_already_linked) and opens no session. ' +
          'After a valid state, a browser (Accept: text/html) is sent back to the front end with ?error=<code> instead of an error body.',
        querystring: githubCallbackQuerySchema,
        response: { 302: redirectSchema, ...errorResponses(400, 401, 403, 404, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const oauth = auth.requireGitHub();
      try {
        const { accessToken, pending } = await oauth.callback(request, reply, request.query);
        if (pending.linkTo) {
          await auth.linkGitHub(pending.linkTo, accessToken, meta(request));
        } else {
          const signedIn = await auth.signInWithGitHub(accessToken, meta(request));
          cookies.setCookie(reply, signedIn.token, signedIn.endsAt);
        }
        return reply.redirect(pending.returnTo, 302);
      } catch (failure) {
        const pending = oauth.pendingOf(request);
        if (pending && failure instanceof AppError && isNavigation(request)) return reply.redirect(withError(pending.returnTo, failure.code), 302);
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
