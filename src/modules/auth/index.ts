import type { IdempotencyStore } from '../../http/idempotency/store.js';
import type { Infra } from '../../infra/bundle.js';
import type { SigningKeys } from '../../infra/keys.js';
import type { GuardedFetch } from '../../infra/outbound.js';
import type { PasswordHasher } from '../../infra/passwords.js';
import { createPreparedReader } from '../../infra/sql.js';
import type { AuditService } from '../audit/index.js';
import type { BetaService } from '../beta/index.js';
import { defineModule } from '../kit.js';
import type { UsersModuleService } from '../users/index.js';
import { BearerAuthenticator } from './authenticator.js';
import { CookieSessions, type CookieSessionSettings } from './cookie-sessions.js';
import { CookieSession, DeviceSession, EmailVerificationToken, ExternalIdentity, PasswordResetToken, RefreshToken } from './entities.js';
import { GitHubOAuth, type GitHubSettings } from './github.js';
import { browserRoutes } from './browser-routes.js';
import { identityRoutes } from './identity-routes.js';
import { ExternalIdentities } from './identities.js';
import { TrustedIssuers, type TrustedIssuer, type TrustedIssuersOptions } from './issuers.js';
import { authJobs } from './jobs.js';
import { authRoutes, type AuthRoutesOptions } from './routes.js';
import { AuthService, type AuthSettings } from './service.js';
import { SignInReplays } from './sign-in-replays.js';
import { SingleUserGate } from './single-user.js';
import { TokenService, type TokenOptions } from './tokens.js';

export type { AuthService, RequestMeta, TokenPair } from './service.js';
export type { BearerAuthenticator } from './authenticator.js';
export type { TrustedIssuer } from './issuers.js';
export type { TokenService } from './tokens.js';

/** Sign-in with other issuers' tokens (TRUSTED_ISSUERS, document 001's front end) and single-user mode. */
export interface ExternalIdentitySettings extends TrustedIssuersOptions {
  issuers: TrustedIssuer[];
  /** ACCEPT_EXTERNAL_TOKENS: routes with `externalTokens` take a trusted issuer's token directly. */
  acceptExternalTokens: boolean;
  /** AUTHORIZED_USER_EMAIL: only this account may authenticate. */
  authorizedUserEmail: string | null;
}

/** Browser sign-in: the session cookie, its CSRF defence, and GitHub. */
export interface BrowserSettings extends CookieSessionSettings {
  /** Where a browser lands after signing in with GitHub when it named no `returnTo`. */
  defaultReturnTo: string;
  /** Null when GITHUB_CLIENT_ID is not set. */
  github: GitHubSettings | null;
}

export interface AuthModuleDeps {
  infra: Infra;
  keys: SigningKeys;
  hasher: PasswordHasher;
  users: UsersModuleService;
  beta: BetaService;
  audit: AuditService;
  /** The Idempotency-Key store: login and refresh keep what they opened there. */
  idempotency: IdempotencyStore;
  /** Fetches the issuers' JWKS (their hosts trusted, redirects refused); closed with the module. */
  jwksFetch: GuardedFetch;
  /** Reaches GitHub's API (GITHUB_API_URL); closed with the module. The code exchange goes through @fastify/oauth2. */
  githubFetch: GuardedFetch;
  settings: AuthSettings & { tokens: TokenOptions; limits: AuthRoutesOptions['limits']; external: ExternalIdentitySettings; browser: BrowserSettings };
}

/** Sign-up, sign-in (password, GitHub or a trusted issuer's token), device sessions and browser sessions with rotating refresh tokens, e-mail verification and password reset. */
export const authModule = defineModule({
  name: 'auth',
  entities: [DeviceSession, RefreshToken, PasswordResetToken, EmailVerificationToken, ExternalIdentity, CookieSession],
  tags: [{ name: 'auth', description: 'Accounts, tokens and device sessions' }],
  create: ({ infra, keys, hasher, users, beta, audit, idempotency, jwksFetch, githubFetch, settings }: AuthModuleDeps) => {
    const reader = createPreparedReader(infra.db);
    const tokens = new TokenService(keys, infra.redis.client, infra.clock, settings.tokens, reader, users.accounts);
    tokens.onSessionsDenied((sessionIds) => infra.realtime.disconnectSessions(sessionIds));
    const gate = new SingleUserGate(settings.external.authorizedUserEmail);
    const issuers = new TrustedIssuers(settings.external.issuers, { fetch: jwksFetch, clock: infra.clock, logger: infra.logger }, settings.external);
    const identities = new ExternalIdentities({
      db: infra.db,
      reader,
      issuers,
      accounts: users.accounts,
      audit,
      gate,
      clock: infra.clock,
      ids: infra.ids,
      events: infra.events,
    });
    const cookies = new CookieSessions(
      { db: infra.db, reader, redis: infra.redis.client, tokens, accounts: users.accounts, gate, clock: infra.clock },
      settings.browser,
    );
    const github = settings.browser.github
      ? new GitHubOAuth(settings.browser.github, {
          fetch: githubFetch,
          redis: infra.redis.client,
          clock: infra.clock,
          logger: infra.logger,
          secureCookies: settings.browser.secure,
          allowedOrigins: settings.browser.allowedOrigins,
          defaultReturnTo: settings.browser.defaultReturnTo,
        })
      : null;
    const auth = new AuthService(
      {
        db: infra.db,
        redis: infra.redis.client,
        tokens,
        hasher,
        mail: infra.mail,
        jobs: infra.jobs,
        accounts: users.accounts,
        beta,
        audit,
        clock: infra.clock,
        ids: infra.ids,
        logger: infra.logger,
        events: infra.events,
        identities,
        gate,
        bearer: new BearerAuthenticator(tokens, identities, gate, settings.external.acceptExternalTokens),
        cookies,
        github,
        replays: new SignInReplays(idempotency),
      },
      settings,
    );
    // A banned account's sessions end at once, on every instance.
    const unsubscribeBanned = infra.events.on('user.banned', ({ sessionIds }) => auth.denySessions(sessionIds));
    // A deleted account's identities are forgotten: signing in with them again makes a new account.
    const unsubscribeDeleted = infra.events.on('user.deleted', ({ userId }) => identities.forget(userId));
    return {
      service: auth,
      http: async (app) => {
        await app.register(authRoutes, { auth, tokens, limits: settings.limits });
        await app.register(identityRoutes, { auth });
        await app.register(browserRoutes, { auth, cookies, github, limit: settings.limits.github });
      },
      jobs: authJobs(auth),
      close: async () => {
        unsubscribeBanned();
        unsubscribeDeleted();
        await jwksFetch.close();
        await githubFetch.close();
      },
    };
  },
});
