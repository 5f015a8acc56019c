import type { EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { Role, RoleLookup } from '../../shared/auth.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { AccountRecord, Audience, CredentialsRecord, UserListRecord, UserSearchFilter, UsersRepository } from './repository.js';
import type { ProfilesService } from './profiles.js';

/** What sign-in needs to know about an account. */
export type Credentials = CredentialsRecord;

export type AccountSummary = AccountRecord;

export type { Audience, UserSearchFilter };

export interface AccountsDependencies {
  repository: UsersRepository;
  profiles: ProfilesService;
  clock: Clock;
  ids: IdGenerator;
}

/**
 * Who a user is to Parley: credentials, role, verification, ban, deletion; and the lookups
 * auth and admin make. Other modules use this service, never the tables.
 */
export class AccountsService implements RoleLookup {
  private readonly repository: UsersRepository;
  private readonly profiles: ProfilesService;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;

  constructor(dependencies: AccountsDependencies) {
    this.repository = dependencies.repository;
    this.profiles = dependencies.profiles;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
  }

  /** Creates the account and its empty profile in the caller's transaction. */
  async create(manager: EntityManager, data: { email: string; passwordHash: string | null; role?: Role }): Promise<{ id: string; email: string; role: Role }> {
    const account = { id: this.ids.uuid(), email: data.email, passwordHash: data.passwordHash, role: data.role ?? 'student', now: this.clock.now() } as const;
    await this.repository.insertWithProfile(manager, account);
    return { id: account.id, email: account.email, role: account.role };
  }

  async emailExists(email: string, manager?: EntityManager): Promise<boolean> {
    return this.repository.emailExists(email, manager);
  }

  async findCredentials(email: string): Promise<Credentials | null> {
    return this.repository.credentialsByEmail(email);
  }

  /** The id of the live (not deleted) account with this e-mail, whatever its case: e-mails are stored lower-cased. */
  async findIdByEmail(email: string): Promise<string | null> {
    return this.repository.liveIdByEmail(email.trim().toLowerCase());
  }

  /** E-mails by account id, for the live accounts among `ids`. */
  async emailsOf(ids: string[]): Promise<Map<string, string>> {
    return ids.length ? this.repository.liveEmails(ids) : new Map();
  }

  /**
   * The hot read behind GET /auth/me: one prepared primary-key lookup. Inside a transaction,
   * pass its manager: a second pool connection there can deadlock the pool.
   */
  async findSummary(id: string, manager?: EntityManager): Promise<AccountSummary | null> {
    return this.repository.account(id, manager);
  }

  /** The account read in the caller's transaction and held (FOR SHARE) until it ends: a concurrent ban waits for it. */
  async lockSummary(manager: EntityManager, id: string): Promise<AccountSummary | null> {
    return this.repository.accountForShare(manager, id);
  }

  async currentRole(userId: string): Promise<Role | null> {
    return this.repository.activeRole(userId);
  }

  async setPassword(manager: EntityManager, userId: string, passwordHash: string): Promise<void> {
    await this.repository.setPasswordHash(manager, userId, passwordHash, this.clock.now());
  }

  /** Replaces a hash by a stronger one of the same password, unless the password changed meanwhile. */
  async upgradePasswordHash(manager: EntityManager, userId: string, currentHash: string, upgradedHash: string): Promise<void> {
    await this.repository.replacePasswordHash(manager, userId, currentHash, upgradedHash);
  }

  async markVerified(manager: EntityManager, userId: string): Promise<void> {
    await this.repository.markVerified(manager, userId, this.clock.now());
  }

  async setRole(manager: EntityManager, userId: string, role: Role): Promise<void> {
    await this.repository.setRole(manager, userId, role, this.clock.now());
  }

  /** Bans or unbans in the caller's transaction; false when there is no such (live) user. */
  async setBanned(manager: EntityManager, userId: string, banned: boolean, reason: string | null): Promise<boolean> {
    return this.repository.setBanned(manager, userId, banned, banned ? reason : null, this.clock.now());
  }

  /** Whether the account may use realtime features now (exists, not deleted, not banned). */
  async isActive(userId: string): Promise<boolean> {
    const summary = await this.findSummary(userId);
    return Boolean(summary && !summary.isBanned);
  }

  async exists(userId: string): Promise<boolean> {
    return Boolean(await this.findSummary(userId));
  }

  /**
   * Soft delete in the caller's transaction: the account can no longer sign in, personal
   * fields are cleared, rows others see (call history) stay. Returns what to run after
   * commit (deleting the avatar file).
   */
  async softDelete(manager: EntityManager, userId: string): Promise<() => Promise<void>> {
    const deleteFiles = await this.profiles.erase(manager, userId);
    await this.repository.softDeleteAccount(manager, userId, this.clock.now());
    return deleteFiles;
  }

  /**
   * Locks the user's row until the caller's transaction ends, so other modules can serialise
   * their writes about one user. False when there is no such user.
   */
  async lockForUpdate(manager: EntityManager, userId: string): Promise<boolean> {
    return this.repository.lockForUpdate(manager, userId);
  }

  /** Marks the user for an admin's review, once; true when this call flagged them. */
  async flagForReview(manager: EntityManager, userId: string): Promise<boolean> {
    return this.repository.flag(manager, userId, this.clock.now());
  }

  /** Users and new users since `since`. */
  async counts(since: Date): Promise<{ total: number; newSince: number }> {
    return this.repository.counts(since);
  }

  /** The admin's user list: search by e-mail or username, filters, newest first, with the total. */
  async search(filter: UserSearchFilter, limit: number, cursor?: string): Promise<{ items: UserListRecord[]; nextCursor: string | null; total: number }> {
    const { rows, total } = await this.repository.search(filter, limit + 1, decodeCursor(cursor));
    return { ...toPage(rows, limit, (row) => row), total };
  }

  /**
   * The next `limit` users `audience` reaches (live and not banned), by id after `afterId`: a
   * stable order, so a job that restarts from its last id skips nobody.
   */
  async recipients(audience: Audience, afterId: string | null, limit: number): Promise<string[]> {
    return this.repository.recipientIds(audience, afterId, limit);
  }

  async countRecipients(audience: Audience): Promise<number> {
    return this.repository.countRecipients(audience);
  }
}
