import type { Redis } from 'ioredis';
import type { EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import { ImageRejectedError, sniffImageType, toSquareWebp } from '../../infra/images.js';
import type { Logger } from '../../infra/logger.js';
import { isUniqueViolation } from '../../infra/sql.js';
import { redisKeys } from '../../infra/redis-keys.js';
import type { ObjectStorage } from '../../infra/storage.js';
import type { Role } from '../../shared/auth.js';
import { AppError, DependencyUnavailableError, NotFoundError } from '../../shared/errors.js';
import type { EnglishLevel, ProfileFields, ProfileRecord, UserRecord, UsersRepository } from './repository.js';

export interface ProfileSettings {
  urlTtlSeconds: number;
  avatarMaxPixels: number;
  lastActiveThrottleMs: number;
}

export interface ProfilesDependencies {
  repository: UsersRepository;
  redis: Redis;
  storage: ObjectStorage;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

/** The fields a user edits with PATCH /users/me. */
export type ProfilePatch = Partial<ProfileFields>;

export type ProfileView = Omit<ProfileRecord, 'avatarKey'> & { avatarUrl: string | null };

/** Whether a user may enter matchmaking, and what is missing if not. */
export interface ProfileCompletion {
  complete: boolean;
  missing: Array<'username' | 'englishLevel'>;
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

export interface PublicName {
  id: string;
  username: string | null;
  displayName: string | null;
}

function completionOf(profile: { username: string | null; englishLevel: EnglishLevel | null }): ProfileCompletion {
  const missing: ProfileCompletion['missing'] = [];
  if (!profile.username) missing.push('username');
  if (!profile.englishLevel) missing.push('englishLevel');
  return { complete: missing.length === 0, missing };
}

/** YYYY-MM-DD of `date` in `timeZone`. */
function localDay(date: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date);
}

function previousDay(day: string): string {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(year, month - 1, date - 1)).toISOString().slice(0, 10);
}

/** What users show of themselves: profile, avatar, wallet, practice stats, and what others see of them. */
export class ProfilesService {
  private readonly repository: UsersRepository;
  private readonly redis: Redis;
  private readonly storage: ObjectStorage;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly logger: Logger;
  /** When this instance last wrote each user's last_active_at (the throttle's local half). */
  private readonly lastTouched = new Map<string, number>();

  constructor(
    dependencies: ProfilesDependencies,
    private readonly settings: ProfileSettings,
  ) {
    this.repository = dependencies.repository;
    this.redis = dependencies.redis;
    this.storage = dependencies.storage;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.logger = dependencies.logger;
  }

  private async loadLive(userId: string): Promise<UserRecord> {
    const user = await this.repository.userWithProfile(userId);
    if (!user) throw new NotFoundError('User');
    return user;
  }

  private avatarUrl(key: string | null): Promise<string | null> {
    return key ? this.storage.url(key, { ttlSeconds: this.settings.urlTtlSeconds, public: true }) : Promise.resolve(null);
  }

  private async profileView(profile: ProfileRecord): Promise<ProfileView> {
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
      totalPracticeSeconds: profile.totalPracticeSeconds,
      totalSessions: profile.totalSessions,
      streakDays: profile.streakDays,
      lastSessionAt: profile.lastSessionAt,
      version: profile.version,
    };
  }

  private async meView(user: UserRecord): Promise<MeView> {
    return {
      id: user.id,
      email: user.email,
      role: user.role,
      isVerified: user.isVerified,
      createdAt: user.createdAt,
      profile: await this.profileView(user.profile),
      completion: completionOf(user.profile),
    };
  }

  async getMe(userId: string): Promise<MeView> {
    return this.meView(await this.loadLive(userId));
  }

  /** Only what anyone may see: never e-mail, role or ban state. */
  async getPublic(userId: string): Promise<PublicProfileView> {
    const user = await this.loadLive(userId);
    const view = await this.profileView(user.profile);
    return { id: user.id, ...Object.fromEntries(PUBLIC_PROFILE_FIELDS.map((field) => [field, view[field]])), memberSince: user.createdAt } as PublicProfileView;
  }

  /**
   * Optimistic update: applied only if the profile is still at `expectedVersion`; otherwise
   * 409 version_conflict with the current version, and nothing is written.
   */
  async updateProfile(userId: string, patch: ProfilePatch, expectedVersion: number): Promise<MeView> {
    let updated: boolean;
    try {
      updated = await this.repository.updateProfile(userId, patch, expectedVersion, this.clock.now());
    } catch (error) {
      if (isUniqueViolation(error, 'profiles_username_unique')) throw new AppError('username_taken', 'This username is taken');
      throw error;
    }
    if (!updated) {
      const { profile } = await this.loadLive(userId);
      throw new AppError('version_conflict', 'The profile changed since you read it: reload and apply your change again', { currentVersion: profile.version });
    }
    return this.getMe(userId);
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
      previous = await this.repository.replaceAvatarKey(userId, key, this.clock.now());
    } catch (error) {
      await this.storage.delete(key).catch(() => undefined);
      throw error;
    }
    if (previous) await this.deleteQuietly(previous);
    return this.getMe(userId);
  }

  async removeAvatar(userId: string): Promise<void> {
    const previous = await this.repository.clearAvatarKey(userId, this.clock.now());
    if (previous) await this.deleteQuietly(previous);
  }

  /** An orphaned file costs a little storage; a failed delete must not fail the request. */
  private async deleteQuietly(key: string): Promise<void> {
    await this.storage.delete(key).catch((error: unknown) => this.logger.warn({ err: error, key }, 'could not delete a replaced file'));
  }

  async setWallet(userId: string, address: string): Promise<MeView> {
    try {
      await this.repository.setWallet(userId, address.toLowerCase(), this.clock.now());
    } catch (error) {
      if (isUniqueViolation(error, 'profiles_wallet_address_unique')) throw new AppError('wallet_taken', 'This wallet is registered to another account');
      throw error;
    }
    return this.getMe(userId);
  }

  /**
   * Clears the personal fields in the caller's transaction (the account is being deleted);
   * returns what to run after commit: deleting the avatar file, which a rollback still needs.
   */
  async erase(manager: EntityManager, userId: string): Promise<() => Promise<void>> {
    const avatarKey = await this.repository.clearPersonalFields(manager, userId, this.clock.now());
    return async () => {
      if (avatarKey) await this.deleteQuietly(avatarKey);
    };
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
    await this.repository.touchLastActive(userId, new Date(now));
  }

  /**
   * Adds a finished call to the user's stats in the caller's transaction: one more session,
   * its seconds (the minutes follow from their sum), and the day streak counted in the user's own time zone.
   */
  async recordCall(manager: EntityManager, userId: string, call: { seconds: number; endedAt: Date }): Promise<void> {
    const stats = await this.repository.stats(userId, manager);
    if (!stats) return;
    const day = (date: Date) => localDay(date, stats.timezone ?? 'UTC');
    const today = day(call.endedAt);
    const last = stats.lastSessionAt ? day(stats.lastSessionAt) : null;
    const streakDays = last === today ? Math.max(stats.streakDays, 1) : last === previousDay(today) ? stats.streakDays + 1 : 1;
    await this.repository.addCall(manager, userId, { seconds: Math.max(0, Math.round(call.seconds)), streakDays, endedAt: call.endedAt });
  }

  /** The user's current day streak and the local day (YYYY-MM-DD, in their time zone) it last grew. */
  async practiceStreak(userId: string): Promise<{ days: number; lastDay: string | null }> {
    const stats = await this.repository.stats(userId);
    if (!stats?.lastSessionAt) return { days: stats?.streakDays ?? 0, lastDay: null };
    return { days: stats.streakDays, lastDay: localDay(stats.lastSessionAt, stats.timezone ?? 'UTC') };
  }

  /** Names to show for users in lists (call history); deleted users keep their id only. */
  async publicNames(ids: string[]): Promise<Map<string, PublicName>> {
    if (!ids.length) return new Map();
    return new Map((await this.repository.names(ids)).map((name) => [name.id, name]));
  }

  /** May this user search now: active (not banned or deleted) and with a complete profile. */
  async matchmakingEligibility(userId: string): Promise<{ active: boolean; completion: ProfileCompletion }> {
    const match = await this.repository.matchRecord(userId);
    if (!match) return { active: false, completion: { complete: false, missing: [] } };
    return { active: !match.isBanned, completion: completionOf(match) };
  }

  /** The level the student gave, for the AI partner to speak at (null when not given). */
  async englishLevel(userId: string): Promise<EnglishLevel | null> {
    return (await this.repository.matchRecord(userId))?.englishLevel ?? null;
  }

  /** What a matched partner sees in match_found. */
  async matchCard(userId: string): Promise<{ displayName: string; avatarUrl: string | null; level: string | null }> {
    const match = await this.repository.matchRecord(userId);
    return {
      displayName: match?.displayName ?? match?.username ?? 'Partner',
      avatarUrl: await this.avatarUrl(match?.avatarKey ?? null),
      level: match?.englishLevel ?? null,
    };
  }
}
