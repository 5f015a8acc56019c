import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, ForbiddenError } from './errors.js';

/** Every role an account can have; the database check, the guard and the API schemas list these. */
export const ROLES = ['student', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return (ROLES as readonly unknown[]).includes(value);
}

/** Who is calling: attached to the request by the auth hook. */
export interface AuthContext {
  userId: string;
  email: string;
  role: Role;
  /** The device session (refresh-token family) the access token belongs to. */
  sessionId: string;
}

/** Turns an access token into its caller, or throws a 401 AppError. */
export interface AccessTokenVerifier {
  verify(token: string): Promise<AuthContext>;
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
  }
  interface FastifyRequest {
    auth: AuthContext | null;
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
 * caller is then in `request.auth`. Admin routes re-read the role from the database.
 */
export function registerAuthGuard(app: FastifyInstance, verifier: AccessTokenVerifier, roles: RoleLookup): void {
  app.decorateRequest('auth', null);
  const guard = async (request: FastifyRequest) => {
    const requirement = request.routeOptions.config.auth;
    const token = bearerToken(request);
    if (!token) {
      if (requirement === 'optional') return;
      throw new AppError('unauthorized', 'Sign in: send "Authorization: Bearer <access token>"');
    }
    request.auth = await verifier.verify(token);
    if (requirement === 'admin' && (await roles.currentRole(request.auth.userId)) !== 'admin') {
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

/** The signed-in caller of a route declared with `auth: 'user'` or `'admin'`. */
export function caller(request: FastifyRequest): AuthContext {
  if (!request.auth) throw new AppError('unauthorized', 'Sign in first');
  return request.auth;
}
