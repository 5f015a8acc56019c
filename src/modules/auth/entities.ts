import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';

export const PLATFORMS = ['ios', 'android', 'web'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** One signed-in device: the family every rotated refresh token of that device belongs to. */
@Entity('device_sessions')
@Check('device_sessions_platform_check', `platform IN ('ios', 'android', 'web')`)
export class DeviceSession {
  @PrimaryColumn('uuid')
  id!: string;

  @Index('device_sessions_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'device_sessions_user_id_fkey' })
  user?: unknown;

  @Column({ name: 'device_id', type: 'varchar', length: 128 })
  deviceId!: string;

  @Column({ type: 'varchar', length: 8 })
  platform!: Platform;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  ip!: string | null;

  @Column({ name: 'push_token', type: 'text', nullable: true })
  pushToken!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'last_used_at', type: 'timestamptz' })
  lastUsedAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoke_reason', type: 'varchar', length: 32, nullable: true })
  revokeReason!: string | null;
}

/** One refresh token; only its SHA-256 is stored. Rotation marks it replaced by its successor. */
@Entity('refresh_tokens')
@Unique('refresh_tokens_token_hash_unique', ['tokenHash'])
export class RefreshToken {
  @PrimaryColumn('uuid')
  id!: string;

  @Index('refresh_tokens_session_id_idx')
  @Column({ name: 'session_id', type: 'uuid' })
  sessionId!: string;

  @ManyToOne('DeviceSession', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'refresh_tokens_session_id_fkey' })
  session?: unknown;

  @Index('refresh_tokens_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'refresh_tokens_user_id_fkey' })
  user?: unknown;

  @Column({ name: 'token_hash', type: 'char', length: 64 })
  tokenHash!: string;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ type: 'boolean', default: false })
  revoked!: boolean;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'replaced_by', type: 'uuid', nullable: true })
  replacedBy!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

function oneTimeToken(table: string) {
  @Entity(table)
  @Unique(`${table}_token_hash_unique`, ['tokenHash'])
  class OneTimeToken {
    @PrimaryColumn('uuid')
    id!: string;

    @Index(`${table}_user_id_idx`)
    @Column({ name: 'user_id', type: 'uuid' })
    userId!: string;

    @ManyToOne('User', { onDelete: 'CASCADE' })
    @JoinColumn({ name: 'user_id', foreignKeyConstraintName: `${table}_user_id_fkey` })
    user?: unknown;

    @Column({ name: 'token_hash', type: 'char', length: 64 })
    tokenHash!: string;

    @Column({ name: 'expires_at', type: 'timestamptz' })
    expiresAt!: Date;

    @Column({ type: 'boolean', default: false })
    used!: boolean;

    @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
    usedAt!: Date | null;

    @Column({ name: 'created_at', type: 'timestamptz' })
    createdAt!: Date;
  }
  return OneTimeToken;
}

/** Single-use, 1 hour; only the SHA-256 of the token is stored. */
export const PasswordResetToken = oneTimeToken('password_reset_tokens');
export type PasswordResetToken = InstanceType<typeof PasswordResetToken>;

/** Single-use, 24 hours; only the SHA-256 of the token is stored. */
export const EmailVerificationToken = oneTimeToken('email_verification_tokens');
export type EmailVerificationToken = InstanceType<typeof EmailVerificationToken>;

/**
 * An account's identity at another issuer (a trusted token's iss and sub; GitHub's user id):
 * how that issuer's tokens find the account. Never matched by e-mail.
 */
@Entity('external_identities')
@Unique('external_identities_issuer_subject_unique', ['issuer', 'subject'])
export class ExternalIdentity {
  @PrimaryColumn('uuid')
  id!: string;

  @Index('external_identities_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'external_identities_user_id_fkey' })
  user?: unknown;

  @Column({ type: 'varchar', length: 255 })
  issuer!: string;

  @Column({ type: 'varchar', length: 255 })
  subject!: string;

  /** The e-mail the issuer gave when the identity was linked, if any (information only). */
  @Column({ type: 'citext', nullable: true })
  email!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

/**
 * A browser session (GitHub sign-in): the `session_token` cookie of a device session, only its
 * SHA-256 stored. The device session's expires_at slides with use; `endsAt` never moves.
 * Revoking the device session (logout, logout-all, password reset, ban) ends it.
 */
@Entity('cookie_sessions')
@Unique('cookie_sessions_token_hash_unique', ['tokenHash'])
export class CookieSession {
  @PrimaryColumn({ name: 'session_id', type: 'uuid' })
  sessionId!: string;

  @ManyToOne('DeviceSession', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'cookie_sessions_session_id_fkey' })
  session?: unknown;

  @Column({ name: 'token_hash', type: 'char', length: 64 })
  tokenHash!: string;

  @Column({ name: 'ends_at', type: 'timestamptz' })
  endsAt!: Date;
}
