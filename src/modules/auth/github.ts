import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { CookieSerializeOptions } from '@fastify/cookie';
import fastifyOauth2 from '@fastify/oauth2';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import type { GuardedFetch } from '../../infra/outbound.js';
import { redisKeys } from '../../infra/redis-keys.js';
import type { AuthContext } from '../../shared/auth.js';
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
  /** Each request to GitHub (the code exchange, each API call) gives up after this long. */
  timeoutMs: number;
}

export interface GitHubDependencies {
  /** Reaches GITHUB_API_URL, with timeouts, never through a redirect. */
  fetch: GuardedFetch;
  redis: Redis;
  clock: Clock;
  logger: Logger;
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

/** What a GitHub sign-in is for, chosen when it starts. */
export interface SignInIntent {
  returnTo?: string | undefined;
  /** Set: link the GitHub account to this signed-in account instead of signing in with it. */
  linkTo?: AuthContext | undefined;
}

/** A GitHub sign-in started by GET /auth/login (or POST /auth/github/link), kept until its callback. */
export interface PendingSignIn {
  returnTo: string;
  linkTo: AuthContext | null;
  expiresAtMs: number;
}

/** How long the user has on GitHub's page between /auth/login and the callback. */
const STATE_TTL_MS = 10 * 60_000;
const SCOPE = ['read:user', 'user:email'];
/** The token endpoint's answer is a few hundred bytes; more is not GitHub. */
const TOKEN_RESPONSE_MAX_BYTES = 64 * 1024;
/** @fastify/oauth2 decorates the instance with `oauth2Github`. */
const PLUGIN_NAME = 'github';

const tokenResponseSchema = z.union([z.object({ access_token: z.string().min(1) }), z.object({ error: z.string(), error_description: z.string().optional() })]);
const userSchema = z.object({ id: z.number().int(), login: z.string() });
const emailsSchema = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

function equalStrings(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function stateInvalid(message: string): AppError {
  return new AppError('oauth_state_invalid', `${message}: start again from GET /auth/login`);
}

/**
 * GitHub's OAuth web flow through @fastify/oauth2 (simple-oauth2 underneath), with PKCE S256:
 * the library makes the authorize URL, keeps the state and the PKCE verifier in two short-lived
 * cookies signed with SESSION_SECRET, and exchanges the code. The state is ours: random, its
 * sign-in (where to return, which account to link) kept in Redis and taken once (GETDEL), and
 * valid only from the browser whose signed cookie carries it and within 10 minutes of the app's
 * clock. A replayed, forged or expired state is refused before GitHub is asked anything.
 */
export class GitHubOAuth {
  readonly stateCookieName: string;
  readonly verifierCookieName: string;
  /** The issuer of GitHub identities in external_identities: `github`, or `github:<origin>` for another server. */
  readonly issuer: string;
  private readonly allowedOrigins: Set<string>;
  private readonly cookieOptions: CookieSerializeOptions;
  /** What each GET /auth/login request starts, read back by the state generator the library calls. */
  private readonly intents = new WeakMap<FastifyRequest, { returnTo: string; linkTo: AuthContext | null }>();
  /** Each callback's sign-in, once its state has been taken. */
  private readonly taken = new WeakMap<FastifyRequest, PendingSignIn>();
  private client: fastifyOauth2.OAuth2Namespace | null = null;

  constructor(
    private readonly settings: GitHubSettings,
    private readonly dependencies: GitHubDependencies,
  ) {
    // the __Host- prefix: the browser keeps such a cookie only if Secure, Path=/ and host-only
    this.stateCookieName = dependencies.secureCookies ? '__Host-oauth_state' : 'oauth_state';
    this.verifierCookieName = dependencies.secureCookies ? '__Host-oauth_verifier' : 'oauth_verifier';
    this.cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure: dependencies.secureCookies, maxAge: STATE_TTL_MS / 1000 };
    const origin = new URL(settings.oauthUrl).origin;
    this.issuer = origin === 'https://github.com' ? 'github' : `github:${origin}`;
    this.allowedOrigins = new Set(dependencies.allowedOrigins.map((entry) => new URL(entry).origin));
  }

  /** Registers @fastify/oauth2 on `app` (which must have @fastify/cookie with a signing secret); the routes using this go there too. */
  async register(app: FastifyInstance): Promise<void> {
    const oauthBase = this.settings.oauthUrl.replace(/\/+$/, '');
    await app.register(fastifyOauth2, {
      name: PLUGIN_NAME,
      credentials: {
        client: { id: this.settings.clientId, secret: this.settings.clientSecret },
        auth: { authorizeHost: oauthBase, authorizePath: '/login/oauth/authorize', tokenHost: oauthBase, tokenPath: '/login/oauth/access_token' },
        // GitHub documents the client credentials as form fields
        options: { authorizationMethod: 'body', bodyFormat: 'form' },
        // wreck's options: one deadline for the answer and its body, no redirect followed, a bounded body
        http: { timeout: this.settings.timeoutMs, redirects: false, maxBytes: TOKEN_RESPONSE_MAX_BYTES },
      },
      callbackUri: this.settings.callbackUrl,
      scope: SCOPE,
      pkce: 'S256',
      userAgent: 'parley',
      cookie: { ...this.cookieOptions, signed: true },
      redirectStateCookieName: this.stateCookieName,
      verifierCookieName: this.verifierCookieName,
      generateStateFunction: (request: FastifyRequest) => this.newState(request),
      checkStateFunction: async (request: FastifyRequest) => {
        await this.takeState(request);
        return true;
      },
    });
    this.client = app.oauth2Github ?? null;
  }

  /**
   * Starts a sign-in: the state kept, its two cookies set on `reply`, and the URL of GitHub's
   * page. 400 return_to_not_allowed for a `returnTo` off the allowed origins.
   */
  async start(request: FastifyRequest, reply: FastifyReply, intent: SignInIntent): Promise<{ url: string; state: string }> {
    this.intents.set(request, { returnTo: this.returnTarget(intent.returnTo), linkTo: intent.linkTo ?? null });
    const url = await this.oauth().generateAuthorizationUri(request, reply);
    const state = new URL(url).searchParams.get('state');
    if (!state) throw new Error('@fastify/oauth2 made an authorize URL without the state');
    return { url, state };
  }

  /**
   * GitHub's redirect back: its state taken (400 oauth_state_invalid), the state and verifier
   * cookies cleared, then the code exchanged with the PKCE verifier: GitHub's access token and
   * the sign-in it ends. Whatever fails after the state was taken, `pendingOf(request)` says
   * where the browser goes back.
   */
  async callback(
    request: FastifyRequest,
    reply: FastifyReply,
    { code, error }: { code?: string | undefined; error?: string | undefined },
  ): Promise<{ accessToken: string; pending: PendingSignIn }> {
    if (error || !code) {
      reply.clearCookie(this.verifierCookieName, this.cookieOptions);
      reply.clearCookie(this.stateCookieName, this.cookieOptions);
      await this.takeState(request);
      if (error) throw new AppError('oauth_denied', 'The sign-in was declined on GitHub', { reason: error });
      throw new AppError('oauth_code_invalid', 'The callback carries no code: sign in again');
    }
    let body: unknown;
    try {
      // clears both cookies, takes the state (checkStateFunction), then POSTs the code and the verifier
      body = (await this.oauth().getAccessTokenFromAuthorizationCodeFlow(request, reply)).token;
    } catch (failure) {
      if (failure instanceof AppError) throw failure;
      throw this.unavailable(`the code exchange failed: ${failure instanceof Error ? failure.message : 'unknown error'}`);
    }
    const parsed = tokenResponseSchema.safeParse(body);
    if (!parsed.success) throw this.unavailable('the token endpoint answered something else than a token or an error');
    // GitHub answers 200 with { error } for a bad, used or expired code (and a wrong verifier)
    if ('error' in parsed.data) {
      if (parsed.data.error !== 'bad_verification_code') this.dependencies.logger.warn({ error: parsed.data.error }, 'GitHub refused the code exchange');
      throw new AppError('oauth_code_invalid', "GitHub refused the sign-in code (expired, already used, or not this sign-in's): sign in again", {
        reason: parsed.data.error,
      });
    }
    const pending = this.taken.get(request);
    if (!pending) throw new Error('@fastify/oauth2 exchanged a code without checking its state');
    return { accessToken: parsed.data.access_token, pending };
  }

  /** The sign-in whose state this callback took; undefined before (or without) a valid state. */
  pendingOf(request: FastifyRequest): PendingSignIn | undefined {
    return this.taken.get(request);
  }

  /** The GitHub account behind an access token: its profile and verified primary e-mail (403 email_not_verified without one). */
  async profile(accessToken: string): Promise<GitHubProfile> {
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

  private oauth(): fastifyOauth2.OAuth2Namespace {
    if (!this.client) throw new Error('GitHubOAuth.register was not called');
    return this.client;
  }

  /** The library's generateStateFunction: a random state, its sign-in kept in Redis until the callback or 10 minutes. */
  private async newState(request: FastifyRequest): Promise<string> {
    const intent = this.intents.get(request);
    if (!intent) throw new Error('a GitHub sign-in starts with GitHubOAuth.start');
    const state = randomBytes(32).toString('base64url');
    const pending: PendingSignIn = { ...intent, expiresAtMs: this.dependencies.clock.now().getTime() + STATE_TTL_MS };
    await this.withRedis(() => this.dependencies.redis.set(redisKeys.oauthState(sha256(state)), JSON.stringify(pending), 'PX', STATE_TTL_MS));
    return state;
  }

  /**
   * The library's checkStateFunction: the callback's state must be the one this browser's
   * signed cookie carries, not yet used, not expired. Taken once, whatever comes next.
   */
  private async takeState(request: FastifyRequest): Promise<PendingSignIn> {
    const { state } = request.query as { state?: string };
    if (!state) throw stateInvalid('The callback carries no state');
    const cookie = request.cookies[this.stateCookieName];
    if (!cookie) throw stateInvalid('This browser did not start this sign-in (no state cookie)');
    const unsigned = request.unsignCookie(cookie);
    if (!unsigned.valid || unsigned.value === null) throw stateInvalid('The state cookie is not valid');
    if (!equalStrings(unsigned.value, state)) throw stateInvalid("The state is not this browser's sign-in");
    const raw = await this.withRedis(() => this.dependencies.redis.getdel(redisKeys.oauthState(sha256(state))));
    if (!raw) throw stateInvalid('This sign-in has expired or was already used');
    const pending = JSON.parse(raw) as PendingSignIn;
    if (pending.expiresAtMs <= this.dependencies.clock.now().getTime()) throw stateInvalid('This sign-in has expired');
    this.taken.set(request, pending);
    return pending;
  }

  private async api<T>(path: string, accessToken: string, schema: z.ZodType<T>): Promise<T> {
    const url = `${this.settings.apiUrl.replace(/\/+$/, '')}${path}`;
    let response: Response;
    try {
      response = await this.dependencies.fetch(url, {
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${accessToken}`,
          'user-agent': 'parley',
          'x-github-api-version': '2022-11-28',
        },
      });
    } catch (error) {
      throw this.unavailable(error instanceof Error ? error.message : 'the request failed');
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw this.unavailable(`GET ${path} answered ${response.status}`);
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      throw this.unavailable(`GET ${path} answered no JSON`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw this.unavailable(`GET ${path} answered an unexpected body`);
    return parsed.data;
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
