import { randomInt } from 'node:crypto';
import { IsNull, type DataSource, type EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { AuditService } from '../audit/index.js';
import type { AccountsService } from '../users/index.js';
import { InviteKey } from './entities.js';

// No 0/O or 1/I: keys are read aloud and typed by hand.
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

function newKey(): string {
  const part = () => Array.from({ length: 4 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  return `PARLEY-${part()}-${part()}`;
}

export type InviteStatus = 'unused' | 'used' | 'expired';
export type InviteProblem = 'not_found' | 'used' | 'expired' | 'email_mismatch';

export interface InviteView {
  key: string;
  status: InviteStatus;
  email: string | null;
  expiresAt: Date | null;
  usedAt: Date | null;
  usedBy: string | null;
  createdAt: Date;
}

/** Who signed up with which key, and when. */
export interface BetaUserView {
  key: string;
  userId: string;
  /** The account's e-mail now; null once the account is deleted. */
  email: string | null;
  /** The address the key was bound to, if any. */
  invitedEmail: string | null;
  signedUpAt: Date;
}

export interface BetaServiceDependencies {
  db: DataSource;
  clock: Clock;
  ids: IdGenerator;
  audit: AuditService;
  /** Whose account used a key: e-mails by id, and the lookup by e-mail. */
  accounts: Pick<AccountsService, 'emailsOf' | 'findIdByEmail'>;
}

/** Private-beta invitations: single use, optionally bound to an e-mail, optionally expiring. */
export class BetaService {
  private readonly db: DataSource;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly audit: AuditService;
  private readonly accounts: BetaServiceDependencies['accounts'];

  constructor(dependencies: BetaServiceDependencies) {
    this.db = dependencies.db;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.audit = dependencies.audit;
    this.accounts = dependencies.accounts;
  }

  private view(invite: InviteKey): InviteView {
    const status: InviteStatus = invite.usedAt ? 'used' : invite.expiresAt && invite.expiresAt <= this.clock.now() ? 'expired' : 'unused';
    return {
      key: invite.key,
      status,
      email: invite.email,
      expiresAt: invite.expiresAt,
      usedAt: invite.usedAt,
      usedBy: invite.usedBy,
      createdAt: invite.createdAt,
    };
  }

  async create(adminId: string, options: { count: number; email?: string | undefined; expiresInDays?: number | undefined }): Promise<InviteView[]> {
    const now = this.clock.now();
    const expiresAt = options.expiresInDays ? new Date(now.getTime() + options.expiresInDays * 86_400_000) : null;
    const invites = Array.from({ length: options.count }, () =>
      this.db
        .getRepository(InviteKey)
        .create({ id: this.ids.uuid(), key: newKey(), email: options.email ?? null, expiresAt, createdBy: adminId, createdAt: now }),
    );
    await this.db.transaction(async (manager) => {
      await manager.save(InviteKey, invites);
      await this.audit.record({ type: 'invite_created', actorId: adminId, metadata: { count: invites.length, boundToEmail: Boolean(options.email) } }, manager);
    });
    return invites.map((invite) => this.view(invite));
  }

  async listUnused(limit: number, cursor?: string) {
    const position = decodeCursor(cursor);
    const query = this.db
      .getRepository(InviteKey)
      .createQueryBuilder('invite')
      .where('invite.used_at IS NULL')
      .andWhere('(invite.expires_at IS NULL OR invite.expires_at > :now)', { now: this.clock.now() })
      .orderBy('invite.created_at', 'DESC')
      .addOrderBy('invite.id', 'DESC')
      .take(limit + 1);
    if (position) query.andWhere('(invite.created_at, invite.id) < (:createdAt, :id)', position);
    return toPage(await query.getMany(), limit, (invite) => this.view(invite));
  }

  /**
   * The keys used to sign up, latest sign-up first, with the account's e-mail; with `email`,
   * only that account's (an address without a live account: none). Paged by (used_at, id).
   */
  async listUsers(filter: { email?: string | undefined }, limit: number, cursor?: string) {
    const position = decodeCursor(cursor);
    let userId: string | null = null;
    if (filter.email !== undefined) {
      userId = await this.accounts.findIdByEmail(filter.email);
      if (!userId) return { items: [], nextCursor: null, total: 0 };
    }
    const used = () => {
      const query = this.db.getRepository(InviteKey).createQueryBuilder('invite').where('invite.used_at IS NOT NULL').andWhere('invite.used_by IS NOT NULL');
      if (userId) query.andWhere('invite.used_by = :userId', { userId });
      return query;
    };
    const page = used()
      .orderBy('invite.used_at', 'DESC')
      .addOrderBy('invite.id', 'DESC')
      .take(limit + 1);
    if (position) page.andWhere('(invite.used_at, invite.id) < (:createdAt, :id)', position);
    const [rows, total] = await Promise.all([page.getMany(), used().getCount()]);
    const emails = await this.accounts.emailsOf([...new Set(rows.map((invite) => invite.usedBy!))]);
    const result = toPage(
      rows,
      limit,
      (invite): BetaUserView => ({
        key: invite.key,
        userId: invite.usedBy!,
        email: emails.get(invite.usedBy!) ?? null,
        invitedEmail: invite.email,
        signedUpAt: invite.usedAt!,
      }),
      (invite) => ({ createdAt: invite.usedAt!, id: invite.id }),
    );
    return { ...result, total };
  }

  async status(key: string): Promise<InviteView> {
    const invite = await this.db.getRepository(InviteKey).findOne({ where: { key: key.toUpperCase() } });
    if (!invite) throw new NotFoundError('Invite key');
    return this.view(invite);
  }

  /** Whether `key` could be used now (by `email`, when given); never reveals who it is bound to. */
  async check(key: string, email?: string): Promise<{ valid: boolean; reason?: InviteProblem }> {
    const invite = await this.db.getRepository(InviteKey).findOne({ where: { key: key.toUpperCase() } });
    const problem = this.problem(invite, email);
    return problem ? { valid: false, reason: problem } : { valid: true };
  }

  private problem(invite: InviteKey | null, email?: string): InviteProblem | null {
    if (!invite) return 'not_found';
    if (invite.usedAt) return 'used';
    if (invite.expiresAt && invite.expiresAt <= this.clock.now()) return 'expired';
    if (email !== undefined && invite.email && invite.email.toLowerCase() !== email.toLowerCase()) return 'email_mismatch';
    return null;
  }

  /** Uses the key for `userId` in the caller's transaction; of two concurrent uses exactly one wins. */
  async consume(manager: EntityManager, key: string, email: string, userId: string): Promise<void> {
    const now = this.clock.now();
    const result = await manager
      .createQueryBuilder()
      .update(InviteKey)
      .set({ usedAt: now, usedBy: userId })
      .where({ key: key.toUpperCase(), usedAt: IsNull() })
      .andWhere('(expires_at IS NULL OR expires_at > :now)', { now })
      .andWhere('(email IS NULL OR email = :email)', { email })
      .execute();
    if (!result.affected) {
      const problem = this.problem(await manager.getRepository(InviteKey).findOne({ where: { key: key.toUpperCase() } }), email) ?? 'used';
      throw new AppError('invite_invalid', `This invite key cannot be used (${problem})`, { reason: problem });
    }
    await this.audit.record({ type: 'invite_used', userId, metadata: { key: key.toUpperCase() } }, manager);
  }
}
