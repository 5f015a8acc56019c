import type { Audience } from '../users/index.js';
import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn, Unique } from 'typeorm';

export const NOTIFICATION_TYPES = ['match_found', 'payment_success', 'system', 'achievement', 'report_update', 'course_ready'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export const CHANNELS = ['push', 'in_app', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];

export const PLATFORMS = ['ios', 'android', 'web'] as const;
export type Platform = (typeof PLATFORMS)[number];

export const DELIVERY_STATUSES = ['queued', 'sent', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The FCM token of one device of a user; a token belongs to one account at a time. */
@Entity('device_tokens')
@Unique('device_tokens_user_device_unique', ['userId', 'deviceId'])
@Unique('device_tokens_fcm_token_unique', ['fcmToken'])
@Check('device_tokens_platform_check', `platform IN ('ios', 'android', 'web')`)
export class DeviceToken {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'device_tokens_user_id_fkey' })
  user?: unknown;

  @Column({ name: 'device_id', type: 'varchar', length: 128 })
  deviceId!: string;

  @Column({ type: 'varchar', length: 8 })
  platform!: Platform;

  @Column({ name: 'fcm_token', type: 'varchar', length: 4096 })
  fcmToken!: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** One notice in a user's inbox; `sent_at` is when a push or e-mail of it first went out. */
@Entity('notifications')
@Check('notifications_type_check', `type IN ('match_found', 'payment_success', 'system', 'achievement', 'report_update', 'course_ready')`)
@Index('notifications_user_created_idx', ['userId', 'createdAt', 'id'])
@Index('notifications_unread_idx', ['userId'], { where: 'NOT read' })
@Index('notifications_user_dedupe_key_unique', ['userId', 'dedupeKey'], { unique: true })
export class Notification {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'notifications_user_id_fkey' })
  user?: unknown;

  @Column({ type: 'varchar', length: 20 })
  type!: NotificationType;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  @Column({ type: 'jsonb', nullable: true })
  data!: Record<string, string> | null;

  /** Hidden from the inbox (in-app turned off for its type): it exists for push and e-mail only. */
  @Column({ name: 'in_app', type: 'boolean', default: true })
  inApp!: boolean;

  @Column({ type: 'boolean', default: false })
  read!: boolean;

  @Column({ name: 'read_at', type: 'timestamptz', nullable: true })
  readAt!: Date | null;

  @Column({ name: 'sent_at', type: 'timestamptz', nullable: true })
  sentAt!: Date | null;

  /** Set by a caller that must notify once per fact (a streak milestone, a broadcast): a second insert adds nothing. */
  @Column({ name: 'dedupe_key', type: 'varchar', length: 200, nullable: true })
  dedupeKey!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

/** A user's choices; no row means the documented defaults. */
@Entity('notification_preferences')
export class NotificationPreference {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'notification_preferences_user_id_fkey' })
  user?: unknown;

  /** `{ [type]: { push, in_app, email } }`, only the types the user changed. */
  @Column({ type: 'jsonb' })
  channels!: Partial<Record<NotificationType, Partial<Record<Channel, boolean>>>>;

  /** 'HH:MM' in `time_zone`; both null: no quiet hours. */
  @Column({ name: 'quiet_start', type: 'varchar', length: 5, nullable: true })
  quietStart!: string | null;

  @Column({ name: 'quiet_end', type: 'varchar', length: 5, nullable: true })
  quietEnd!: string | null;

  @Column({ name: 'time_zone', type: 'varchar', length: 64, nullable: true })
  timeZone!: string | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/**
 * One push to one device, or one e-mail, of a notification. The row is what makes a retried
 * delivery job skip what already went out.
 */
@Entity('notification_deliveries')
@Unique('notification_deliveries_target_unique', ['notificationId', 'channel', 'target'])
@Check('notification_deliveries_channel_check', `channel IN ('push', 'email')`)
@Check('notification_deliveries_status_check', `status IN ('queued', 'sent', 'failed')`)
@Index('notification_deliveries_status_idx', ['status', 'channel'])
export class NotificationDelivery {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' })
  id!: string;

  @Column({ name: 'notification_id', type: 'uuid' })
  notificationId!: string;

  @ManyToOne('Notification', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'notification_id', foreignKeyConstraintName: 'notification_deliveries_notification_id_fkey' })
  notification?: unknown;

  @Column({ type: 'varchar', length: 8 })
  channel!: 'push' | 'email';

  /** The device id of a push, `email` for the e-mail. */
  @Column({ type: 'varchar', length: 128 })
  target!: string;

  @Column({ type: 'varchar', length: 8 })
  status!: DeliveryStatus;

  /** An e-mail's rendered message: what its job sends, however late or often it runs. */
  @Column({ type: 'jsonb', nullable: true })
  content!: { subject: string; text: string; html?: string } | null;

  /** Not sent before this instant (the end of the user's quiet hours). */
  @Column({ name: 'not_before', type: 'timestamptz', nullable: true })
  notBefore!: Date | null;

  /** A worker holds it until then: of jobs that reach it at once (a retry, the sweeper), one sends. */
  @Column({ name: 'claimed_until', type: 'timestamptz', nullable: true })
  claimedUntil!: Date | null;

  @Column({ type: 'smallint', default: 0 })
  attempts!: number;

  /** The provider's reason of the last failure (e.g. messaging/registration-token-not-registered). */
  @Column({ type: 'varchar', length: 120, nullable: true })
  error!: string | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** An admin's message to many users, delivered by the notifications.broadcast job. */
@Entity('notification_broadcasts')
export class NotificationBroadcast {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text' })
  body!: string;

  /** `{ kind: 'all' } | { kind: 'level', level } | { kind: 'userIds', userIds }` */
  @Column({ type: 'jsonb' })
  audience!: BroadcastAudience;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'created_by', foreignKeyConstraintName: 'notification_broadcasts_created_by_fkey' })
  creator?: unknown;

  @Column({ name: 'job_id', type: 'varchar', length: 200, nullable: true })
  jobId!: string | null;

  @Column({ type: 'integer', nullable: true })
  recipients!: number | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt!: Date | null;
}

/** Everyone, one English level, or a list of users. */
export type BroadcastAudience = Exclude<Audience, { kind: 'role' }>;
