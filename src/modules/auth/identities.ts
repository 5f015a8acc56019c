import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { EventBus } from '../../infra/events.js';
import type { IdGenerator } from '../../infra/ids.js';
import { isUniqueViolation, type PreparedReader } from '../../infra/sql.js';
import type { Principal } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import type { AuditService } from '../audit/index.js';
import type { AccountsService, AccountSummary } from '../users/index.js';
import { ExternalIdentity } from './entities.js';
import type { ExternalClaims, TrustedIssuers } from './issuers.js';
import type { RequestMeta } from './service.js';
import type { SingleUserGate } from './single-user.js';
import { sha256 } from './tokens.js';

/** An identity linked to an account, as the link route answers it. */
export interface LinkedIdentity {
  issuer: string;
  subject: string;
  email: string | null;
  linkedAt: Date;
}

export interface ExternalIdentitiesDependencies {
  db: DataSource;
  reader: PreparedReader;
  issuers: TrustedIssuers;
  accounts: AccountsService;
  audit: AuditService;
  gate: SingleUserGate;
  clock: Clock;
  ids: IdGenerator;
  events: EventBus;
}

/**
 * Stands in for the e-mail of an account made from a token that carries none (Privy's and
 * Clerk's tokens by default): unique per identity, never deliverable (.invalid), never a
 * password account's.
 */
function placeholderEmail(claims: ExternalClaims): string {
  return `${sha256(`${claims.issuer}\n${claims.subject}`).slice(0, 32)}@external.invalid`;
}

function linkRequired(): AppError {
  return new AppError(
    'account_link_required',
    'An account with this e-mail exists and is not linked to this identity: sign in to it, then link the identity with POST /auth/exchange/link { token }',
  );
}

/**
 * Accounts found by an issuer's (iss, sub), never silently by e-mail: an identity seen for the
 * first time gets a new account, unless its e-mail already has one, which must link it itself
 * (signed in, with POST /auth/exchange/link). GitHub sign-in links through the same table.
 */
export class ExternalIdentities {
  constructor(private readonly dependencies: ExternalIdentitiesDependencies) {}

  /** The trusted issuers a client may sign in with. */
  issuers(): ReturnType<TrustedIssuers['list']> {
    return this.dependencies.issuers.list();
  }

  async verify(token: string): Promise<ExternalClaims> {
    return this.dependencies.issuers.verify(token);
  }

  claimsTrustedIssuer(token: string): boolean {
    return this.dependencies.issuers.claimsTrustedIssuer(token);
  }

  /**
   * In the caller's transaction: the account these claims are, locked (FOR SHARE) until it
   * ends. The linked account; for an identity never seen, a new account with the token's
   * e-mail, unless an account has that e-mail (409 account_link_required). Concurrent first
   * uses of one identity are serialised, so they make one account.
   */
  async identify(manager: EntityManager, claims: ExternalClaims, meta: RequestMeta | null): Promise<{ account: AccountSummary; created: boolean }> {
    const { accounts, gate, audit } = this.dependencies;
    await this.lockIdentity(manager, claims);
    const linked = await this.linkedUserId(manager, claims);
    if (linked) {
      const account = await accounts.lockSummary(manager, linked);
      if (account) {
        gate.check(account.email);
        return { account, created: false };
      }
      // the account was deleted: the identity starts afresh
      await manager.delete(ExternalIdentity, { issuer: claims.issuer, subject: claims.subject });
    }
    const email = claims.email ?? placeholderEmail(claims);
    gate.check(email);
    if (await accounts.emailExists(email, manager)) throw linkRequired();
    const created = await accounts.create(manager, { email, passwordHash: null });
    if (claims.email && claims.emailVerified) await accounts.markVerified(manager, created.id);
    await this.insertLink(manager, created.id, claims);
    const where = { ip: meta?.ip ?? null, userAgent: meta?.userAgent ?? null };
    await audit.record({ type: 'register', userId: created.id, ...where, metadata: { via: 'external_token', issuer: claims.issuer } }, manager);
    await audit.record({ type: 'external_identity_linked', userId: created.id, ...where, metadata: { issuer: claims.issuer, how: 'new_account' } }, manager);
    const account = await accounts.lockSummary(manager, created.id);
    if (!account) throw new Error('the account created for an external identity cannot be read back');
    return { account, created: true };
  }

  /** Links these claims to the signed-in account `userId`, which confirmed it is its holder; a link to it already is kept. */
  async link(userId: string, claims: ExternalClaims, meta: RequestMeta): Promise<LinkedIdentity> {
    return this.dependencies.db.transaction(async (manager) => {
      await this.lockIdentity(manager, claims);
      const existing = await manager.findOne(ExternalIdentity, { where: { issuer: claims.issuer, subject: claims.subject } });
      if (existing && existing.userId !== userId) throw new AppError('identity_already_linked', 'This identity is linked to another account');
      if (existing) return { issuer: existing.issuer, subject: existing.subject, email: existing.email, linkedAt: existing.createdAt };
      const row = await this.insertLink(manager, userId, claims);
      await this.dependencies.audit.record(
        { type: 'external_identity_linked', userId, ip: meta.ip, userAgent: meta.userAgent, metadata: { issuer: claims.issuer, how: 'confirmed' } },
        manager,
      );
      return { issuer: row.issuer, subject: row.subject, email: row.email, linkedAt: row.createdAt };
    });
  }

  /**
   * The caller of an external token used directly as a bearer token: its linked account, or a
   * new one on first use (as POST /auth/exchange would make). Banned accounts are refused.
   */
  async principal(token: string): Promise<Principal> {
    const { accounts, gate, reader, db, events } = this.dependencies;
    const claims = await this.verify(token);
    const linked = await reader.one<{ user_id: string }>(
      'external-identity-user',
      'SELECT user_id FROM external_identities WHERE issuer = $1 AND subject = $2',
      [claims.issuer, claims.subject],
    );
    let account = linked ? await accounts.findSummary(linked.user_id) : null;
    if (!account) {
      const identified = await this.withIdentityRace(() => db.transaction((manager) => this.identify(manager, claims, null)));
      account = identified.account;
      if (identified.created) await events.publish('user.registered', { userId: account.id, email: account.email });
    }
    if (account.isBanned) throw new AppError('account_banned', 'This account is banned');
    gate.check(account.email);
    return { userId: account.id, email: account.email, role: account.role };
  }

  /** Forgets the identities of a deleted account: a later sign-in with them makes a new account. */
  async forget(userId: string): Promise<void> {
    await this.dependencies.db.getRepository(ExternalIdentity).delete({ userId });
  }

  /**
   * Runs `attempt` (an `identify` transaction); an account made meanwhile with the same e-mail
   * by another identity is an account to link, not an error.
   */
  async withIdentityRace<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (error) {
      if (isUniqueViolation(error, 'users_email_unique')) throw linkRequired();
      throw error;
    }
  }

  private async lockIdentity(manager: EntityManager, claims: ExternalClaims): Promise<void> {
    await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`external-identity:${claims.issuer}\n${claims.subject}`]);
  }

  private async linkedUserId(manager: EntityManager, claims: ExternalClaims): Promise<string | null> {
    const row = await manager.findOne(ExternalIdentity, { where: { issuer: claims.issuer, subject: claims.subject }, select: { userId: true } });
    return row?.userId ?? null;
  }

  private async insertLink(manager: EntityManager, userId: string, claims: ExternalClaims): Promise<ExternalIdentity> {
    const row = {
      id: this.dependencies.ids.uuid(),
      userId,
      issuer: claims.issuer,
      subject: claims.subject,
      email: claims.email,
      createdAt: this.dependencies.clock.now(),
    };
    await manager.insert(ExternalIdentity, row);
    return Object.assign(new ExternalIdentity(), row);
  }
}
