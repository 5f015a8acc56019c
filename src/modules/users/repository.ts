import type { DataSource, EntityManager } from 'typeorm';
import { updateReturning, type PreparedReader } from '../../infra/sql.js';
import type { Role } from '../../shared/auth.js';
import type { Keyset } from '../../shared/pagination.js';
import type { ENGLISH_LEVELS, LEARNING_GOALS } from './entities.js';

export type EnglishLevel = (typeof ENGLISH_LEVELS)[number];
export type LearningGoal = (typeof LEARNING_GOALS)[number];

export interface AccountRecord {
  id: string;
  email: string;
  role: Role;
  isVerified: boolean;
  isBanned: boolean;
  createdAt: Date;
}

export interface CredentialsRecord {
  id: string;
  email: string;
  role: Role;
  passwordHash: string | null;
  isBanned: boolean;
  deleted: boolean;
}

export interface ProfileRecord {
  username: string | null;
  displayName: string | null;
  avatarKey: string | null;
  bio: string | null;
  nativeLanguage: string | null;
  englishLevel: EnglishLevel | null;
  learningGoal: LearningGoal | null;
  country: string | null;
  timezone: string | null;
  walletAddress: string | null;
  totalPracticeMins: number;
  totalPracticeSeconds: number;
  totalSessions: number;
  streakDays: number;
  lastSessionAt: Date | null;
  version: number;
}

/** A live account with its profile. */
export type UserRecord = Omit<AccountRecord, 'isBanned'> & { profile: ProfileRecord };

/** The profile fields a user edits, by their name in the API. */
export type ProfileFields = Pick<
  ProfileRecord,
  'username' | 'displayName' | 'bio' | 'nativeLanguage' | 'englishLevel' | 'learningGoal' | 'country' | 'timezone'
>;

/** What matchmaking reads of a user. */
export interface MatchRecord {
  isBanned: boolean;
  username: string | null;
  displayName: string | null;
  englishLevel: EnglishLevel | null;
  avatarKey: string | null;
}

export interface UserSearchFilter {
  search?: string | undefined;
  role?: Role | undefined;
  banned?: boolean | undefined;
  flagged?: boolean | undefined;
}

export interface UserListRecord {
  id: string;
  email: string;
  role: Role;
  username: string | null;
  displayName: string | null;
  isBanned: boolean;
  banReason: string | null;
  flaggedAt: Date | null;
  createdAt: Date;
  lastActiveAt: Date | null;
}

const PROFILE_COLUMNS: Record<keyof ProfileFields, string> = {
  username: 'username',
  displayName: 'display_name',
  bio: 'bio',
  nativeLanguage: 'native_language',
  englishLevel: 'english_level',
  learningGoal: 'learning_goal',
  country: 'country',
  timezone: 'timezone',
};

interface AccountRow {
  id: string;
  email: string;
  role: Role;
  is_verified: boolean;
  is_banned: boolean;
  created_at: Date;
}

interface ProfileRow {
  username: string | null;
  display_name: string | null;
  avatar_key: string | null;
  bio: string | null;
  native_language: string | null;
  english_level: EnglishLevel | null;
  learning_goal: LearningGoal | null;
  country: string | null;
  timezone: string | null;
  wallet_address: string | null;
  total_practice_mins: number;
  total_practice_seconds: number;
  total_sessions: number;
  streak_days: number;
  last_session_at: Date | null;
  version: number;
}

const ACCOUNT_BY_ID = 'SELECT id, email, role, is_verified, is_banned, created_at FROM users WHERE id = $1 AND deleted_at IS NULL';

function accountOf(row: AccountRow | undefined): AccountRecord | null {
  return row ? { id: row.id, email: row.email, role: row.role, isVerified: row.is_verified, isBanned: row.is_banned, createdAt: row.created_at } : null;
}

function profileOf(row: ProfileRow): ProfileRecord {
  return {
    username: row.username,
    displayName: row.display_name,
    avatarKey: row.avatar_key,
    bio: row.bio,
    nativeLanguage: row.native_language,
    englishLevel: row.english_level,
    learningGoal: row.learning_goal,
    country: row.country,
    timezone: row.timezone,
    walletAddress: row.wallet_address,
    totalPracticeMins: row.total_practice_mins,
    totalPracticeSeconds: row.total_practice_seconds,
    totalSessions: row.total_sessions,
    streakDays: row.streak_days,
    lastSessionAt: row.last_session_at,
    version: row.version,
  };
}

/**
 * The only SQL for the users and profiles tables, in one style: parameterised SQL, rows mapped
 * to records here. A method that takes a manager runs in the caller's transaction; the hot
 * reads outside one run as named (prepared) statements straight on the pool.
 */
/** Whom a message to many users reaches: everyone, one English level, or a list of ids. */
export type Audience = { kind: 'all' } | { kind: 'level'; level: EnglishLevel } | { kind: 'userIds'; userIds: string[] } | { kind: 'role'; role: Role };

function audienceFilter(audience: Audience): { where: string; values: unknown[] } {
  const live = 'u.deleted_at IS NULL AND NOT u.is_banned';
  if (audience.kind === 'level') return { where: `${live} AND p.english_level = $1`, values: [audience.level] };
  if (audience.kind === 'userIds') return { where: `${live} AND u.id = ANY($1::uuid[])`, values: [audience.userIds] };
  if (audience.kind === 'role') return { where: `${live} AND u.role = $1`, values: [audience.role] };
  return { where: live, values: [] };
}

export class UsersRepository {
  constructor(
    private readonly db: DataSource,
    private readonly reader: PreparedReader,
  ) {}

  private select<T>(sql: string, values: unknown[], manager: EntityManager | DataSource = this.db): Promise<T[]> {
    return manager.query<T[]>(sql, values);
  }

  private write<T>(sql: string, values: unknown[], manager: EntityManager | DataSource = this.db): Promise<T[]> {
    return updateReturning<T>(manager, sql, values);
  }

  // --- accounts (the users table)

  async insertWithProfile(manager: EntityManager, account: { id: string; email: string; passwordHash: string | null; role: Role; now: Date }): Promise<void> {
    await manager.query('INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)', [
      account.id,
      account.email,
      account.passwordHash,
      account.role,
      account.now,
    ]);
    await manager.query('INSERT INTO profiles (user_id, created_at, updated_at) VALUES ($1, $2, $2)', [account.id, account.now]);
  }

  async emailExists(email: string, manager?: EntityManager): Promise<boolean> {
    const rows = await this.select<{ id: string }>('SELECT id FROM users WHERE email = $1 LIMIT 1', [email], manager);
    return rows.length > 0;
  }

  async credentialsByEmail(email: string): Promise<CredentialsRecord | null> {
    const [row] = await this.select<{ id: string; email: string; role: Role; password_hash: string | null; is_banned: boolean; deleted_at: Date | null }>(
      'SELECT id, email, role, password_hash, is_banned, deleted_at FROM users WHERE email = $1',
      [email],
    );
    return row
      ? { id: row.id, email: row.email, role: row.role, passwordHash: row.password_hash, isBanned: row.is_banned, deleted: row.deleted_at !== null }
      : null;
  }

  async liveIdByEmail(email: string): Promise<string | null> {
    const [row] = await this.select<{ id: string }>('SELECT id FROM users WHERE email = $1 AND deleted_at IS NULL', [email]);
    return row?.id ?? null;
  }

  /** A live account; inside a transaction pass its manager (a second pool connection there can deadlock the pool). */
  async account(id: string, manager?: EntityManager): Promise<AccountRecord | null> {
    return accountOf(
      manager
        ? (await this.select<AccountRow>(ACCOUNT_BY_ID, [id], manager))[0]
        : await this.reader.one<AccountRow>('users-summary-by-id', ACCOUNT_BY_ID, [id]),
    );
  }

  /** The live account, held FOR SHARE until the caller's transaction ends. */
  async accountForShare(manager: EntityManager, id: string): Promise<AccountRecord | null> {
    return accountOf((await this.select<AccountRow>(`${ACCOUNT_BY_ID} FOR SHARE`, [id], manager))[0]);
  }

  /** The role of a live, unbanned account. */
  async activeRole(id: string): Promise<Role | null> {
    const row = await this.reader.one<{ role: Role }>('users-role-by-id', 'SELECT role FROM users WHERE id = $1 AND deleted_at IS NULL AND NOT is_banned', [
      id,
    ]);
    return row?.role ?? null;
  }

  async setPasswordHash(manager: EntityManager, id: string, passwordHash: string, now: Date): Promise<void> {
    await this.write('UPDATE users SET password_hash = $2, updated_at = $3, version = version + 1 WHERE id = $1', [id, passwordHash, now], manager);
  }

  /** Replaces the hash only while it is still `currentHash`. */
  async replacePasswordHash(manager: EntityManager, id: string, currentHash: string, upgradedHash: string): Promise<void> {
    await this.write('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, currentHash, upgradedHash], manager);
  }

  async markVerified(manager: EntityManager, id: string, now: Date): Promise<void> {
    await this.write('UPDATE users SET is_verified = true, updated_at = $2 WHERE id = $1', [id, now], manager);
  }

  async setRole(manager: EntityManager, id: string, role: Role, now: Date): Promise<void> {
    await this.write('UPDATE users SET role = $2, updated_at = $3, version = version + 1 WHERE id = $1', [id, role, now], manager);
  }

  /** False when there is no such live account. */
  async setBanned(manager: EntityManager, id: string, banned: boolean, reason: string | null, now: Date): Promise<boolean> {
    const rows = await this.write<{ id: string }>(
      'UPDATE users SET is_banned = $2, ban_reason = $3, banned_at = CASE WHEN $2 THEN $4::timestamptz ELSE NULL END, updated_at = $4, version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING id',
      [id, banned, reason, now],
      manager,
    );
    return rows.length > 0;
  }

  /**
   * FOR NO KEY UPDATE, as an UPDATE of a non-key column takes: it does not wait on (or block)
   * the KEY SHARE locks that foreign keys to the user take. False when there is no such user.
   */
  async lockForUpdate(manager: EntityManager, id: string): Promise<boolean> {
    const rows = await this.select<{ id: string }>('SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE', [id], manager);
    return rows.length > 0;
  }

  /** True when this call set the flag (it was not set). */
  async flag(manager: EntityManager, id: string, now: Date): Promise<boolean> {
    const rows = await this.write<{ id: string }>('UPDATE users SET flagged_at = $2 WHERE id = $1 AND flagged_at IS NULL RETURNING id', [id, now], manager);
    return rows.length > 0;
  }

  /** The account can no longer sign in; its e-mail is freed. */
  async softDeleteAccount(manager: EntityManager, id: string, now: Date): Promise<void> {
    await this.write(
      'UPDATE users SET email = $2, password_hash = NULL, deleted_at = $3, updated_at = $3, version = version + 1 WHERE id = $1',
      [id, `deleted-${id}@deleted.invalid`, now],
      manager,
    );
  }

  async counts(since: Date): Promise<{ total: number; newSince: number }> {
    const [row] = await this.select<{ total: number; new_since: number }>(
      'SELECT count(*)::int AS total, count(*) FILTER (WHERE created_at >= $1)::int AS new_since FROM users WHERE deleted_at IS NULL',
      [since],
    );
    return { total: row!.total, newSince: row!.new_since };
  }

  /** Up to `count` live accounts matching `filter`, newest first after `after`; and how many match in all. */
  async search(filter: UserSearchFilter, count: number, after: Keyset | undefined): Promise<{ rows: UserListRecord[]; total: number }> {
    const where = ['u.deleted_at IS NULL'];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replaceAll('?', `$${values.length}`));
    };
    if (filter.search) add('(u.email ILIKE ? OR p.username ILIKE ?)', `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    if (filter.role) add('u.role = ?', filter.role);
    if (filter.banned !== undefined) add('u.is_banned = ?', filter.banned);
    if (filter.flagged !== undefined) where.push(filter.flagged ? 'u.flagged_at IS NOT NULL' : 'u.flagged_at IS NULL');
    const filtered = `FROM users u JOIN profiles p ON p.user_id = u.id WHERE ${where.join(' AND ')}`;
    const [{ total }] = (await this.select<{ total: number }>(`SELECT count(*)::int AS total ${filtered}`, values)) as [{ total: number }];
    const pageValues = [...values];
    let keyset = '';
    if (after) {
      pageValues.push(after.createdAt, after.id);
      keyset = ` AND (u.created_at, u.id) < ($${pageValues.length - 1}, $${pageValues.length})`;
    }
    pageValues.push(count);
    const rows = await this.select<{
      id: string;
      email: string;
      role: Role;
      username: string | null;
      display_name: string | null;
      is_banned: boolean;
      ban_reason: string | null;
      flagged_at: Date | null;
      created_at: Date;
      last_active_at: Date | null;
    }>(
      `SELECT u.id, u.email, u.role, p.username, p.display_name, u.is_banned, u.ban_reason, u.flagged_at, u.created_at, p.last_active_at ${filtered}${keyset}
       ORDER BY u.created_at DESC, u.id DESC LIMIT $${pageValues.length}`,
      pageValues,
    );
    return {
      total,
      rows: rows.map((row) => ({
        id: row.id,
        email: row.email,
        role: row.role,
        username: row.username,
        displayName: row.display_name,
        isBanned: row.is_banned,
        banReason: row.ban_reason,
        flaggedAt: row.flagged_at,
        createdAt: row.created_at,
        lastActiveAt: row.last_active_at,
      })),
    };
  }

  /** Up to `count` ids of live, unbanned accounts in `audience`, by id after `afterId`. */
  async recipientIds(audience: Audience, afterId: string | null, count: number): Promise<string[]> {
    const { where, values } = audienceFilter(audience);
    values.push(afterId ?? '00000000-0000-0000-0000-000000000000', count);
    const rows = await this.select<{ id: string }>(
      `SELECT u.id FROM users u JOIN profiles p ON p.user_id = u.id WHERE ${where} AND u.id > $${values.length - 1} ORDER BY u.id LIMIT $${values.length}`,
      values,
    );
    return rows.map((row) => row.id);
  }

  async countRecipients(audience: Audience): Promise<number> {
    const { where, values } = audienceFilter(audience);
    const [row] = await this.select<{ total: number }>(`SELECT count(*)::int AS total FROM users u JOIN profiles p ON p.user_id = u.id WHERE ${where}`, values);
    return row!.total;
  }

  // --- profiles

  /** A live account with its profile. */
  async userWithProfile(id: string): Promise<UserRecord | null> {
    const [row] = await this.select<Omit<AccountRow, 'is_banned'> & ProfileRow>(
      `SELECT u.id, u.email, u.role, u.is_verified, u.created_at, p.username, p.display_name, p.avatar_key, p.bio, p.native_language,
       p.english_level, p.learning_goal, p.country, p.timezone, p.wallet_address, p.total_practice_mins, p.total_practice_seconds, p.total_sessions, p.streak_days,
       p.last_session_at, p.version
       FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = $1 AND u.deleted_at IS NULL`,
      [id],
    );
    return row ? { id: row.id, email: row.email, role: row.role, isVerified: row.is_verified, createdAt: row.created_at, profile: profileOf(row) } : null;
  }

  /** Applies `fields` only while the profile is at `expectedVersion`; false otherwise. */
  async updateProfile(id: string, fields: Partial<ProfileFields>, expectedVersion: number, now: Date): Promise<boolean> {
    const values: unknown[] = [id, expectedVersion, now];
    const sets = (Object.entries(fields) as Array<[keyof ProfileFields, unknown]>)
      .filter(([, value]) => value !== undefined)
      .map(([field, value]) => {
        values.push(value);
        return `${PROFILE_COLUMNS[field]} = $${values.length}`;
      });
    const rows = await this.write<{ user_id: string }>(
      `UPDATE profiles SET ${[...sets, 'version = version + 1', 'updated_at = $3'].join(', ')} WHERE user_id = $1 AND version = $2 RETURNING user_id`,
      values,
    );
    return rows.length > 0;
  }

  /** Points the profile at another avatar (or none); returns the key it pointed at before. */
  async replaceAvatarKey(id: string, key: string | null, now: Date): Promise<string | null> {
    const [row] = await this.write<{ previous: string | null }>(
      'UPDATE profiles p SET avatar_key = $2, version = p.version + 1, updated_at = $3 FROM profiles old WHERE p.user_id = $1 AND old.user_id = p.user_id RETURNING old.avatar_key AS previous',
      [id, key, now],
    );
    return row?.previous ?? null;
  }

  /** Clears the avatar if there is one (no version bump otherwise); returns the key it pointed at. */
  async clearAvatarKey(id: string, now: Date): Promise<string | null> {
    const [row] = await this.write<{ previous: string | null }>(
      'UPDATE profiles p SET avatar_key = NULL, version = p.version + 1, updated_at = $2 FROM profiles old WHERE p.user_id = $1 AND old.user_id = p.user_id AND old.avatar_key IS NOT NULL RETURNING old.avatar_key AS previous',
      [id, now],
    );
    return row?.previous ?? null;
  }

  async setWallet(id: string, address: string, now: Date): Promise<void> {
    await this.write('UPDATE profiles SET wallet_address = $2, version = version + 1, updated_at = $3 WHERE user_id = $1', [id, address, now]);
  }

  /** Clears the personal fields of the profile in the caller's transaction; returns the avatar key it had. */
  async clearPersonalFields(manager: EntityManager, id: string, now: Date): Promise<string | null> {
    const [profile] = await this.select<{ avatar_key: string | null }>('SELECT avatar_key FROM profiles WHERE user_id = $1 FOR UPDATE', [id], manager);
    await this.write(
      `UPDATE profiles SET username = NULL, display_name = NULL, avatar_key = NULL, bio = NULL, native_language = NULL, country = NULL,
       timezone = NULL, wallet_address = NULL, version = version + 1, updated_at = $2 WHERE user_id = $1`,
      [id, now],
      manager,
    );
    return profile?.avatar_key ?? null;
  }

  async touchLastActive(id: string, at: Date): Promise<void> {
    await this.reader.one('users-touch-last-active', 'UPDATE profiles SET last_active_at = $2 WHERE user_id = $1', [id, at]);
  }

  /** The practice stats; with `lock`, locked until the caller's transaction ends (what a finished call updates). */
  async stats(id: string, lock?: EntityManager): Promise<{ timezone: string | null; lastSessionAt: Date | null; streakDays: number } | null> {
    const [row] = await this.select<{ timezone: string | null; last_session_at: Date | null; streak_days: number }>(
      `SELECT timezone, last_session_at, streak_days FROM profiles WHERE user_id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
      lock,
    );
    return row ? { timezone: row.timezone, lastSessionAt: row.last_session_at, streakDays: row.streak_days } : null;
  }

  async addCall(manager: EntityManager, id: string, call: { seconds: number; streakDays: number; endedAt: Date }): Promise<void> {
    await this.write(
      `UPDATE profiles SET total_sessions = total_sessions + 1, total_practice_seconds = total_practice_seconds + $2,
       total_practice_mins = (total_practice_seconds + $2) / 60, streak_days = $3,
       last_session_at = GREATEST(COALESCE(last_session_at, $4), $4), updated_at = $4 WHERE user_id = $1`,
      [id, call.seconds, call.streakDays, call.endedAt],
      manager,
    );
  }

  /** The e-mails of the live accounts among `ids` (a deleted account's is gone). */
  async liveEmails(ids: string[]): Promise<Map<string, string>> {
    const rows = await this.select<{ id: string; email: string }>('SELECT id, email FROM users WHERE id = ANY($1) AND deleted_at IS NULL', [ids]);
    return new Map(rows.map((row) => [row.id, row.email]));
  }

  async names(ids: string[]): Promise<Array<{ id: string; username: string | null; displayName: string | null }>> {
    const rows = await this.select<{ user_id: string; username: string | null; display_name: string | null }>(
      'SELECT user_id, username, display_name FROM profiles WHERE user_id = ANY($1)',
      [ids],
    );
    return rows.map((row) => ({ id: row.user_id, username: row.username, displayName: row.display_name }));
  }

  /** Hot: read on every search and match. */
  async matchRecord(id: string): Promise<MatchRecord | null> {
    const row = await this.reader.one<{
      is_banned: boolean;
      username: string | null;
      display_name: string | null;
      english_level: EnglishLevel | null;
      avatar_key: string | null;
    }>(
      'users-match-row',
      'SELECT u.is_banned, p.username, p.display_name, p.english_level, p.avatar_key FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = $1 AND u.deleted_at IS NULL',
      [id],
    );
    return row
      ? { isBanned: row.is_banned, username: row.username, displayName: row.display_name, englishLevel: row.english_level, avatarKey: row.avatar_key }
      : null;
  }
}
