import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import type { FakeGitHub, FakeGitHubUser } from './fake-github.js';

/** `name=value` of the Set-Cookie named `name` in a response, or undefined. */
export function setCookie(res: LightMyRequestResponse, name: string): string | undefined {
  const header = res.headers['set-cookie'];
  const list = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return list.find((cookie) => cookie.startsWith(`${name}=`));
}

/** The `name=value` part of a Set-Cookie, as a browser sends it back. */
export function cookiePair(cookie: string): string {
  return cookie.split(';')[0]!;
}

/** A Set-Cookie taken apart: its attributes sorted, so a test compares them whatever order they were written in. */
export function parseSetCookie(cookie: string): { name: string; value: string; attributes: string[] } {
  const [pair = '', ...attributes] = cookie.split(';').map((part) => part.trim());
  const separator = pair.indexOf('=');
  return { name: pair.slice(0, separator), value: pair.slice(separator + 1), attributes: attributes.sort() };
}

export interface StartedLogin {
  url: string;
  state: string;
  /** `oauth_state=…; oauth_verifier=…` (the state and the PKCE verifier), as the browser sends them back. */
  stateCookie: string;
}

/** The Cookie header a browser sends back after a sign-in start: its state and PKCE verifier cookies. */
export function oauthCookies(res: LightMyRequestResponse, prefix = ''): string {
  const state = setCookie(res, `${prefix}oauth_state`);
  const verifier = setCookie(res, `${prefix}oauth_verifier`);
  if (!state || !verifier) throw new Error('the sign-in start set no state or no verifier cookie');
  return `${cookiePair(state)}; ${cookiePair(verifier)}`;
}

export async function startLogin(app: App, query = ''): Promise<StartedLogin> {
  const res = await app.inject({ method: 'GET', url: `/auth/login${query}` });
  expect(res.statusCode, res.body).toBe(200);
  const { url, state } = res.json<{ url: string; state: string }>();
  return { url, state, stateCookie: oauthCookies(res) };
}

/** GET /auth/callback as GitHub's redirect lands it, with these cookies. */
export function callback(app: App, callbackUrl: string, cookie: string | undefined, headers: Record<string, string> = {}) {
  const url = new URL(callbackUrl);
  return app.inject({ method: 'GET', url: `${url.pathname}${url.search}`, headers: { ...(cookie ? { cookie } : {}), ...headers } });
}

export interface BrowserSession {
  /** `session_token=…`, as the browser sends it back. */
  cookie: string;
  csrfToken: string;
  userId: string;
  email: string;
}

/** The whole GitHub sign-in of one browser, as `user`: the session cookie and its CSRF token. */
export async function githubSignIn(app: App, github: FakeGitHub, user: FakeGitHubUser): Promise<BrowserSession> {
  const login = await startLogin(app);
  const res = await callback(app, github.authorize(login.url, user), login.stateCookie);
  expect(res.statusCode, res.body).toBe(302);
  const session = setCookie(res, 'session_token');
  if (!session) throw new Error('the callback set no session cookie');
  const cookie = cookiePair(session);
  const me = await app.inject({ method: 'GET', url: '/auth/user', headers: { cookie } });
  expect(me.statusCode, me.body).toBe(200);
  const body = me.json<{ user: { id: string; email: string }; csrfToken: string }>();
  return { cookie, csrfToken: body.csrfToken, userId: body.user.id, email: body.user.email };
}
