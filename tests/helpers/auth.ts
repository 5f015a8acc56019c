import { randomUUID } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { App } from '../../src/app.js';

let counter = 0;

export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${counter}-${randomUUID().slice(0, 8)}@parley.test`;
}

export const PASSWORD = 'correct horse battery';

export interface Pair {
  accessToken: string;
  refreshToken: string;
  user: { id: string; email: string; role: string };
}

export async function register(app: App, body: Record<string, unknown> = {}): Promise<Pair & { email: string }> {
  const email = (body.email as string | undefined) ?? uniqueEmail();
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email, password: PASSWORD, deviceId: 'phone-1', platform: 'ios', ...body },
  });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  return { ...res.json<Pair>(), email };
}

export async function login(app: App, email: string, body: Record<string, unknown> = {}, remoteAddress = '127.0.0.1'): Promise<Pair> {
  const res = await app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress,
    payload: { email, password: PASSWORD, deviceId: 'laptop-1', platform: 'web', ...body },
  });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json<Pair>();
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Who a request is made as: a signed-in account, or a bare access token. */
export type Caller = Pick<Pair, 'accessToken'> | string;

/** `app.inject` made as `caller`: the request carries its access token. Requests about bad headers write theirs out instead. */
export function injectAs(app: App, caller: Caller, options: InjectOptions): Promise<LightMyRequestResponse> {
  const token = typeof caller === 'string' ? caller : caller.accessToken;
  return app.inject({ ...options, headers: { ...options.headers, ...bearer(token) } });
}
