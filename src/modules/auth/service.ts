import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { In, IsNull, type DataSource, type EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { EventBus } from '../../infra/events.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { Logger } from '../../infra/logger.js';
import type { JobQueue } from '../../infra/jobs.js';
import type { MailOutbox } from '../../infra/mail-queue.js';
import { renderMail } from '../../infra/mail-templates.js';
import type { MailMessage } from '../../infra/mailer.js';
import type { PasswordHasher } from '../../infra/passwords.js';
import { isUniqueViolation, updateReturning } from '../../infra/sql.js';
import { redisKeys } from '../../infra/redis-keys.js';
import type { AuthContext, Role } from '../../shared/auth.js';
import { AppError, DependencyUnavailableError, NotFoundError, RateLimitedError } from '../../shared/errors.js';
import type { AuditService } from '../audit/index.js';
import type { BetaService } from '../beta/index.js';
import type { AccountsService, AccountSummary } from '../users/index.js';
import type { BearerAuthenticator } from './authenticator.js';
import type { CookieSessions } from './cookie-sessions.js';
import type { GitHubOAuth } from './github.js';
import type { ExternalIdentities, LinkedIdentity } from './identities.js';
import type { ExternalClaims } from './issuers.js';
import { PASSWORD_RESET_JOB, type PasswordResetPayload } from './jobs.js';
import type { SingleUserGate } from './single-user.js';
import { DeviceSession, EmailVerificationToken, PasswordResetToken, RefreshToken, type Platform } from './entities.js';
import { seal, unseal, type KeptSignIn, type SignInReplays } from './sign-in-replays.js';
import { sha256, type TokenService } from './tokens.js';

/** The pages e-mail links open, by what they are for. */
export type EmailPage = '/verify-email' | '/reset-password';

export interface AuthSettings {
  /** Absolute URL of each page; the link adds ?token=. */
  emailPages: Record<EmailPage, string>;
  /** Sliding: a session unused this long ends. */
  refreshTtlMs: number;
  /** Absolute: a session ends this long after its sign-in, however often it is refreshed. */
  sessionMaxLifetimeMs: number;
  reuseGraceMs: number;
  betaMode: boolean;
  accountFailureLimit: { max: number; windowMs: number };
}

/** Where a request came from, for sessions and the audit log. */
export interface RequestMeta {
  ip: string;
  userAgent: string | null;
}

export interface Device {
  deviceId: string;
  platform: Platform;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: { id: string; email: string; role: Role };
}

/** A sign-in's pair, and whether it repeats an earlier answer to the same Idempotency-Key. */
export interface SignInResult {
  pair: TokenPair;
  replayed: boolean;
}

/** A device session just opened: its pair, and its id. */
interface OpenedSession {
  pair: TokenPair;
  sessionId: string;
}

export interface SessionStats {
  active: number;
  byPlatform: Record<Platform, number>;
  lastActivityAt: Date | null;
  createdLast30Days: number;
}

export interface SessionView {
  id: string;
  deviceId: string;
  platform: Platform;
  userAgent: string | null;
  ip: string | null;
  createdAt: Date;
  lastUsedAt: Date;
  current: boolean;
}

/** A sign-in's transaction outcome: what it opened (a token pair, a browser session), the sessions it replaced (this device's), whether the device is new. */
interface SignedIn<T> {
  opened: T;
  userId: string;
  replaced: string[];
  newDevice: boolean;
}

/** A browser signed in by GitHub: the Set-Cookie of its session. */
/** A browser signed in with GitHub: the value of its session cookie, and until when the browser keeps it. */
export interface BrowserSignIn {
  token: string;
  endsAt: Date;
  userId: string;
}

/** A browser session just opened: its cookie value, its absolute end, its account. */
interface BrowserSession {
  token: string;
  endsAt: Date;
  account: AccountSummary;
}

/** Both one-time token tables share one class shape. */
type OneTimeTokenEntity = typeof PasswordResetToken;

const RESET_TTL_MS = 60 * 60_000;
/** Reset mails one account may receive, from any number of IPs. */
const RESET_MAILS_PER_WINDOW = 3;
const RESET_MAILS_WINDOW_MS = 60 * 60_000;
const VERIFICATION_TTL_MS = 24 * 60 * 60_000;
/** A session's last_used_at is written at most this often. */
const SESSION_ACTIVITY_INTERVAL_MS = 60_000;
/** GET /auth/sessions/stats counts the sessions opened this recently. */
const STATS_RECENT_MS = 30 * 86_400_000;
/** Linking an identity needs the password, or a sign-in this recent. */
const IDENTITY_LINK_CONFIRM_MS = 10 * 60_000;

function opaqueToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The pair issued by a rotation is kept for the reuse grace period, sealed with a key derived
 * from the rotated token itself: only a holder of that token can read it back.
 */
function rotationSecret(oldToken: string): string {
  return `parley-rotation:${oldToken}`;
}

export interface AuthServiceDependencies {
  db: DataSource;
  redis: Redis;
  tokens: TokenService;
  hasher: PasswordHasher;
  /** Where e-mails go: the mail.send job, so no request waits on the mail provider. */
  mail: MailOutbox;
  jobs: JobQueue;
  accounts: AccountsService;
  beta: BetaService;
  audit: AuditService;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  events: EventBus;
  identities: ExternalIdentities;
  gate: SingleUserGate;
  /** Not used here: handed to the HTTP guard and the sockets through this service. */
  bearer: BearerAuthenticator;
  /** Browser sessions (the session cookie); the HTTP guard verifies them through this service. */
  cookies: CookieSessions;
  /** GitHub sign-in; null when GITHUB_CLIENT_ID is not set. */
  github: GitHubOAuth | null;
  /** Idempotency-Key of login and refresh. */
  replays: SignInReplays;
}

/** Accounts' credentials and device sessions: sign-up, sign-in (password or a trusted issuer's token), refresh, sign-out, reset, verification. */
export class AuthService {
  private readonly db: DataSource;
  private readonly redis: Redis;
  readonly tokens: TokenService;
  private readonly hasher: PasswordHasher;
  private readonly mail: MailOutbox;
  private readonly jobs: JobQueue;
  private readonly accounts: AccountsService;
  private readonly beta: BetaService;
  private readonly audit: AuditService;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly logger: Logger;
  private readonly events: EventBus;
  private readonly identities: ExternalIdentities;
  private readonly gate: SingleUserGate;
  /** Every bearer token's verifier (Parley's, and trusted issuers' where a route takes them), for the HTTP guard, Socket.io and /ws. */
  readonly bearer: BearerAuthenticator;
  readonly cookies: CookieSessions;
  private readonly github: GitHubOAuth | null;
  private readonly replays: SignInReplays;
  /** When this instance last wrote each session's last_used_at (ms): saves the database a no-op per request. */
  private readonly sessionsTouched = new Map<string, number>();

  constructor(
    dependencies: AuthServiceDependencies,
    private readonly settings: AuthSettings,
  ) {
    this.db = dependencies.db;
    this.redis = dependencies.redis;
    this.tokens = dependencies.tokens;
    this.hasher = dependencies.hasher;
    this.mail = dependencies.mail;
    this.jobs = dependencies.jobs;
    this.accounts = dependencies.accounts;
    this.beta = dependencies.beta;
    this.audit = dependencies.audit;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.logger = dependencies.logger;
    this.events = dependencies.events;
    this.identities = dependencies.identities;
    this.gate = dependencies.gate;
    this.bearer = dependencies.bearer;
    this.cookies = dependencies.cookies;
    this.github = dependencies.github;
    this.replays = dependencies.replays;
  }

  async register(input: { email: string; password: string; inviteKey?: string | undefined } & Device, meta: RequestMeta): Promise<TokenPair> {
    this.gate.check(input.email);
    if (this.settings.betaMode && !input.inviteKey) throw new AppError('invite_required', 'Parley is in private beta: an invite key is required');
    const passwordHash = await this.hasher.hash(input.password);
    const verification = opaqueToken();
    let pair: TokenPair;
    try {
      pair = await this.db.transaction(async (manager) => {
        if (await this.accounts.emailExists(input.email, manager)) throw new AppError('email_taken', 'An account with this e-mail already exists');
        const user = await this.accounts.create(manager, { email: input.email, passwordHash });
        if (this.settings.betaMode && input.inviteKey) await this.beta.consume(manager, input.inviteKey, input.email, user.id);
        await this.insertOneTimeToken(manager, EmailVerificationToken, user.id, verification, VERIFICATION_TTL_MS);
        await this.audit.record({ type: 'register', userId: user.id, ip: meta.ip, userAgent: meta.userAgent, metadata: { platform: input.platform } }, manager);
        return (await this.openSession(manager, { id: user.id, email: user.email, role: user.role }, input, meta)).pair;
      });
    } catch (error) {
      if (isUniqueViolation(error, 'users_email_unique')) throw new AppError('email_taken', 'An account with this e-mail already exists');
      throw error;
    }
    await this.sendMail({
      to: input.email,
      ...renderMail('verify-email', { link: this.link('/verify-email', verification), expiresInMinutes: VERIFICATION_TTL_MS / 60_000 }),
    });
    await this.events.publish('user.registered', { userId: pair.user.id, email: pair.user.email });
    return pair;
  }

  /**
   * With an Idempotency-Key, a retry (same key, e-mail, password and device) gets the session
   * the first attempt opened, with its refresh token, instead of opening another: a mobile client
   * whose answer was lost keeps one session. Only while that refresh token is unused and the
   * session live; after that the key is spent (409 conflict).
   */
  async login(input: { email: string; password: string } & Device, meta: RequestMeta, idempotencyKey?: string): Promise<SignInResult> {
    const failuresKey = redisKeys.loginFailures(sha256(input.email.toLowerCase()));
    const failures = Number(await this.withRedis(() => this.redis.get(failuresKey)));
    if (failures >= this.settings.accountFailureLimit.max) {
      const ttlMs = await this.withRedis(() => this.redis.pttl(failuresKey));
      throw new RateLimitedError(Math.max(1, Math.ceil(ttlMs / 1000)));
    }
    const account = await this.accounts.findCredentials(input.email);
    // The hash is checked even for an unknown e-mail (against a dummy), so both answers take as long.
    const passwordOk = await this.hasher.verify(input.password, account?.passwordHash ?? null);
    if (!account || account.deleted || !passwordOk) {
      const count = await this.withRedis(() => this.redis.incr(failuresKey));
      if (count === 1) await this.withRedis(() => this.redis.pexpire(failuresKey, this.settings.accountFailureLimit.windowMs));
      await this.audit.record({
        type: 'login_failed',
        userId: account && !account.deleted ? account.id : null,
        ip: meta.ip,
        userAgent: meta.userAgent,
        metadata: { reason: 'invalid_credentials' },
      });
      throw new AppError('invalid_credentials', 'E-mail or password is incorrect');
    }
    if (account.isBanned) {
      await this.audit.record({ type: 'login_failed', userId: account.id, ip: meta.ip, userAgent: meta.userAgent, metadata: { reason: 'account_banned' } });
      throw new AppError('account_banned', 'This account is banned');
    }
    // after the password, so the answer names no authorized e-mail to someone without its password
    await this.refuseUnauthorizedUser(account, meta);
    await this.withRedis(() => this.redis.del(failuresKey));
    // after the password, so the key belongs to the account it proved
    const claim = idempotencyKey
      ? await this.replays.claim(
          'POST /auth/login',
          account.id,
          idempotencyKey,
          JSON.stringify([input.email.toLowerCase(), input.deviceId, input.platform]),
          input.password,
        )
      : null;
    if (claim?.outcome === 'replay') {
      const pair = claim.kept ? await this.replaySignIn(account.id, claim.kept) : null;
      if (!pair) {
        throw new AppError('conflict', 'The session this Idempotency-Key opened is already in use, signed out or expired: sign in with a new Idempotency-Key');
      }
      return { pair, replayed: true };
    }
    try {
      const upgradedHash = account.passwordHash && this.hasher.needsRehash(account.passwordHash) ? await this.hasher.hash(input.password) : null;
      const signedIn = await this.db.transaction(async (manager) => {
        const current = await this.accounts.lockSummary(manager, account.id);
        if (!current) throw new AppError('invalid_credentials', 'E-mail or password is incorrect');
        if (upgradedHash && !current.isBanned) await this.accounts.upgradePasswordHash(manager, account.id, account.passwordHash!, upgradedHash);
        return this.startSession(manager, current, input, meta, {}, () => this.openSession(manager, current, input, meta));
      });
      const opened = await this.finishSignIn(signedIn, input, meta);
      if (claim) await this.replays.keep(claim, { sessionId: opened.sessionId, refreshToken: opened.pair.refreshToken });
      return { pair: opened.pair, replayed: false };
    } catch (error) {
      // nothing was opened: a retry with the key signs in again
      if (claim) await this.replays.release(claim);
      throw error;
    }
  }

  /**
   * The answer again to a sign-in retried with its Idempotency-Key: the same session and refresh
   * token, with a fresh access token. Null when that token is no longer the session's live one
   * (used, revoked, expired): handing it out again would only trip reuse detection.
   */
  private async replaySignIn(userId: string, kept: KeptSignIn): Promise<TokenPair | null> {
    const now = this.clock.now();
    const token = await this.db
      .getRepository(RefreshToken)
      .findOne({ where: { tokenHash: sha256(kept.refreshToken), sessionId: kept.sessionId, userId, revoked: false } });
    if (!token || token.expiresAt <= now) return null;
    const session = await this.db.getRepository(DeviceSession).findOne({ where: { id: kept.sessionId, revokedAt: IsNull() } });
    if (!session || session.expiresAt <= now) return null;
    const account = await this.accounts.findSummary(userId);
    if (!account) return null;
    if (account.isBanned) throw new AppError('account_banned', 'This account is banned');
    this.gate.check(account.email);
    const accessToken = await this.tokens.issueAccessToken({ userId, email: account.email, role: account.role, sessionId: session.id });
    return {
      accessToken,
      refreshToken: kept.refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.tokens.accessTtlSeconds,
      user: { id: account.id, email: account.email, role: account.role },
    };
  }

  /**
   * Signs in with a trusted issuer's token (POST /auth/exchange): the account linked to its
   * (issuer, subject), or a new one on first use. Otherwise as a password login: one device
   * session, the ban re-checked on the locked row, single-user mode.
   */
  async exchange(input: { token: string } & Device, meta: RequestMeta): Promise<TokenPair> {
    const claims = await this.identities.verify(input.token);
    let created = false;
    let signedIn: SignedIn<TokenPair> | null;
    try {
      signedIn = await this.identities.withIdentityRace(() =>
        this.db.transaction(async (manager) => {
          const identified = await this.identities.identify(manager, claims, meta);
          created = identified.created;
          return this.startSession(
            manager,
            identified.account,
            input,
            meta,
            { via: 'external_token', issuer: claims.issuer },
            async () => (await this.openSession(manager, identified.account, input, meta)).pair,
          );
        }),
      );
    } catch (error) {
      await this.auditRefusedIdentity(error, claims, meta);
      throw error;
    }
    const pair = await this.finishSignIn(signedIn, input, meta);
    if (created) await this.events.publish('user.registered', { userId: pair.user.id, email: pair.user.email });
    return pair;
  }

  /**
   * Signs a browser in with GitHub (GET /auth/callback, the code already exchanged): the
   * account linked to the GitHub user id, or on first use a new account with the verified
   * primary e-mail, unless an account already has that e-mail (409 account_link_required: never
   * taken over; that account links GitHub itself with POST /auth/github/link). Opens a browser
   * session: a device session of its own, behind the session cookie.
   */
  async signInWithGitHub(accessToken: string, meta: RequestMeta): Promise<BrowserSignIn> {
    const github = this.requireGitHub();
    const profile = await github.profile(accessToken);
    const claims: ExternalClaims = { issuer: github.issuer, subject: profile.id, email: profile.email, emailVerified: true };
    // each browser sign-in is a device of its own: it replaces no other session
    const device: Device = { deviceId: `browser-${this.ids.uuid()}`, platform: 'web' };
    let created = false;
    let signedIn: SignedIn<BrowserSession> | null;
    try {
      signedIn = await this.identities.withIdentityRace(() =>
        this.db.transaction(async (manager) => {
          const identified = await this.identities.identify(manager, claims, meta);
          created = identified.created;
          return this.startSession(manager, identified.account, device, meta, { via: 'github', login: profile.login }, () =>
            this.openBrowserSession(manager, identified.account, device, meta),
          );
        }),
      );
    } catch (error) {
      await this.auditRefusedIdentity(error, claims, meta);
      if (error instanceof AppError && error.code === 'account_link_required') {
        throw new AppError(
          'account_link_required',
          'An account with this e-mail exists and is not linked to this GitHub account: sign in to it, then link GitHub with POST /auth/github/link',
        );
      }
      throw error;
    }
    const session = await this.finishSignIn(signedIn, device, meta);
    if (created) await this.events.publish('user.registered', { userId: session.account.id, email: session.account.email });
    return { token: session.token, endsAt: session.endsAt, userId: session.account.id };
  }

  /**
   * Starting to link GitHub to the signed-in account (POST /auth/github/link): its holder
   * confirms with the password or a sign-in within the last IDENTITY_LINK_CONFIRM_MS, as for a
   * trusted issuer's identity, so a borrowed session cannot plant a way back in.
   */
  async confirmGitHubLink(auth: AuthContext, password: string | undefined): Promise<void> {
    this.requireGitHub();
    await this.confirmIdentity(auth, password, IDENTITY_LINK_CONFIRM_MS);
  }

  /**
   * Ends a link started by POST /auth/github/link (GET /auth/callback, the code already
   * exchanged): the GitHub account is linked to the account that started it, and only to it,
   * while the session that started it is still signed in. 409 identity_already_linked when it
   * is another account's.
   */
  async linkGitHub(linkTo: AuthContext, accessToken: string, meta: RequestMeta): Promise<LinkedIdentity> {
    const github = this.requireGitHub();
    await this.tokens.assertLive(linkTo);
    const profile = await github.profile(accessToken);
    return this.identities.link(linkTo.userId, { issuer: github.issuer, subject: profile.id, email: profile.email, emailVerified: true }, meta);
  }

  /** GitHub sign-in, or 404 identity_provider_not_configured. */
  requireGitHub(): GitHubOAuth {
    if (!this.github) throw new AppError('identity_provider_not_configured', 'GitHub sign-in is not configured here (GITHUB_CLIENT_ID)');
    return this.github;
  }

  private async auditRefusedIdentity(error: unknown, claims: ExternalClaims, meta: RequestMeta): Promise<void> {
    if (error instanceof AppError && (error.code === 'account_link_required' || error.code === 'not_authorized_user')) {
      await this.audit.record({ type: 'login_failed', ip: meta.ip, userAgent: meta.userAgent, metadata: { reason: error.code, issuer: claims.issuer } });
    }
  }

  /**
   * Links a trusted issuer's identity to the signed-in account, which confirms it is its own
   * holder: the password, or a sign-in within the last IDENTITY_LINK_CONFIRM_MS. Its token then
   * signs in to this account (the way out of account_link_required).
   */
  async linkIdentity(auth: AuthContext, input: { token: string; password?: string | undefined }, meta: RequestMeta): Promise<LinkedIdentity> {
    const claims = await this.identities.verify(input.token);
    await this.confirmIdentity(auth, input.password, IDENTITY_LINK_CONFIRM_MS);
    return this.identities.link(auth.userId, claims, meta);
  }

  /** What a client may sign in with, to draw its login page. */
  providers(): { password: true; github: boolean; issuers: Array<{ issuer: string; kind: 'hs256' | 'jwks' }>; singleUser: boolean } {
    return { password: true, github: this.github !== null, issuers: this.identities.issuers(), singleUser: this.gate.enabled };
  }

  /**
   * In a sign-in transaction, on the account's row locked there: a ban that commits first is
   * seen here (null, audited), and one that commits later waits for this session and then
   * revokes it with the others. This device's previous session is replaced.
   */
  private async startSession<T>(
    manager: EntityManager,
    account: AccountSummary,
    device: Device,
    meta: RequestMeta,
    metadata: Record<string, unknown>,
    open: () => Promise<T>,
  ): Promise<SignedIn<T> | null> {
    if (account.isBanned) {
      await this.audit.record(
        { type: 'login_failed', userId: account.id, ip: meta.ip, userAgent: meta.userAgent, metadata: { reason: 'account_banned', ...metadata } },
        manager,
      );
      return null;
    }
    const knownDevice = await manager.getRepository(DeviceSession).exists({ where: { userId: account.id, deviceId: device.deviceId } });
    const replaced = await this.revokeSessions(manager, { userId: account.id, deviceId: device.deviceId }, 'replaced');
    await this.audit.record(
      {
        type: 'login',
        userId: account.id,
        ip: meta.ip,
        userAgent: meta.userAgent,
        metadata: { platform: device.platform, deviceId: device.deviceId, ...metadata },
      },
      manager,
    );
    return { opened: await open(), userId: account.id, replaced, newDevice: !knownDevice };
  }

  /** After a sign-in commits: the replaced session's tokens denied, user.signed-in published. */
  private async finishSignIn<T>(signedIn: SignedIn<T> | null, device: Device, meta: RequestMeta): Promise<T> {
    if (!signedIn) throw new AppError('account_banned', 'This account is banned');
    await this.tokens.denySessions(signedIn.replaced);
    await this.events.publish('user.signed-in', {
      userId: signedIn.userId,
      deviceId: device.deviceId,
      platform: device.platform,
      newDevice: signedIn.newDevice,
      ip: meta.ip,
      userAgent: meta.userAgent,
      at: this.clock.now().toISOString(),
    });
    return signedIn.opened;
  }

  private async refuseUnauthorizedUser(account: { id: string; email: string }, meta: RequestMeta): Promise<void> {
    try {
      this.gate.check(account.email);
    } catch (error) {
      await this.audit.record({
        type: 'login_failed',
        userId: account.id,
        ip: meta.ip,
        userAgent: meta.userAgent,
        metadata: { reason: 'not_authorized_user' },
      });
      throw error;
    }
  }

  /**
   * POST /auth/refresh. With an Idempotency-Key, a retry (same key and token) after the reuse
   * grace still gets the pair the first rotation issued, while that pair is unused: a lost
   * answer does not sign the device out. Once that pair was used, the old token is reuse again.
   */
  async refresh(refreshToken: string, meta: RequestMeta, idempotencyKey?: string): Promise<SignInResult> {
    if (!idempotencyKey) return { pair: await this.rotate(refreshToken, meta), replayed: false };
    // rotation keeps the device session: the one this token belongs to
    const holder = await this.db.getRepository(RefreshToken).findOne({ where: { tokenHash: sha256(refreshToken) }, select: { userId: true, sessionId: true } });
    if (!holder) throw new AppError('invalid_token', 'Unknown refresh token');
    const claim = await this.replays.claim('POST /auth/refresh', holder.userId, idempotencyKey, sha256(refreshToken), refreshToken);
    if (claim.outcome === 'replay') {
      const pair = claim.kept ? await this.replaySignIn(holder.userId, claim.kept) : null;
      if (pair) return { pair, replayed: true };
      // the pair it issued was used or ended since: presenting this token again is what it always is (reuse)
      return { pair: await this.rotate(refreshToken, meta), replayed: false };
    }
    try {
      const pair = await this.rotate(refreshToken, meta);
      await this.replays.keep(claim, { sessionId: holder.sessionId, refreshToken: pair.refreshToken });
      return { pair, replayed: false };
    } catch (error) {
      await this.replays.release(claim);
      throw error;
    }
  }

  /**
   * Rotates a refresh token. A token presented again within the grace period (a retried
   * request, two tabs) gets the same new pair; later, it is reuse: the whole device session
   * is revoked.
   */
  private async rotate(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    const hash = sha256(refreshToken);
    const now = this.clock.now();
    const graceKey = redisKeys.rotatedRefreshToken(hash);
    const rotated = await this.db.transaction(async (manager) => {
      const newId = this.ids.uuid();
      const [row] = await updateReturning<{ session_id: string; user_id: string }>(
        manager,
        'UPDATE refresh_tokens SET revoked = true, revoked_at = $1, replaced_by = $2 WHERE token_hash = $3 AND NOT revoked AND expires_at > $1 RETURNING session_id, user_id',
        [now, newId, hash],
      );
      if (!row) return null;
      const session = await manager.getRepository(DeviceSession).findOne({ where: { id: row.session_id }, lock: { mode: 'pessimistic_write' } });
      if (!session || session.revokedAt || session.expiresAt <= now) throw new AppError('session_revoked', 'This session was signed out');
      const endsAt = this.sessionEnd(session.createdAt);
      if (endsAt <= now) throw new AppError('token_expired', 'This session has reached its maximum lifetime: sign in again');
      const account = await this.accounts.findSummary(row.user_id, manager);
      if (!account) throw new AppError('session_revoked', 'This account no longer exists');
      if (account.isBanned) throw new AppError('account_banned', 'This account is banned');
      this.gate.check(account.email);
      const pair = await this.issuePair(manager, account, session.id, newId, endsAt);
      await manager.update(DeviceSession, { id: session.id }, { lastUsedAt: now, expiresAt: this.slidingExpiry(now, endsAt), ip: meta.ip });
      // Stored before commit: a concurrent refresh with the same token waits on the row lock
      // above and then finds the pair here.
      await this.withRedis(() => this.redis.set(graceKey, seal(rotationSecret(refreshToken), pair), 'PX', this.settings.reuseGraceMs));
      return pair;
    });
    if (rotated) return rotated;
    return this.refreshOfUsedToken(refreshToken, hash, graceKey, now, meta);
  }

  private async refreshOfUsedToken(refreshToken: string, hash: string, graceKey: string, now: Date, meta: RequestMeta): Promise<TokenPair> {
    const token = await this.db.getRepository(RefreshToken).findOne({ where: { tokenHash: hash } });
    if (!token) throw new AppError('invalid_token', 'Unknown refresh token');
    if (!token.revoked) throw new AppError('token_expired', 'The refresh token has expired: sign in again');
    if (!token.replacedBy) throw new AppError('session_revoked', 'This session was signed out');
    // Only the immediately previous token gets the grace, and only while its successor is the
    // live token: an older one would let a thief walk the chain up to the current pair.
    if (token.revokedAt && now.getTime() - token.revokedAt.getTime() <= this.settings.reuseGraceMs && (await this.isLive(token.replacedBy))) {
      const sealed = await this.withRedis(() => this.redis.get(graceKey));
      if (sealed) return unseal<TokenPair>(rotationSecret(refreshToken), sealed);
      throw new AppError('refresh_in_progress', 'This refresh token is being rotated; retry in a moment');
    }
    const revoked = await this.db.transaction(async (manager) => {
      const ids = await this.revokeSessions(manager, { sessionId: token.sessionId }, 'token_reused');
      await this.audit.record(
        { type: 'refresh_token_reused', userId: token.userId, ip: meta.ip, userAgent: meta.userAgent, metadata: { sessionId: token.sessionId } },
        manager,
      );
      return ids;
    });
    await this.tokens.denySessions([token.sessionId, ...revoked]);
    this.logger.warn({ userId: token.userId, sessionId: token.sessionId }, 'refresh token reuse: session revoked');
    throw new AppError('token_reused', 'This refresh token was already used; the session has been signed out');
  }

  /** Redis work an answer depends on (failure counters, the rotation grace): without Redis, 503. */
  private async withRedis<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch {
      throw new DependencyUnavailableError('Sign-in is unavailable for a moment (Redis is unavailable); try again shortly');
    }
  }

  private async isLive(refreshTokenId: string): Promise<boolean> {
    return this.db.getRepository(RefreshToken).exists({ where: { id: refreshTokenId, revoked: false } });
  }

  /**
   * For the operator's command line only (there is no HTTP way to become admin): promotes an
   * existing account, or creates an admin account with `password`.
   */
  async ensureAdmin(email: string, password: string | undefined): Promise<'created' | 'promoted' | 'already_admin'> {
    const existing = await this.accounts.findCredentials(email);
    if (existing && !existing.deleted) {
      if (existing.role === 'admin') return 'already_admin';
      await this.db.transaction(async (manager) => {
        await this.accounts.setRole(manager, existing.id, 'admin');
        await this.audit.record({ type: 'role_changed', userId: existing.id, metadata: { from: existing.role, to: 'admin', by: 'command line' } }, manager);
      });
      return 'promoted';
    }
    if (!password) throw new AppError('validation_failed', 'No account with this e-mail: give a password to create one');
    const passwordHash = await this.hasher.hash(password);
    await this.db.transaction(async (manager) => {
      const user = await this.accounts.create(manager, { email, passwordHash, role: 'admin' });
      await this.accounts.markVerified(manager, user.id);
      await this.audit.record({ type: 'register', userId: user.id, metadata: { role: 'admin', by: 'command line' } }, manager);
    });
    return 'created';
  }

  /**
   * Deletes the caller's account (soft): the password confirms it when the account has one;
   * every session ends at once.
   */
  /** The signed-in account (GET /auth/me): one prepared primary-key read. */
  async account(userId: string): Promise<{ id: string; email: string; role: Role; isVerified: boolean; createdAt: Date }> {
    const account = await this.accounts.findSummary(userId);
    if (!account) throw new AppError('session_revoked', 'This account no longer exists');
    return { id: account.id, email: account.email, role: account.role, isVerified: account.isVerified, createdAt: account.createdAt };
  }

  async deleteAccount(auth: AuthContext, password: string | undefined, meta: RequestMeta): Promise<void> {
    const account = await this.accounts.findCredentials(auth.email);
    if (!account || account.deleted || account.id !== auth.userId) throw new AppError('session_revoked', 'This account no longer exists');
    if (account.passwordHash && !(password !== undefined && (await this.hasher.verify(password, account.passwordHash)))) {
      throw new AppError('invalid_credentials', 'Confirm with your current password');
    }
    const { sessions, deleteFiles } = await this.db.transaction(async (manager) => {
      const revoked = await this.revokeSessions(manager, { userId: account.id }, 'account_deleted');
      const afterCommit = await this.accounts.softDelete(manager, account.id);
      await this.audit.record({ type: 'account_deleted', userId: account.id, ip: meta.ip, userAgent: meta.userAgent }, manager);
      return { sessions: revoked, deleteFiles: afterCommit };
    });
    await this.tokens.denySessions(sessions);
    await deleteFiles();
    await this.events.publish('user.deleted', { userId: account.id });
  }

  async logout(auth: AuthContext, meta: RequestMeta): Promise<void> {
    await this.endSessions(auth.userId, { sessionId: auth.sessionId }, 'logout', meta);
  }

  async logoutAll(auth: AuthContext, meta: RequestMeta): Promise<void> {
    await this.endSessions(auth.userId, { userId: auth.userId }, 'logout_all', meta);
  }

  async revokeSession(auth: AuthContext, sessionId: string, meta: RequestMeta): Promise<void> {
    const owned = await this.db.getRepository(DeviceSession).exists({ where: { id: sessionId, userId: auth.userId, revokedAt: IsNull() } });
    if (!owned) throw new NotFoundError('Session');
    await this.endSessions(auth.userId, { sessionId }, 'session_revoked', meta);
  }

  /**
   * Signs a user out everywhere (a ban, a reset done by someone else): refresh tokens
   * revoked in the caller's transaction; call `denySessions` with the result after commit.
   */
  async revokeAllSessions(manager: EntityManager, userId: string, reason: string): Promise<string[]> {
    return this.revokeSessions(manager, { userId }, reason);
  }

  async denySessions(sessionIds: string[]): Promise<void> {
    await this.tokens.denySessions(sessionIds);
  }

  /** The device id a live session signed in with (what other modules key per-device state by); null once it ended. */
  /**
   * Whether the caller proved who they are just now, for a sensitive read: the password
   * re-entered (a wrong one is invalid_credentials), or a sign-in (the session's start) within
   * `maxAgeMs`. Otherwise 403 recent_login_required.
   */
  async confirmIdentity(auth: AuthContext, password: string | undefined, maxAgeMs: number): Promise<'password' | 'recent_login'> {
    if (password !== undefined) {
      const account = await this.accounts.findCredentials(auth.email);
      if (!account || account.deleted || account.id !== auth.userId) throw new AppError('session_revoked', 'This account no longer exists');
      if (!account.passwordHash || !(await this.hasher.verify(password, account.passwordHash)))
        throw new AppError('invalid_credentials', 'The password is not right');
      return 'password';
    }
    const session = await this.db.getRepository(DeviceSession).findOne({ where: { id: auth.sessionId, revokedAt: IsNull() }, select: { createdAt: true } });
    if (session && this.clock.now().getTime() - session.createdAt.getTime() <= maxAgeMs) return 'recent_login';
    throw new AppError(
      'recent_login_required',
      `Sign in again (or send your password) to see this: it needs a sign-in from the last ${Math.round(maxAgeMs / 60_000)} minutes`,
    );
  }

  async sessionDevice(sessionId: string): Promise<string | null> {
    const session = await this.db.getRepository(DeviceSession).findOne({ where: { id: sessionId, revokedAt: IsNull() }, select: { deviceId: true } });
    return session?.deviceId ?? null;
  }

  async listSessions(auth: AuthContext): Promise<SessionView[]> {
    const sessions = await this.db.getRepository(DeviceSession).find({
      where: { userId: auth.userId, revokedAt: IsNull() },
      order: { lastUsedAt: 'DESC' },
    });
    const now = this.clock.now();
    return sessions
      .filter((session) => session.expiresAt > now)
      .map((session) => ({
        id: session.id,
        deviceId: session.deviceId,
        platform: session.platform,
        userAgent: session.userAgent,
        ip: session.ip,
        createdAt: session.createdAt,
        lastUsedAt: session.lastUsedAt,
        current: session.id === auth.sessionId,
      }));
  }

  /** GET /auth/sessions/stats: the caller's live sessions by platform, the latest use of any, and the sign-ins of the last 30 days. */
  async sessionStats(auth: AuthContext): Promise<SessionStats> {
    const now = this.clock.now();
    const [live] = await this.db.query<Array<{ ios: number; android: number; web: number; last_activity_at: Date | null }>>(
      `SELECT count(*) FILTER (WHERE platform = 'ios')::int AS ios, count(*) FILTER (WHERE platform = 'android')::int AS android,
              count(*) FILTER (WHERE platform = 'web')::int AS web, max(last_used_at) AS last_activity_at
       FROM device_sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
      [auth.userId, now],
    );
    // ended sessions count too while they are on record (until they would have expired)
    const [recent] = await this.db.query<Array<{ created: number }>>(
      'SELECT count(*)::int AS created FROM device_sessions WHERE user_id = $1 AND created_at > $2',
      [auth.userId, new Date(now.getTime() - STATS_RECENT_MS)],
    );
    const byPlatform = { ios: live?.ios ?? 0, android: live?.android ?? 0, web: live?.web ?? 0 };
    return {
      active: byPlatform.ios + byPlatform.android + byPlatform.web,
      byPlatform,
      lastActivityAt: live?.last_activity_at ?? null,
      createdLast30Days: recent?.created ?? 0,
    };
  }

  /**
   * POST /auth/sessions/:id/extend: the session (one of the caller's) stays signed in another
   * JWT_REFRESH_EXPIRY from now, never past its absolute end (JWT_SESSION_MAX_LIFETIME after
   * sign-in). Its live refresh token moves with it. Another user's session is 404 like a
   * missing one; an ended one 409 session_ended; a browser session extends itself with every use.
   */
  async extendSession(auth: AuthContext, sessionId: string): Promise<{ id: string; expiresAt: Date; endsAt: Date }> {
    const now = this.clock.now();
    return this.db.transaction(async (manager) => {
      const session = await manager
        .getRepository(DeviceSession)
        .findOne({ where: { id: sessionId, userId: auth.userId }, lock: { mode: 'pessimistic_write' } });
      if (!session) throw new NotFoundError('Session');
      if (session.revokedAt) throw new AppError('session_ended', 'This session was signed out: it cannot be extended', { reason: 'revoked' });
      const endsAt = this.sessionEnd(session.createdAt);
      if (session.expiresAt <= now || endsAt <= now)
        throw new AppError('session_ended', 'This session has expired: it cannot be extended', { reason: 'expired' });
      if (await this.cookies.isBrowserSession(manager, session.id)) {
        throw new AppError('session_not_extendable', 'A browser session is extended by using it, up to its maximum lifetime');
      }
      // never shortened (a longer expiry stays), never past the absolute end
      const expiresAt = new Date(Math.min(Math.max(session.expiresAt.getTime(), now.getTime() + this.settings.refreshTtlMs), endsAt.getTime()));
      await manager.update(DeviceSession, { id: session.id }, { expiresAt });
      await manager.update(RefreshToken, { sessionId: session.id, revoked: false }, { expiresAt });
      return { id: session.id, expiresAt, endsAt };
    });
  }

  /**
   * After an authenticated request (off its response path): the session's last_used_at, written
   * at most once per SESSION_ACTIVITY_INTERVAL_MS. The conditional UPDATE is what holds across
   * instances; the local map only spares the database a query that would change nothing.
   */
  async recordSessionActivity(sessionId: string): Promise<void> {
    const now = this.clock.now();
    const last = this.sessionsTouched.get(sessionId);
    if (last !== undefined && now.getTime() - last < SESSION_ACTIVITY_INTERVAL_MS) return;
    if (this.sessionsTouched.size >= 100_000) this.sessionsTouched.clear();
    this.sessionsTouched.set(sessionId, now.getTime());
    await this.db.query('UPDATE device_sessions SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL AND last_used_at <= $3', [
      sessionId,
      now,
      new Date(now.getTime() - SESSION_ACTIVITY_INTERVAL_MS),
    ]);
  }

  /**
   * Accepted at once, whether or not the account exists: the lookup, the token and the mail
   * run in a job, so a known and an unknown address answer alike.
   */
  async requestPasswordReset(email: string, meta: RequestMeta): Promise<void> {
    const payload: PasswordResetPayload = { email, ip: meta.ip, userAgent: meta.userAgent };
    await this.jobs.enqueue(PASSWORD_RESET_JOB, payload);
  }

  /** Deletes what can no longer be used: expired device sessions (with their refresh tokens), reset and verification links. */
  async purgeExpired(): Promise<{ sessions: number; refreshTokens: number; resetTokens: number; verificationTokens: number }> {
    const now = this.clock.now();
    return this.db.transaction(async (manager) => {
      const purge = async (table: string) => {
        const [, affected] = await manager.query<[unknown, number]>(`DELETE FROM ${table} WHERE expires_at <= $1`, [now]);
        return affected;
      };
      const refreshTokens = await purge('refresh_tokens');
      return {
        refreshTokens,
        sessions: await purge('device_sessions'),
        resetTokens: await purge('password_reset_tokens'),
        verificationTokens: await purge('email_verification_tokens'),
      };
    });
  }

  /** The work of a forgot-password request (the auth.password-reset job). */
  async sendResetLink(email: string, meta: RequestMeta): Promise<void> {
    const account = await this.accounts.findCredentials(email);
    if (!account || account.deleted || account.isBanned) return;
    const token = opaqueToken();
    const issued = await this.db.transaction(async (manager) => {
      // One request per account at a time, so concurrent ones cannot all pass the count.
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`password-reset:${account.id}`]);
      const since = new Date(this.clock.now().getTime() - RESET_MAILS_WINDOW_MS);
      const [{ recent }] = await manager.query<[{ recent: number }]>(
        'SELECT count(*)::int AS recent FROM password_reset_tokens WHERE user_id = $1 AND created_at > $2',
        [account.id, since],
      );
      if (recent >= RESET_MAILS_PER_WINDOW) return false;
      await this.insertOneTimeToken(manager, PasswordResetToken, account.id, token, RESET_TTL_MS);
      await this.audit.record({ type: 'password_reset_requested', userId: account.id, ip: meta.ip, userAgent: meta.userAgent }, manager);
      return true;
    });
    if (!issued) return;
    await this.mail.send({
      to: account.email,
      ...renderMail('reset-password', { link: this.link('/reset-password', token), expiresInMinutes: RESET_TTL_MS / 60_000 }),
    });
  }

  async resetPassword(token: string, newPassword: string, meta: RequestMeta): Promise<void> {
    const passwordHash = await this.hasher.hash(newPassword);
    const { sessions: revoked, account } = await this.db.transaction(async (manager) => {
      const userId = await this.useOneTimeToken(manager, PasswordResetToken, token);
      if (!userId) throw new AppError('invalid_reset_token', 'This reset link is invalid, expired or already used');
      await this.accounts.setPassword(manager, userId, passwordHash);
      // Any other reset link of this account dies with the password it was meant to replace.
      await manager.update(PasswordResetToken, { userId, used: false }, { used: true, usedAt: this.clock.now() });
      const sessions = await this.revokeSessions(manager, { userId }, 'password_reset');
      await this.audit.record(
        { type: 'password_reset', userId, ip: meta.ip, userAgent: meta.userAgent, metadata: { sessionsRevoked: sessions.length } },
        manager,
      );
      return { sessions, account: await this.accounts.findSummary(userId, manager) };
    });
    await this.tokens.denySessions(revoked);
    // The notifications module tells the user (in-app and by e-mail).
    if (account) await this.events.publish('password.changed', { userId: account.id, at: this.clock.now().toISOString() });
  }

  async verifyEmail(token: string, meta: RequestMeta): Promise<void> {
    await this.db.transaction(async (manager) => {
      const userId = await this.useOneTimeToken(manager, EmailVerificationToken, token);
      if (!userId) throw new AppError('invalid_verification_token', 'This verification link is invalid, expired or already used');
      await this.accounts.markVerified(manager, userId);
      await this.audit.record({ type: 'email_verified', userId, ip: meta.ip, userAgent: meta.userAgent }, manager);
    });
  }

  async resendVerification(auth: AuthContext): Promise<void> {
    const account = await this.accounts.findSummary(auth.userId);
    if (!account) throw new NotFoundError('Account');
    if (account.isVerified) throw new AppError('already_verified', 'This e-mail address is already verified');
    const token = opaqueToken();
    await this.db.transaction((manager) => this.insertOneTimeToken(manager, EmailVerificationToken, account.id, token, VERIFICATION_TTL_MS));
    await this.sendMail({
      to: account.email,
      ...renderMail('verify-email', { link: this.link('/verify-email', token), expiresInMinutes: VERIFICATION_TTL_MS / 60_000 }),
    });
  }

  private link(page: EmailPage, token: string): string {
    const url = new URL(this.settings.emailPages[page]);
    url.searchParams.set('token', token);
    return url.toString();
  }

  /**
   * Queued, so its latency cannot reveal whether an account exists and the provider's cannot
   * hold the request. A queue that cannot take it fails nothing the user already has.
   */
  private async sendMail(message: MailMessage): Promise<void> {
    await this.mail.send(message).catch((error: unknown) => this.logger.error({ err: error, subject: message.subject }, 'could not queue an e-mail'));
  }

  private async insertOneTimeToken(manager: EntityManager, entity: OneTimeTokenEntity, userId: string, token: string, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    await manager.insert(entity, { id: this.ids.uuid(), userId, tokenHash: sha256(token), expiresAt: new Date(now.getTime() + ttlMs), createdAt: now });
  }

  /** Marks a one-time token used if it is unused and unexpired; of concurrent uses one wins. */
  private async useOneTimeToken(manager: EntityManager, entity: OneTimeTokenEntity, token: string): Promise<string | null> {
    const now = this.clock.now();
    const table = manager.getRepository(entity).metadata.tableName;
    const [row] = await updateReturning<{ user_id: string }>(
      manager,
      `UPDATE ${table} SET used = true, used_at = $1 WHERE token_hash = $2 AND NOT used AND expires_at > $1 RETURNING user_id`,
      [now, sha256(token)],
    );
    return row?.user_id ?? null;
  }

  private async openSession(
    manager: EntityManager,
    account: { id: string; email: string; role: Role },
    device: Device,
    meta: RequestMeta,
  ): Promise<OpenedSession> {
    const now = this.clock.now();
    const session = {
      id: this.ids.uuid(),
      userId: account.id,
      deviceId: device.deviceId,
      platform: device.platform,
      userAgent: meta.userAgent?.slice(0, 512) ?? null,
      ip: meta.ip,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: this.slidingExpiry(now, this.sessionEnd(now)),
    };
    await manager.insert(DeviceSession, session);
    return { pair: await this.issuePair(manager, account, session.id, this.ids.uuid(), this.sessionEnd(now)), sessionId: session.id };
  }

  /** A browser session: its device session, sliding by COOKIE_SESSION_TTL up to COOKIE_SESSION_MAX_LIFETIME, and its cookie. */
  private async openBrowserSession(manager: EntityManager, account: AccountSummary, device: Device, meta: RequestMeta): Promise<BrowserSession> {
    const now = this.clock.now();
    const endsAt = this.cookies.endOf(now);
    const id = this.ids.uuid();
    await manager.insert(DeviceSession, {
      id,
      userId: account.id,
      deviceId: device.deviceId,
      platform: device.platform,
      userAgent: meta.userAgent?.slice(0, 512) ?? null,
      ip: meta.ip,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: this.cookies.expiry(now, endsAt),
    });
    return { token: await this.cookies.open(manager, id, endsAt), endsAt, account };
  }

  private sessionEnd(signedInAt: Date): Date {
    return new Date(signedInAt.getTime() + this.settings.sessionMaxLifetimeMs);
  }

  private slidingExpiry(now: Date, sessionEnd: Date): Date {
    return new Date(Math.min(now.getTime() + this.settings.refreshTtlMs, sessionEnd.getTime()));
  }

  private async issuePair(
    manager: EntityManager,
    account: { id: string; email: string; role: Role },
    sessionId: string,
    tokenId: string,
    sessionEnd: Date,
  ): Promise<TokenPair> {
    const now = this.clock.now();
    const refreshToken = opaqueToken();
    await manager.insert(RefreshToken, {
      id: tokenId,
      sessionId,
      userId: account.id,
      tokenHash: sha256(refreshToken),
      expiresAt: this.slidingExpiry(now, sessionEnd),
      createdAt: now,
    });
    const accessToken = await this.tokens.issueAccessToken({ userId: account.id, email: account.email, role: account.role, sessionId });
    return {
      accessToken,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.tokens.accessTtlSeconds,
      user: { id: account.id, email: account.email, role: account.role },
    };
  }

  /** Revokes matching live sessions and their refresh tokens; returns the session ids. */
  private async revokeSessions(manager: EntityManager, match: { userId?: string; deviceId?: string; sessionId?: string }, reason: string): Promise<string[]> {
    const where = {
      revokedAt: IsNull(),
      ...(match.userId ? { userId: match.userId } : {}),
      ...(match.deviceId ? { deviceId: match.deviceId } : {}),
      ...(match.sessionId ? { id: match.sessionId } : {}),
    };
    const sessions = await manager.getRepository(DeviceSession).find({ where, select: { id: true } });
    const ids = sessions.map((session) => session.id);
    if (!ids.length) return [];
    const now = this.clock.now();
    await manager.update(DeviceSession, { id: In(ids) }, { revokedAt: now, revokeReason: reason });
    await manager.update(RefreshToken, { sessionId: In(ids), revoked: false }, { revoked: true, revokedAt: now });
    return ids;
  }

  private async endSessions(
    userId: string,
    match: { userId?: string; sessionId?: string },
    type: 'logout' | 'logout_all' | 'session_revoked',
    meta: RequestMeta,
  ): Promise<void> {
    const ids = await this.db.transaction(async (manager) => {
      const revoked = await this.revokeSessions(manager, match, type);
      await this.audit.record({ type, userId, ip: meta.ip, userAgent: meta.userAgent, metadata: { sessions: revoked.length } }, manager);
      return revoked;
    });
    await this.tokens.denySessions(ids);
    if (!ids.length) return;
    const deviceIds =
      type === 'logout_all'
        ? 'all'
        : (await this.db.getRepository(DeviceSession).find({ where: { id: In(ids) }, select: { deviceId: true } })).map((session) => session.deviceId);
    await this.events.publish('user.signed-out', { userId, deviceIds });
  }
}
