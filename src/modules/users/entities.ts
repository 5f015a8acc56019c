import { Check, Column, Entity, JoinColumn, OneToOne, PrimaryColumn, Unique } from 'typeorm';
import { ROLES, type Role } from '../../shared/auth.js';

export const ENGLISH_LEVELS = ['beginner', 'intermediate', 'advanced'] as const;
export const LEARNING_GOALS = ['fluency', 'business', 'travel', 'exam'] as const;

@Entity('users')
@Unique('users_email_unique', ['email'])
@Check('users_role_check', `role IN (${ROLES.map((role) => `'${role}'`).join(', ')})`)
export class User {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'citext' })
  email!: string;

  @Column({ name: 'password_hash', type: 'varchar', length: 100, nullable: true })
  passwordHash!: string | null;

  @Column({ type: 'varchar', length: 16, default: 'student' })
  role!: Role;

  @Column({ name: 'is_verified', type: 'boolean', default: false })
  isVerified!: boolean;

  @Column({ name: 'is_banned', type: 'boolean', default: false })
  isBanned!: boolean;

  @Column({ name: 'ban_reason', type: 'text', nullable: true })
  banReason!: string | null;

  @Column({ name: 'banned_at', type: 'timestamptz', nullable: true })
  bannedAt!: Date | null;

  /** When the user reached 3 pending reports and was flagged for an admin's review. */
  @Column({ name: 'flagged_at', type: 'timestamptz', nullable: true })
  flaggedAt!: Date | null;

  @Column({ type: 'integer', default: 1 })
  version!: number;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;

  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt!: Date | null;
}

@Entity('profiles')
@Unique('profiles_username_unique', ['username'])
@Unique('profiles_wallet_address_unique', ['walletAddress'])
@Check('profiles_english_level_check', `english_level IN ('beginner', 'intermediate', 'advanced')`)
@Check('profiles_learning_goal_check', `learning_goal IN ('fluency', 'business', 'travel', 'exam')`)
export class Profile {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @OneToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'profiles_user_id_fkey' })
  user?: unknown;

  @Column({ type: 'citext', nullable: true })
  username!: string | null;

  @Column({ name: 'display_name', type: 'varchar', length: 80, nullable: true })
  displayName!: string | null;

  /** Storage key of the avatar (avatars/{userId}/{ts}.webp); its URL is made when read. */
  @Column({ name: 'avatar_key', type: 'text', nullable: true })
  avatarKey!: string | null;

  @Column({ type: 'text', nullable: true })
  bio!: string | null;

  @Column({ name: 'native_language', type: 'varchar', length: 40, nullable: true })
  nativeLanguage!: string | null;

  @Column({ name: 'english_level', type: 'varchar', length: 16, nullable: true })
  englishLevel!: (typeof ENGLISH_LEVELS)[number] | null;

  @Column({ name: 'learning_goal', type: 'varchar', length: 16, nullable: true })
  learningGoal!: (typeof LEARNING_GOALS)[number] | null;

  @Column({ type: 'varchar', length: 2, nullable: true })
  country!: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  timezone!: string | null;

  /** An EVM address, lower-cased. */
  @Column({ name: 'wallet_address', type: 'varchar', length: 42, nullable: true })
  walletAddress!: string | null;

  /** Whole minutes of total_practice_seconds, kept for the documents' readers. */
  @Column({ name: 'total_practice_mins', type: 'integer', default: 0 })
  totalPracticeMins!: number;

  /** Every finished call's seconds, added up exactly (minutes rounded per call would lose calls under 30 s). */
  @Column({ name: 'total_practice_seconds', type: 'integer', default: 0 })
  totalPracticeSeconds!: number;

  @Column({ name: 'total_sessions', type: 'integer', default: 0 })
  totalSessions!: number;

  @Column({ name: 'streak_days', type: 'integer', default: 0 })
  streakDays!: number;

  @Column({ name: 'last_session_at', type: 'timestamptz', nullable: true })
  lastSessionAt!: Date | null;

  @Column({ name: 'last_active_at', type: 'timestamptz', nullable: true })
  lastActiveAt!: Date | null;

  @Column({ type: 'integer', default: 1 })
  version!: number;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
