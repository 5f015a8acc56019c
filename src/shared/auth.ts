import type { FastifyInstance, FastifyRequest } from 'fastify';
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
  }
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !token) throw new AppError('invalid_token', 'Authorization must be "Bearer <access token>"');
  return token;
}

/**
 * The one hook that checks access tokens. A route opts in with `config: { auth }`; the
 * caller is then in `request.auth` (and `request.principal`). A route that adds
 * `externalTokens: true` also takes a trusted issuer's token: the caller is then only in
 * `request.principal`. Admin routes re-read the role from the database.
 */
export function registerAuthGuard(app: FastifyInstance, verifier: AccessTokenVerifier & PrincipalVerifier, roles: RoleLookup): void {
  app.decorateRequest('auth', null);
  app.decorateRequest('principal', null);
  const guard = async (request: FastifyRequest) => {
    const { auth: requirement, externalTokens } = request.routeOptions.config;
    const token = bearerToken(request);
    if (!token) {
      if (requirement === 'optional') return;
      throw new AppError('unauthorized', 'Sign in: send "Authorization: Bearer <access token>"');
    }
    if (externalTokens) {
      const caller = await verifier.verifyPrincipal(token);
      request.principal = caller;
      request.auth = 'sessionId' in caller ? caller : null;
    } else {
      request.auth = await verifier.verify(token);
      request.principal = request.auth;
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
