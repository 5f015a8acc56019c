import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import type { GuardedFetch } from '../../infra/outbound.js';
import { redisKeys } from '../../infra/redis-keys.js';
import { serializeCookie, clearedCookie } from '../../shared/cookies.js';
import { AppError, DependencyUnavailableError } from '../../shared/errors.js';
import { sha256 } from './tokens.js';

export interface GitHubSettings {
  clientId: string;
  clientSecret: string;
  /** This server's GET /auth/callback, as registered with the OAuth app. */
  callbackUrl: string;
  /** https://github.com, or a GitHub Enterprise Server. */
  oauthUrl: string;
  /** https://api.github.com, or https://HOST/api/v3. */
  apiUrl: string;
}

export interface GitHubDependencies {
  /** Reaches GITHUB_OAUTH_URL and GITHUB_API_URL, with timeouts, never through a redirect. */
  fetch: GuardedFetch;
  redis: Redis;
  clock: Clock;
  logger: Logger;
  /** SESSION_SECRET: signs the state cookie. */
  secret: string;
  secureCookies: boolean;
  /** Origins `returnTo` may point at (FRONTEND_URL and this server's). */
  allowedOrigins: string[];
  /** Where the browser lands after signing in when no `returnTo` was given. */
  defaultReturnTo: string;
}

/** A GitHub account, as signing in needs it. */
export interface GitHubProfile {
  /** GitHub's numeric user id, which never changes (the login can). */
  id: string;
  login: string;
  /** The verified primary e-mail, lower-cased. */
  email: string;
}

/** A GitHub sign-in started by GET /auth/login, kept until its callback. */
interface PendingSignIn {
  codeVerifier: string;
  returnTo: string;
  expiresAtMs: number;
}

/** How long the user has on GitHub's page between /auth/login and the callback. */
const STATE_TTL_MS = 10 * 60_000;
const SCOPE = 'read:user user:email';

const tokenResponseSchema = z.union([z.object({ access_token: z.string().min(1) }), z.object({ error: z.string(), error_description: z.string().optional() })]);
const userSchema = z.object({ id: z.number().int(), login: z.string() });
const emailsSchema = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

function base64urlSha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

function equalStrings(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function stateInvalid(message: string): AppError {
  return new AppError('oauth_state_invalid', `${message}: start again from GET /auth/login`);
}

/**
 * GitHub's OAuth web flow with PKCE (S256), done with the guarded fetch (no OAuth library in the
 * dependencies). The state is random, bound to the browser that started the sign-in by a
 * short-lived signed cookie, and taken from Redis once: a replayed, forged or expired state is
 * refused before GitHub is asked anything.
 */
export class GitHubOAuth {
  readonly stateCookieName: string;
  /** The issuer of GitHub identities in external_identities: `github`, or `github:<origin>` for another server. */
  readonly issuer: string;
  private readonly allowedOrigins: Set<string>;

  constructor(
    private readonly settings: GitHubSettings,
    private readonly dependencies: GitHubDependencies,
  ) {
    this.stateCookieName = dependencies.secureCookies ? '__Host-oauth_state' : 'oauth_state';
    const origin = new URL(settings.oauthUrl).origin;
    this.issuer = origin === 'https://github.com' ? 'github' : `github:${origin}`;
    this.allowedOrigins = new Set(dependencies.allowedOrigins.map((entry) => new URL(entry).origin));
  }

  /** Where the browser goes to sign in, the state, and the cookie that binds that state to this browser. */
  async start(returnTo: string | undefined): Promise<{ url: string; state: string; cookie: string }> {
    const target = this.returnTarget(returnTo);
    const state = randomBytes(32).toString('base64url');
    const codeVerifier = randomBytes(32).toString('base64url');
    const pending: PendingSignIn = { codeVerifier, returnTo: target, expiresAtMs: this.dependencies.clock.now().getTime() + STATE_TTL_MS };
    await this.withRedis(() => this.dependencies.redis.set(redisKeys.oauthState(sha256(state)), JSON.stringify(pending), 'PX', STATE_TTL_MS));
    const url = new URL(`${this.settings.oauthUrl.replace(/\/+$/, '')}/login/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: this.settings.clientId,
      redirect_uri: this.settings.callbackUrl,
      scope: SCOPE,
      state,
      code_challenge: base64urlSha256(codeVerifier),
      code_challenge_method: 'S256',
    }).toString();
    const cookie = serializeCookie(this.stateCookieName, `${state}.${this.sign(state)}`, {
      maxAgeSeconds: STATE_TTL_MS / 1000,
      secure: this.dependencies.secureCookies,
      sameSite: 'Lax',
    });
    return { url: url.toString(), state, cookie };
  }

  clearStateCookie(): string {
    return clearedCookie(this.stateCookieName, this.dependencies.secureCookies);
  }

  /**
   * The sign-in a callback belongs to, taken once: its state must be the one this browser's
   * cookie carries, signed by this server, and not yet used or expired.
   */
  async takeState(state: string | undefined, cookie: string | undefined): Promise<{ codeVerifier: string; returnTo: string }> {
    if (!state) throw stateInvalid('The callback carries no state');
    if (!cookie) throw stateInvalid('This browser did not start this sign-in (no state cookie)');
    const separator = cookie.lastIndexOf('.');
    const cookieState = cookie.slice(0, separator);
    if (separator < 0 || !equalStrings(cookie.slice(separator + 1), this.sign(cookieState))) throw stateInvalid('The state cookie is not valid');
    if (!equalStrings(cookieState, state)) throw stateInvalid("The state is not this browser's sign-in");
    const raw = await this.withRedis(() => this.dependencies.redis.getdel(redisKeys.oauthState(sha256(state))));
    if (!raw) throw stateInvalid('This sign-in has expired or was already used');
    const pending = JSON.parse(raw) as PendingSignIn;
    if (pending.expiresAtMs <= this.dependencies.clock.now().getTime()) throw stateInvalid('This sign-in has expired');
    return { codeVerifier: pending.codeVerifier, returnTo: pending.returnTo };
  }

  /** The GitHub account that granted `code`: the code exchanged (with the PKCE verifier), then its profile and verified primary e-mail. */
  async profile(code: string, codeVerifier: string): Promise<GitHubProfile> {
    const accessToken = await this.exchangeCode(code, codeVerifier);
    const [user, emails] = await Promise.all([this.api('/user', accessToken, userSchema), this.api('/user/emails', accessToken, emailsSchema)]);
    const primary = emails.find((entry) => entry.primary);
    if (!primary?.verified) {
      throw new AppError('email_not_verified', 'Your GitHub account has no verified primary e-mail: verify it on GitHub, then sign in again');
    }
    return { id: String(user.id), login: user.login, email: primary.email.trim().toLowerCase() };
  }

  /** An absolute URL on an allowed origin; the default when none is given. */
  returnTarget(returnTo: string | undefined): string {
    if (returnTo === undefined) return this.dependencies.defaultReturnTo;
    let url: URL;
    try {
      url = new URL(returnTo);
    } catch {
      throw new AppError('return_to_not_allowed', 'returnTo must be an absolute URL on one of the FRONTEND_URL origins');
    }
    if (!this.allowedOrigins.has(url.origin)) {
      throw new AppError('return_to_not_allowed', 'returnTo must be on one of the FRONTEND_URL origins');
    }
    return url.toString();
  }

  private sign(state: string): string {
    return createHmac('sha256', this.dependencies.secret).update(`parley-oauth-state:${state}`).digest('base64url');
  }

  private async exchangeCode(code: string, codeVerifier: string): Promise<string> {
    const body = await this.call(`${this.settings.oauthUrl.replace(/\/+$/, '')}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: this.settings.clientId,
        client_secret: this.settings.clientSecret,
        code,
        redirect_uri: this.settings.callbackUrl,
        code_verifier: codeVerifier,
      }).toString(),
    });
    const parsed = tokenResponseSchema.safeParse(body);
    if (!parsed.success) throw this.unavailable('the token endpoint answered something else than a token or an error');
    // GitHub answers 200 with { error } for a bad, used or expired code (and a wrong verifier)
    if ('error' in parsed.data) {
      if (parsed.data.error !== 'bad_verification_code') this.dependencies.logger.warn({ error: parsed.data.error }, 'GitHub refused the code exchange');
      throw new AppError('oauth_code_invalid', "GitHub refused the sign-in code (expired, already used, or not this sign-in's): sign in again", {
        reason: parsed.data.error,
      });
    }
    return parsed.data.access_token;
  }

  private async api<T>(path: string, accessToken: string, schema: z.ZodType<T>): Promise<T> {
    const body = await this.call(`${this.settings.apiUrl.replace(/\/+$/, '')}${path}`, {
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${accessToken}`,
        'user-agent': 'parley',
        'x-github-api-version': '2022-11-28',
      },
    });
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw this.unavailable(`GET ${path} answered an unexpected body`);
    return parsed.data;
  }

  /** One request to GitHub: its JSON body, or 503 when GitHub cannot be reached or fails. */
  private async call(url: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    try {
      response = await this.dependencies.fetch(url, init);
    } catch (error) {
      throw this.unavailable(error instanceof Error ? error.message : 'the request failed');
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw this.unavailable(`${new URL(url).pathname} answered ${response.status}`);
    }
    try {
      return await response.json();
    } catch {
      throw this.unavailable(`${new URL(url).pathname} answered no JSON`);
    }
  }

  private unavailable(reason: string): AppError {
    this.dependencies.logger.warn({ reason }, 'GitHub sign-in failed');
    return new AppError('identity_provider_unavailable', 'GitHub cannot be reached for a moment: try again shortly');
  }

  private async withRedis<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch {
      throw new DependencyUnavailableError('Sign-in is unavailable for a moment (Redis is unavailable); try again shortly');
    }
  }
}
