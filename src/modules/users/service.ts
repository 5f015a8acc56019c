import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { PreparedReader } from '../../infra/sql.js';
import type { Role, RoleLookup } from '../../shared/auth.js';
import { Profile, User } from './entities.js';

/** What sign-in needs to know about an account. */
export interface Credentials {
  id: string;
  email: string;
  role: Role;
  passwordHash: string | null;
  isBanned: boolean;
  deleted: boolean;
}

export interface AccountSummary {
  id: string;
  email: string;
  role: Role;
  isVerified: boolean;
  isBanned: boolean;
  createdAt: Date;
}

interface SummaryRow {
  id: string;
  email: string;
  role: Role;
  is_verified: boolean;
  is_banned: boolean;
  created_at: Date;
}

/** Accounts and their profiles. Other modules use this service, never the tables. */
export class UsersService implements RoleLookup {
  constructor(
    private readonly db: DataSource,
    private readonly reader: PreparedReader,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
  ) {}

  /** Creates the user and its empty profile in the caller's transaction. */
  async createWithProfile(manager: EntityManager, data: { email: string; passwordHash: string | null; role?: Role }): Promise<User> {
    const now = this.clock.now();
    const user = manager.create(User, {
      id: this.ids.uuid(),
      email: data.email,
      passwordHash: data.passwordHash,
      role: data.role ?? 'student',
      createdAt: now,
      updatedAt: now,
    });
    await manager.insert(User, user);
    await manager.insert(Profile, { userId: user.id, createdAt: now, updatedAt: now });
    return user;
  }

  async emailExists(email: string, manager: EntityManager | DataSource = this.db): Promise<boolean> {
    return manager.getRepository(User).exists({ where: { email } });
  }

  async findCredentials(email: string): Promise<Credentials | null> {
    const user = await this.db.getRepository(User).findOne({ where: { email } });
    return user
      ? { id: user.id, email: user.email, role: user.role, passwordHash: user.passwordHash, isBanned: user.isBanned, deleted: user.deletedAt !== null }
      : null;
  }

  /** The hot read behind GET /auth/me: one prepared primary-key lookup. */
  async findSummary(id: string): Promise<AccountSummary | null> {
    const row = await this.reader.one<SummaryRow>(
      'users-summary-by-id',
      'SELECT id, email, role, is_verified, is_banned, created_at FROM users WHERE id = $1 AND deleted_at IS NULL',
      [id],
    );
    return row ? { id: row.id, email: row.email, role: row.role, isVerified: row.is_verified, isBanned: row.is_banned, createdAt: row.created_at } : null;
  }

  async currentRole(userId: string): Promise<Role | null> {
    const row = await this.reader.one<{ role: Role }>('users-role-by-id', 'SELECT role FROM users WHERE id = $1 AND deleted_at IS NULL AND NOT is_banned', [
      userId,
    ]);
    return row?.role ?? null;
  }

  async setPassword(manager: EntityManager, userId: string, passwordHash: string): Promise<void> {
    await manager.update(User, { id: userId }, { passwordHash, updatedAt: this.clock.now(), version: () => 'version + 1' });
  }

  async markVerified(manager: EntityManager, userId: string): Promise<void> {
    await manager.update(User, { id: userId }, { isVerified: true, updatedAt: this.clock.now() });
  }

  async setRole(manager: EntityManager, userId: string, role: Role): Promise<void> {
    await manager.update(User, { id: userId }, { role, updatedAt: this.clock.now(), version: () => 'version + 1' });
  }
}
