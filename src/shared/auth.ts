import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ForbiddenError } from './errors.js';

/** Every role an account can have; the database check, the guard and the API schemas list these. */
export const ROLES = ['student', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return (ROLES as readonly unknown[]).includes(value);
}

/** Who is calling, whatever proved it: the account. */
export interface Principal {
  userId: string;
  email: string;
  role: Role;
}

/** The caller of a Parley access token: attached to the request by the auth hook. */
export interface AuthContext extends Principal {
  /** The device session (refresh-token family) the access token belongs to. */
  sessionId: string;
}

/** Turns an access token into its caller, or throws a 401 AppError. */
export interface AccessTokenVerifier {
  verify(token: string): Promise<AuthContext>;
}

/**
 * Turns the bearer token of a route that also takes a trusted external issuer's token
 * (`externalTokens`) into its caller: a Parley access token gives its AuthContext, an external
 * token the principal of its linked account, which has no Parley device session.
 */
export interface PrincipalVerifier {
  verifyPrincipal(token: string): Promise<Principal | AuthContext>;
}

/** What a cookie-authenticated write must carry besides the cookie. */
export interface CsrfEvidence {
  /** The X-CSRF-Token header. */
  csrfToken: string | undefined;
  origin: string | undefined;
  referer: string | undefined;
}

/**
 * The browser session cookie (set by GitHub sign-in): its caller, a device session like a
 * bearer token's, and the CSRF defence of the writes it authenticates.
 */
export interface CookieSessionVerifier {
  /** `session_token`, or `__Host-session_token` where cookies are Secure (production). */
  readonly cookieName: string;
  /** Tells the browser to forget the session cookie. */
  clearCookie(reply: FastifyReply): void;
  verifyCookie(value: string): Promise<AuthContext>;
  /** 403 csrf_token_invalid or origin_not_allowed unless the write carries this session's CSRF token from an allowed origin. */
  checkCsrf(sessionId: string, evidence: CsrfEvidence): void;
}

/** Reads the caller's current role from the database, so a demoted admin loses access at once. */
export interface RoleLookup {
  currentRole(userId: string): Promise<Role | null>;
}

/** `user`: any signed-in caller; `admin`: admins only; `optional`: attach the caller if a token is sent. */
export type AuthRequirement = 'user' | 'admin' | 'optional';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthRequirement;
    /** The bearer token may also be a trusted issuer's token, when ACCEPT_EXTERNAL_TOKENS is on (the AI chat routes of document 001). */
    externalTokens?: boolean;
  }
  interface FastifyRequest {
    /** The caller of a Parley access token (a device session); null for an external token. */
    auth: AuthContext | null;
    /** The caller, whichever token proved it. */
    principal: Principal | null;
    /** What proved the caller: a bearer token, or the browser session cookie. */
    authenticatedBy: 'bearer' | 'cookie' | null;
  }
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !token) throw new AppError('invalid_token', 'Authorization must be "Bearer <access token>"');
  return token;
}

/** Methods that change nothing: a cookie-authenticated request with one needs no CSRF token. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The one hook that checks callers. A route opts in with `config: { auth }`; the caller is then
 * in `request.auth` (and `request.principal`). A bearer token wins when both it and the session
 * cookie are sent (the cookie is then ignored, CSRF included); without one, the session cookie
 * is the caller, and a write (POST, PUT, PATCH, DELETE) needs its CSRF token and an allowed
 * Origin. A route that adds `externalTokens: true` also takes a trusted issuer's token: the
 * caller is then only in `request.principal`. Admin routes re-read the role from the database.
 */
export function registerAuthGuard(
  app: FastifyInstance,
  verifier: AccessTokenVerifier & PrincipalVerifier,
  roles: RoleLookup,
  cookies: CookieSessionVerifier | null = null,
): void {
  app.decorateRequest('auth', null);
  app.decorateRequest('principal', null);
  app.decorateRequest('authenticatedBy', null);
  const fromCookie = async (request: FastifyRequest, reply: FastifyReply, cookies: CookieSessionVerifier, value: string): Promise<AuthContext> => {
    let context: AuthContext;
    try {
      context = await cookies.verifyCookie(value);
    } catch (error) {
      // a cookie that can no longer sign in is forgotten by the browser
      if (error instanceof AppError && error.statusCode === 401) cookies.clearCookie(reply);
      throw error;
    }
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers['x-csrf-token'];
      cookies.checkCsrf(context.sessionId, {
        csrfToken: Array.isArray(header) ? header[0] : header,
        origin: request.headers.origin,
        referer: request.headers.referer,
      });
    }
    return context;
  };
  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    const { auth: requirement, externalTokens } = request.routeOptions.config;
    const token = bearerToken(request);
    const cookie = token || !cookies ? undefined : request.cookies[cookies.cookieName];
    if (token && externalTokens) {
      const caller = await verifier.verifyPrincipal(token);
      request.principal = caller;
      request.auth = 'sessionId' in caller ? caller : null;
      request.authenticatedBy = 'bearer';
    } else if (token) {
      request.auth = await verifier.verify(token);
      request.principal = request.auth;
      request.authenticatedBy = 'bearer';
    } else if (cookie && cookies) {
      request.auth = await fromCookie(request, reply, cookies, cookie);
      request.principal = request.auth;
      request.authenticatedBy = 'cookie';
    } else {
      if (requirement === 'optional') return;
      throw new AppError('unauthorized', 'Sign in: send "Authorization: Bearer <access token>" or the session cookie');
    }
    if (requirement === 'admin' && (await roles.currentRole(request.principal.userId)) !== 'admin') {
      throw new ForbiddenError('Admins only');
    }
  };
  // Attached only to routes that declare `auth`, as a preValidation hook: after the route's
  // rate limit (an onRequest hook), before input validation. Routes must be added after this.
  app.addHook('onRoute', (route) => {
    if (!route.config?.auth) return;
    const existing = route.preValidation ? [route.preValidation].flat() : [];
    route.preValidation = [guard, ...existing];
  });
}

/** The signed-in caller of a route declared with `auth: 'user'` or `'admin'`: a Parley device session. */
export function caller(request: FastifyRequest): AuthContext {
  if (!request.auth) throw new AppError('unauthorized', 'Sign in first');
  return request.auth;
}

/** The account calling a route that also takes external tokens (`externalTokens`), whichever token proved it. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthorized', 'Sign in first');
  return request.principal;
}
