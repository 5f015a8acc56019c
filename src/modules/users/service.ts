import type { Redis } from 'ioredis';
import { QueryFailedError, type DataSource, type EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import { ImageRejectedError, sniffImageType, toSquareWebp } from '../../infra/images.js';
import type { Logger } from '../../infra/logger.js';
import { updateReturning, type PreparedReader } from '../../infra/sql.js';
import { redisKeys } from '../../infra/redis-keys.js';
import type { ObjectStorage } from '../../infra/storage.js';
import type { Role, RoleLookup } from '../../shared/auth.js';
import { AppError, DependencyUnavailableError, NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import { type ENGLISH_LEVELS, type LEARNING_GOALS, Profile, User } from './entities.js';

export interface ProfileSettings {
  urlTtlSeconds: number;
  avatarMaxPixels: number;
  lastActiveThrottleMs: number;
}

/** The fields a user edits with PATCH /users/me. */
export interface ProfilePatch {
  username?: string | null | undefined;
  displayName?: string | null | undefined;
  bio?: string | null | undefined;
  nativeLanguage?: string | null | undefined;
  englishLevel?: (typeof ENGLISH_LEVELS)[number] | null | undefined;
  learningGoal?: (typeof LEARNING_GOALS)[number] | null | undefined;
  country?: string | null | undefined;
  timezone?: string | null | undefined;
}

export interface ProfileView {
  username: string | null;
  displayName: string | null;
  avatarUrl: string | null;
  bio: string | null;
  nativeLanguage: string | null;
  englishLevel: (typeof ENGLISH_LEVELS)[number] | null;
  learningGoal: (typeof LEARNING_GOALS)[number] | null;
  country: string | null;
  timezone: string | null;
  walletAddress: string | null;
  totalPracticeMins: number;
  totalSessions: number;
  streakDays: number;
  lastSessionAt: Date | null;
  version: number;
}

export interface MeView {
  id: string;
  email: string;
  role: Role;
  isVerified: boolean;
  createdAt: Date;
  profile: ProfileView;
  completion: ProfileCompletion;
}

/** The fields of a profile anyone may see. */
export const PUBLIC_PROFILE_FIELDS = [
  'username',
  'displayName',
  'avatarUrl',
  'bio',
  'nativeLanguage',
  'englishLevel',
  'country',
  'totalSessions',
  'totalPracticeMins',
  'streakDays',
] as const;

export type PublicProfileView = Pick<ProfileView, (typeof PUBLIC_PROFILE_FIELDS)[number]> & { id: string; memberSince: Date };

/** Whether a user may enter matchmaking, and what is missing if not. */
export interface ProfileCompletion {
  complete: boolean;
  missing: Array<'username' | 'englishLevel'>;
}

const PATCH_COLUMNS: Record<keyof ProfilePatch, string> = {
  username: 'username',
  displayName: 'display_name',
  bio: 'bio',
  nativeLanguage: 'native_language',
  englishLevel: 'english_level',
  learningGoal: 'learning_goal',
  country: 'country',
  timezone: 'timezone',
};

function uniqueViolation(error: unknown): string | null {
  if (!(error instanceof QueryFailedError)) return null;
  const driverError = error.driverError as { code?: string; constraint?: string };
  return driverError.code === '23505' ? (driverError.constraint ?? 'unique') : null;
}

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

const SUMMARY_BY_ID = 'SELECT id, email, role, is_verified, is_banned, created_at FROM users WHERE id = $1 AND deleted_at IS NULL';

function summaryOf(row: SummaryRow | undefined | null): AccountSummary | null {
  return row ? { id: row.id, email: row.email, role: row.role, isVerified: row.is_verified, isBanned: row.is_banned, createdAt: row.created_at } : null;
}

/** Accounts and their profiles. Other modules use this service, never the tables. */
export class UsersService implements RoleLookup {
  /** When this instance last wrote each user's last_active_at (the throttle's local half). */
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly db: DataSource,
    private readonly reader: PreparedReader,
    private readonly redis: Redis,
    private readonly storage: ObjectStorage,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
    private readonly logger: Logger,
    private readonly settings: ProfileSettings,
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

  /**
   * The hot read behind GET /auth/me: one prepared primary-key lookup. Inside a transaction,
   * pass its manager: a second pool connection there can deadlock the pool.
   */
  async findSummary(id: string, manager?: EntityManager): Promise<AccountSummary | null> {
    return summaryOf(
      manager ? (await manager.query<SummaryRow[]>(SUMMARY_BY_ID, [id]))[0] : await this.reader.one<SummaryRow>('users-summary-by-id', SUMMARY_BY_ID, [id]),
    );
  }

  /** The account read in the caller's transaction and held (FOR SHARE) until it ends: a concurrent ban waits for it. */
  async lockSummary(manager: EntityManager, id: string): Promise<AccountSummary | null> {
    return summaryOf((await manager.query<SummaryRow[]>(`${SUMMARY_BY_ID} FOR SHARE`, [id]))[0]);
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

  /** Replaces a hash by a stronger one of the same password, unless the password changed meanwhile. */
  async upgradePasswordHash(manager: EntityManager, userId: string, currentHash: string, upgradedHash: string): Promise<void> {
    await manager.update(User, { id: userId, passwordHash: currentHash }, { passwordHash: upgradedHash });
  }

  async markVerified(manager: EntityManager, userId: string): Promise<void> {
    await manager.update(User, { id: userId }, { isVerified: true, updatedAt: this.clock.now() });
  }

  async setRole(manager: EntityManager, userId: string, role: Role): Promise<void> {
    await manager.update(User, { id: userId }, { role, updatedAt: this.clock.now(), version: () => 'version + 1' });
  }

  private async loadLive(userId: string): Promise<{ user: User; profile: Profile }> {
    const user = await this.db.getRepository(User).findOne({ where: { id: userId } });
    const profile = user && !user.deletedAt ? await this.db.getRepository(Profile).findOne({ where: { userId } }) : null;
    if (!user || !profile) throw new NotFoundError('User');
    return { user, profile };
  }

  private avatarUrl(key: string | null): Promise<string | null> {
    return key ? this.storage.url(key, { ttlSeconds: this.settings.urlTtlSeconds, public: true }) : Promise.resolve(null);
  }

  private completionOf(profile: Pick<Profile, 'username' | 'englishLevel'>): ProfileCompletion {
    const missing: ProfileCompletion['missing'] = [];
    if (!profile.username) missing.push('username');
    if (!profile.englishLevel) missing.push('englishLevel');
    return { complete: missing.length === 0, missing };
  }

  private async profileView(profile: Profile): Promise<ProfileView> {
    return {
      username: profile.username,
      displayName: profile.displayName,
      avatarUrl: await this.avatarUrl(profile.avatarKey),
      bio: profile.bio,
      nativeLanguage: profile.nativeLanguage,
      englishLevel: profile.englishLevel,
      learningGoal: profile.learningGoal,
      country: profile.country,
      timezone: profile.timezone,
      walletAddress: profile.walletAddress,
      totalPracticeMins: profile.totalPracticeMins,
      totalSessions: profile.totalSessions,
      streakDays: profile.streakDays,
      lastSessionAt: profile.lastSessionAt,
      version: profile.version,
    };
  }

  private async meView(user: User, profile: Profile): Promise<MeView> {
    return {
      id: user.id,
      email: user.email,
      role: user.role,
      isVerified: user.isVerified,
      createdAt: user.createdAt,
      profile: await this.profileView(profile),
      completion: this.completionOf(profile),
    };
  }

  async getMe(userId: string): Promise<MeView> {
    const { user, profile } = await this.loadLive(userId);
    return this.meView(user, profile);
  }

  /** Only what anyone may see: never e-mail, role or ban state. */
  async getPublic(userId: string): Promise<PublicProfileView> {
    const { user, profile } = await this.loadLive(userId);
    const view = await this.profileView(profile);
    return { id: user.id, ...Object.fromEntries(PUBLIC_PROFILE_FIELDS.map((field) => [field, view[field]])), memberSince: user.createdAt } as PublicProfileView;
  }

  async profileCompletion(userId: string): Promise<ProfileCompletion> {
    const { profile } = await this.loadLive(userId);
    return this.completionOf(profile);
  }

  /**
   * Optimistic update: applied only if the profile is still at `expectedVersion`; otherwise
   * 409 version_conflict with the current version, and nothing is written.
   */
  async updateProfile(userId: string, patch: ProfilePatch, expectedVersion: number): Promise<MeView> {
    const entries = Object.entries(patch).filter(([, value]) => value !== undefined) as Array<[keyof ProfilePatch, unknown]>;
    const values: unknown[] = [userId, expectedVersion, this.clock.now()];
    const sets = entries.map(([field, value]) => {
      values.push(value);
      return `${PATCH_COLUMNS[field]} = $${values.length}`;
    });
    let updated: unknown[];
    try {
      updated = await updateReturning(
        this.db,
        `UPDATE profiles SET ${[...sets, 'version = version + 1', 'updated_at = $3'].join(', ')} WHERE user_id = $1 AND version = $2 RETURNING user_id`,
        values,
      );
    } catch (error) {
      if (uniqueViolation(error) === 'profiles_username_unique') throw new AppError('username_taken', 'This username is taken');
      throw error;
    }
    if (!updated.length) await this.throwVersionConflict(userId);
    return this.getMe(userId);
  }

  private async throwVersionConflict(userId: string): Promise<never> {
    const { profile } = await this.loadLive(userId);
    throw new AppError('version_conflict', 'The profile changed since you read it: reload and apply your change again', { currentVersion: profile.version });
  }

  /**
   * Replaces the avatar: the image is checked by its bytes, made a 400x400 WebP, stored, and
   * only then is the profile pointed at it and the old file deleted. A failure at any step
   * leaves the previous avatar in place.
   */
  async setAvatar(userId: string, upload: Buffer): Promise<MeView> {
    await this.loadLive(userId);
    if (!sniffImageType(upload)) throw new AppError('unsupported_media_type', 'The avatar must be a JPEG, PNG or WebP image');
    let webp: Buffer;
    try {
      webp = await toSquareWebp(upload, 400, this.settings.avatarMaxPixels);
    } catch (error) {
      if (error instanceof ImageRejectedError && error.reason === 'too_many_pixels') {
        throw new AppError('image_too_large', `The image has more than ${this.settings.avatarMaxPixels} pixels`);
      }
      throw new AppError('invalid_image', 'The image cannot be read');
    }
    const key = `avatars/${userId}/${this.clock.now().getTime()}-${this.ids.uuid().slice(0, 8)}.webp`;
    try {
      await this.storage.put(key, webp, 'image/webp');
    } catch (error) {
      this.logger.error({ err: error, key }, 'could not store an avatar');
      throw new DependencyUnavailableError('File storage is unavailable; try again later');
    }
    let previous: string | null;
    try {
      const [row] = await updateReturning<{ previous: string | null }>(
        this.db,
        'UPDATE profiles p SET avatar_key = $2, version = p.version + 1, updated_at = $3 FROM profiles old WHERE p.user_id = $1 AND old.user_id = p.user_id RETURNING old.avatar_key AS previous',
        [userId, key, this.clock.now()],
      );
      previous = row?.previous ?? null;
    } catch (error) {
      await this.storage.delete(key).catch(() => undefined);
      throw error;
    }
    if (previous) await this.deleteQuietly(previous);
    return this.getMe(userId);
  }

  async removeAvatar(userId: string): Promise<void> {
    const [row] = await updateReturning<{ previous: string | null }>(
      this.db,
      'UPDATE profiles p SET avatar_key = NULL, version = p.version + 1, updated_at = $2 FROM profiles old WHERE p.user_id = $1 AND old.user_id = p.user_id AND old.avatar_key IS NOT NULL RETURNING old.avatar_key AS previous',
      [userId, this.clock.now()],
    );
    if (row?.previous) await this.deleteQuietly(row.previous);
  }

  /** An orphaned file costs a little storage; a failed delete must not fail the request. */
  private async deleteQuietly(key: string): Promise<void> {
    await this.storage.delete(key).catch((error: unknown) => this.logger.warn({ err: error, key }, 'could not delete a replaced file'));
  }

  async setWallet(userId: string, address: string): Promise<MeView> {
    try {
      await this.db.query('UPDATE profiles SET wallet_address = $2, version = version + 1, updated_at = $3 WHERE user_id = $1', [
        userId,
        address.toLowerCase(),
        this.clock.now(),
      ]);
    } catch (error) {
      if (uniqueViolation(error) === 'profiles_wallet_address_unique') throw new AppError('wallet_taken', 'This wallet is registered to another account');
      throw error;
    }
    return this.getMe(userId);
  }

  /**
   * Soft delete in the caller's transaction: the account can no longer sign in, personal
   * fields are cleared, rows others see (call history) stay. Returns the avatar key to delete
   * after commit.
   */
  async softDelete(manager: EntityManager, userId: string): Promise<string | null> {
    const now = this.clock.now();
    const [profile] = await manager.query<Array<{ avatar_key: string | null }>>('SELECT avatar_key FROM profiles WHERE user_id = $1 FOR UPDATE', [userId]);
    await manager.query(`UPDATE users SET email = $2, password_hash = NULL, deleted_at = $3, updated_at = $3, version = version + 1 WHERE id = $1`, [
      userId,
      `deleted-${userId}@deleted.invalid`,
      now,
    ]);
    await manager.query(
      `UPDATE profiles SET username = NULL, display_name = NULL, avatar_key = NULL, bio = NULL, native_language = NULL, country = NULL,
       timezone = NULL, wallet_address = NULL, version = version + 1, updated_at = $2 WHERE user_id = $1`,
      [userId, now],
    );
    return profile?.avatar_key ?? null;
  }

  async deleteFile(key: string): Promise<void> {
    await this.deleteQuietly(key);
  }

  /**
   * Keeps last_active_at current without a write per request: at most one write per user
   * per throttle period, across instances (a Redis SET NX), after a local check that skips
   * even that round trip.
   */
  async touchLastActive(userId: string): Promise<void> {
    const now = this.clock.now().getTime();
    const last = this.lastTouched.get(userId);
    if (last !== undefined && now - last < this.settings.lastActiveThrottleMs) return;
    this.lastTouched.set(userId, now);
    if (this.lastTouched.size > 100_000) this.lastTouched.clear();
    const claimed = await this.redis.set(redisKeys.lastActiveThrottle(userId), '1', 'PX', this.settings.lastActiveThrottleMs, 'NX');
    if (claimed !== 'OK') return;
    await this.reader.one('users-touch-last-active', 'UPDATE profiles SET last_active_at = $2 WHERE user_id = $1', [userId, new Date(now)]);
  }

  /**
   * Adds a finished call to the user's stats in the caller's transaction: one more session,
   * its minutes, and the day streak counted in the user's own time zone.
   */
  async recordCall(manager: EntityManager, userId: string, call: { seconds: number; endedAt: Date }): Promise<void> {
    const [row] = await manager.query<Array<{ timezone: string | null; last_session_at: Date | null; streak_days: number }>>(
      'SELECT timezone, last_session_at, streak_days FROM profiles WHERE user_id = $1 FOR UPDATE',
      [userId],
    );
    if (!row) return;
    const day = (date: Date) => localDay(date, row.timezone ?? 'UTC');
    const today = day(call.endedAt);
    const last = row.last_session_at ? day(row.last_session_at) : null;
    const streak = last === today ? Math.max(row.streak_days, 1) : last === previousDay(today) ? row.streak_days + 1 : 1;
    await manager.query(
      `UPDATE profiles SET total_sessions = total_sessions + 1, total_practice_mins = total_practice_mins + $2, streak_days = $3,
       last_session_at = GREATEST(COALESCE(last_session_at, $4), $4), updated_at = $4 WHERE user_id = $1`,
      [userId, Math.round(call.seconds / 60), streak, call.endedAt],
    );
  }

  /** Names to show for users in lists (call history); deleted users keep their id only. */
  async publicNames(ids: string[]): Promise<Map<string, { id: string; username: string | null; displayName: string | null }>> {
    if (!ids.length) return new Map();
    const rows = await this.db.query<Array<{ user_id: string; username: string | null; display_name: string | null }>>(
      'SELECT user_id, username, display_name FROM profiles WHERE user_id = ANY($1)',
      [ids],
    );
    return new Map(rows.map((row) => [row.user_id, { id: row.user_id, username: row.username, displayName: row.display_name }]));
  }

  /** One prepared read with what matchmaking needs of a user (hot: every search). */
  private async matchRow(userId: string) {
    return this.reader.one<{
      is_banned: boolean;
      username: string | null;
      display_name: string | null;
      english_level: string | null;
      avatar_key: string | null;
    }>(
      'users-match-row',
      'SELECT u.is_banned, p.username, p.display_name, p.english_level, p.avatar_key FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = $1 AND u.deleted_at IS NULL',
      [userId],
    );
  }

  /** May this user search now: active (not banned or deleted) and with a complete profile. */
  async matchmakingEligibility(userId: string): Promise<{ active: boolean; completion: ProfileCompletion }> {
    const row = await this.matchRow(userId);
    if (!row) return { active: false, completion: { complete: false, missing: [] } };
    return { active: !row.is_banned, completion: this.completionOf({ username: row.username, englishLevel: row.english_level as Profile['englishLevel'] }) };
  }

  /** What a matched partner sees in match_found. */
  async matchCard(userId: string): Promise<{ displayName: string; avatarUrl: string | null; level: string | null }> {
    const row = await this.matchRow(userId);
    return {
      displayName: row?.display_name ?? row?.username ?? 'Partner',
      avatarUrl: await this.avatarUrl(row?.avatar_key ?? null),
      level: row?.english_level ?? null,
    };
  }

  /** Whether the account may use realtime features now (exists, not deleted, not banned). */
  async isActive(userId: string): Promise<boolean> {
    const summary = await this.findSummary(userId);
    return Boolean(summary && !summary.isBanned);
  }

  async exists(userId: string): Promise<boolean> {
    return Boolean(await this.findSummary(userId));
  }

  /** Bans or unbans in the caller's transaction; false when there is no such (live) user. */
  async setBanned(manager: EntityManager, userId: string, banned: boolean, reason: string | null): Promise<boolean> {
    const rows = await updateReturning<{ id: string }>(
      manager,
      'UPDATE users SET is_banned = $2, ban_reason = $3, banned_at = CASE WHEN $2 THEN $4::timestamptz ELSE NULL END, updated_at = $4, version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING id',
      [userId, banned, banned ? reason : null, this.clock.now()],
    );
    return rows.length > 0;
  }

  /** Users and new users since `since`. */
  async counts(since: Date): Promise<{ total: number; newSince: number }> {
    const [row] = await this.db.query<[{ total: number; new_since: number }]>(
      'SELECT count(*)::int AS total, count(*) FILTER (WHERE created_at >= $1)::int AS new_since FROM users WHERE deleted_at IS NULL',
      [since],
    );
    return { total: row.total, newSince: row.new_since };
  }

  /** The admin's user list: search by e-mail or username, filters, newest first, with the total. */
  async search(
    filter: { search?: string | undefined; role?: Role | undefined; banned?: boolean | undefined; flagged?: boolean | undefined },
    limit: number,
    cursor?: string,
  ) {
    const position = decodeCursor(cursor);
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
    const [{ total }] = await this.db.query<[{ total: number }]>(`SELECT count(*)::int AS total ${filtered}`, values);
    const pageValues = [...values];
    let keyset = '';
    if (position) {
      pageValues.push(position.createdAt, position.id);
      keyset = ` AND (u.created_at, u.id) < ($${pageValues.length - 1}, $${pageValues.length})`;
    }
    pageValues.push(limit + 1);
    const rows = await this.db.query<
      Array<{
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
      }>
    >(
      `SELECT u.id, u.email, u.role, p.username, p.display_name, u.is_banned, u.ban_reason, u.flagged_at, u.created_at, p.last_active_at ${filtered}${keyset}
       ORDER BY u.created_at DESC, u.id DESC LIMIT $${pageValues.length}`,
      pageValues,
    );
    const page = toPage(
      rows.map((row) => ({ ...row, createdAt: row.created_at })),
      limit,
      (row) => ({
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
      }),
    );
    return { ...page, total };
  }

  /**
   * Locks the user's row until the caller's transaction ends, so other modules can serialise
   * their writes about one user. FOR NO KEY UPDATE, as an UPDATE of a non-key column takes: it
   * does not wait on (or block) the KEY SHARE locks that foreign keys to the user take.
   * False when there is no such user.
   */
  async lockForUpdate(manager: EntityManager, userId: string): Promise<boolean> {
    const rows = await manager.query<Array<{ id: string }>>('SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE', [userId]);
    return rows.length > 0;
  }

  /** Marks the user for an admin's review, once; true when this call flagged them. */
  async flagForReview(manager: EntityManager, userId: string): Promise<boolean> {
    const rows = await updateReturning<{ id: string }>(manager, 'UPDATE users SET flagged_at = $2 WHERE id = $1 AND flagged_at IS NULL RETURNING id', [
      userId,
      this.clock.now(),
    ]);
    return rows.length > 0;
  }
}

/** YYYY-MM-DD of `date` in `timeZone`. */
function localDay(date: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date);
}

function previousDay(day: string): string {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(year, month - 1, date - 1)).toISOString().slice(0, 10);
}
