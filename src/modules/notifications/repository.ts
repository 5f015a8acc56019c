import type { DataSource, EntityManager } from 'typeorm';
import { updateReturning } from '../../infra/sql.js';
import type { Keyset } from '../../shared/pagination.js';
import type { BroadcastAudience, DeliveryStatus, NotificationType, Platform } from './entities.js';
import type { ChannelOverrides, QuietHours } from './preferences.js';

export interface DeviceRecord {
  deviceId: string;
  platform: Platform;
  createdAt: Date;
  updatedAt: Date;
}

export interface NotificationRecord {
  id: string;
  userId: string;
  type: NotificationType;
  title: string;
  body: string;
  data: Record<string, string> | null;
  read: boolean;
  readAt: Date | null;
  sentAt: Date | null;
  createdAt: Date;
}

export interface StoredPreferences {
  channels: ChannelOverrides;
  quietHours: QuietHours | null;
}

export type NewNotification = Pick<NotificationRecord, 'id' | 'userId' | 'type' | 'title' | 'body' | 'data' | 'createdAt'> & {
  /** False: pushed and mailed, never shown in the inbox. */
  inApp: boolean;
  dedupeKey: string | null;
};

/** A push a worker holds: the notification's content and the device's current token (null: the device is gone). */
export interface ClaimedPush {
  deliveryId: string;
  notificationId: string;
  userId: string;
  deviceId: string;
  fcmToken: string | null;
  /** Claims of this push so far, this one included. */
  attempts: number;
  title: string;
  body: string;
  data: Record<string, string> | null;
  type: NotificationType;
}

export interface ClaimedEmail {
  deliveryId: string;
  notificationId: string;
  userId: string;
  content: MailContent;
}

export interface DeliveryOutcome {
  deliveryId: string;
  status: DeliveryStatus;
  error: string | null;
  /** For a delivery queued again: when to try next. */
  notBefore?: Date;
}

/** A rendered e-mail, without its recipient. */
export interface MailContent {
  subject: string;
  text: string;
  html?: string;
}

export interface BroadcastRecord {
  id: string;
  title: string;
  body: string;
  audience: BroadcastAudience;
  createdBy: string | null;
  jobId: string | null;
  recipients: number | null;
  createdAt: Date;
  finishedAt: Date | null;
}

interface NotificationRow {
  id: string;
  user_id: string;
  type: NotificationType;
  title: string;
  body: string;
  data: Record<string, string> | null;
  read: boolean;
  read_at: Date | null;
  sent_at: Date | null;
  created_at: Date;
}

const NOTIFICATION_COLUMNS = 'id, user_id, type, title, body, data, read, read_at, sent_at, created_at';

function toNotification(row: NotificationRow): NotificationRecord {
  return {
    id: row.id,
    userId: row.user_id,
    type: row.type,
    title: row.title,
    body: row.body,
    data: row.data,
    read: row.read,
    readAt: row.read_at,
    sentAt: row.sent_at,
    createdAt: row.created_at,
  };
}

interface BroadcastRow {
  id: string;
  title: string;
  body: string;
  audience: BroadcastAudience;
  created_by: string | null;
  job_id: string | null;
  recipients: number | null;
  created_at: Date;
  finished_at: Date | null;
}

function toBroadcast(row: BroadcastRow): BroadcastRecord {
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    audience: row.audience,
    createdBy: row.created_by,
    jobId: row.job_id,
    recipients: row.recipients,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** The only SQL for the notifications module's tables. */
export class NotificationsRepository {
  constructor(private readonly db: DataSource) {}

  private select<T>(sql: string, values: unknown[], manager: EntityManager | DataSource = this.db): Promise<T[]> {
    return manager.query<T[]>(sql, values);
  }

  private write<T>(sql: string, values: unknown[], manager: EntityManager | DataSource = this.db): Promise<T[]> {
    return updateReturning<T>(manager, sql, values);
  }

  // --- devices

  /**
   * Registers the token of a user's device, or replaces it. A token belongs to one account:
   * held by another device row (another account signed in on that phone), it moves here.
   */
  async saveDevice(device: { id: string; userId: string; deviceId: string; platform: Platform; fcmToken: string; now: Date }): Promise<DeviceRecord> {
    return this.db.transaction(async (manager) => {
      // Registrations of one token (an app start racing another, accounts switching on one phone) take turns.
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`device-token:${device.fcmToken}`]);
      await manager.query('DELETE FROM device_tokens WHERE fcm_token = $1 AND NOT (user_id = $2 AND device_id = $3)', [
        device.fcmToken,
        device.userId,
        device.deviceId,
      ]);
      const [row] = await this.select<{ device_id: string; platform: Platform; created_at: Date; updated_at: Date }>(
        `INSERT INTO device_tokens (id, user_id, device_id, platform, fcm_token, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (user_id, device_id) DO UPDATE SET platform = EXCLUDED.platform, fcm_token = EXCLUDED.fcm_token, updated_at = EXCLUDED.updated_at
         RETURNING device_id, platform, created_at, updated_at`,
        [device.id, device.userId, device.deviceId, device.platform, device.fcmToken, device.now],
        manager,
      );
      return { deviceId: row!.device_id, platform: row!.platform, createdAt: row!.created_at, updatedAt: row!.updated_at };
    });
  }

  async deleteDevice(userId: string, deviceId: string): Promise<boolean> {
    const rows = await this.write<{ id: string }>('DELETE FROM device_tokens WHERE user_id = $1 AND device_id = $2 RETURNING id', [userId, deviceId]);
    return rows.length > 0;
  }

  /** Deletes the user's tokens: of these devices, or all of them. */
  async deleteDevices(userId: string, deviceIds: string[] | 'all'): Promise<number> {
    const rows =
      deviceIds === 'all'
        ? await this.write<{ id: string }>('DELETE FROM device_tokens WHERE user_id = $1 RETURNING id', [userId])
        : await this.write<{ id: string }>('DELETE FROM device_tokens WHERE user_id = $1 AND device_id = ANY($2) RETURNING id', [userId, deviceIds]);
    return rows.length;
  }

  /** Deletes a token FCM called dead, unless the device registered a new one meanwhile. */
  async deleteDeadToken(userId: string, deviceId: string, fcmToken: string): Promise<void> {
    await this.db.query('DELETE FROM device_tokens WHERE user_id = $1 AND device_id = $2 AND fcm_token = $3', [userId, deviceId, fcmToken]);
  }

  /** Everything the module keeps about a deleted account. */
  async eraseUser(userId: string): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query('DELETE FROM device_tokens WHERE user_id = $1', [userId]);
      await manager.query('DELETE FROM notifications WHERE user_id = $1', [userId]);
      await manager.query('DELETE FROM notification_preferences WHERE user_id = $1', [userId]);
    });
  }

  // --- preferences

  async preferences(userId: string): Promise<StoredPreferences | null> {
    const [stored] = await this.preferencesOf([userId]);
    return stored?.[1] ?? null;
  }

  async preferencesOf(userIds: string[]): Promise<Array<[string, StoredPreferences]>> {
    if (!userIds.length) return [];
    const rows = await this.select<{
      user_id: string;
      channels: ChannelOverrides;
      quiet_start: string | null;
      quiet_end: string | null;
      time_zone: string | null;
    }>('SELECT user_id, channels, quiet_start, quiet_end, time_zone FROM notification_preferences WHERE user_id = ANY($1)', [userIds]);
    return rows.map((row) => [
      row.user_id,
      {
        channels: row.channels,
        quietHours: row.quiet_start && row.quiet_end && row.time_zone ? { start: row.quiet_start, end: row.quiet_end, timeZone: row.time_zone } : null,
      },
    ]);
  }

  /** Writes the user's choices under a row lock, so two concurrent changes both land. */
  async updatePreferences(userId: string, change: (current: StoredPreferences | null) => StoredPreferences, now: Date): Promise<StoredPreferences> {
    return this.db.transaction(async (manager) => {
      await manager.query('INSERT INTO notification_preferences (user_id, channels, updated_at) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING', [
        userId,
        {},
        now,
      ]);
      const [row] = await this.select<{ channels: ChannelOverrides; quiet_start: string | null; quiet_end: string | null; time_zone: string | null }>(
        'SELECT channels, quiet_start, quiet_end, time_zone FROM notification_preferences WHERE user_id = $1 FOR UPDATE',
        [userId],
        manager,
      );
      const current =
        row && (Object.keys(row.channels).length || row.quiet_start)
          ? {
              channels: row.channels,
              quietHours: row.quiet_start && row.quiet_end && row.time_zone ? { start: row.quiet_start, end: row.quiet_end, timeZone: row.time_zone } : null,
            }
          : null;
      const next = change(current);
      await manager.query(
        'UPDATE notification_preferences SET channels = $2, quiet_start = $3, quiet_end = $4, time_zone = $5, updated_at = $6 WHERE user_id = $1',
        [userId, next.channels, next.quietHours?.start ?? null, next.quietHours?.end ?? null, next.quietHours?.timeZone ?? null, now],
      );
      return next;
    });
  }

  async resetPreferences(userId: string): Promise<void> {
    await this.db.query('DELETE FROM notification_preferences WHERE user_id = $1', [userId]);
  }

  // --- inbox

  /**
   * Adds the notification with its deliveries: a push per device the user has now (not before
   * `pushNotBefore`), and the e-mail. Null when `dedupeKey` was notified already.
   */
  async insertNotification(
    notification: NewNotification,
    deliveries: { push: boolean; email: MailContent | null; pushNotBefore: Date | null },
  ): Promise<{ pushes: number; email: boolean } | null> {
    return this.db.transaction(async (manager) => {
      const inserted = await this.select<{ id: string }>(
        `INSERT INTO notifications (id, user_id, type, title, body, data, in_app, dedupe_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (user_id, dedupe_key) DO NOTHING RETURNING id`,
        [
          notification.id,
          notification.userId,
          notification.type,
          notification.title,
          notification.body,
          notification.data,
          notification.inApp,
          notification.dedupeKey,
          notification.createdAt,
        ],
        manager,
      );
      if (!inserted.length) return null;
      const pushes = deliveries.push ? await this.insertPushDeliveries(manager, [notification.id], deliveries.pushNotBefore, notification.createdAt) : 0;
      if (deliveries.email) {
        await manager.query(
          `INSERT INTO notification_deliveries (notification_id, channel, target, status, content, updated_at) VALUES ($1, 'email', 'email', 'queued', $2, $3)`,
          [notification.id, deliveries.email, notification.createdAt],
        );
      }
      return { pushes, email: deliveries.email !== null };
    });
  }

  /** One queued push per device of each notification's user; returns how many. */
  private async insertPushDeliveries(manager: EntityManager, notificationIds: string[], notBefore: Date | null, now: Date): Promise<number> {
    const rows = await this.select<{ id: string }>(
      `INSERT INTO notification_deliveries (notification_id, channel, target, status, not_before, updated_at)
       SELECT n.id, 'push', d.device_id, 'queued', $2, $3 FROM notifications n JOIN device_tokens d ON d.user_id = n.user_id WHERE n.id = ANY($1)
       ON CONFLICT (notification_id, channel, target) DO NOTHING RETURNING id`,
      [notificationIds, notBefore, now],
      manager,
    );
    return rows.length;
  }

  /**
   * Adds one notification per user (once per `dedupeKey`: a second run adds nothing) with a
   * queued push per device, each user's pushes not before their time; returns every
   * user's notification id, new or not.
   */
  async insertMany(
    rows: Array<{ id: string; userId: string; pushNotBefore: Date | null }>,
    content: { type: NotificationType; title: string; body: string; data: Record<string, string>; dedupeKey: string },
    now: Date,
  ): Promise<Array<{ id: string; userId: string }>> {
    if (!rows.length) return [];
    return this.db.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO notifications (id, user_id, type, title, body, data, in_app, dedupe_key, created_at)
         SELECT id, user_id, $3, $4, $5, $6, true, $7, $8 FROM unnest($1::uuid[], $2::uuid[]) AS page(id, user_id)
         ON CONFLICT (user_id, dedupe_key) DO NOTHING`,
        [rows.map((row) => row.id), rows.map((row) => row.userId), content.type, content.title, content.body, content.data, content.dedupeKey, now],
      );
      const stored = await this.select<{ id: string; user_id: string }>(
        'SELECT id, user_id FROM notifications WHERE user_id = ANY($1) AND dedupe_key = $2',
        [rows.map((row) => row.userId), content.dedupeKey],
        manager,
      );
      const notBefore = new Map(rows.map((row) => [row.userId, row.pushNotBefore]));
      await manager.query(
        `INSERT INTO notification_deliveries (notification_id, channel, target, status, not_before, updated_at)
         SELECT n.id, 'push', d.device_id, 'queued', page.not_before, $3
         FROM unnest($1::uuid[], $2::timestamptz[]) AS page(notification_id, not_before)
         JOIN notifications n ON n.id = page.notification_id JOIN device_tokens d ON d.user_id = n.user_id
         ON CONFLICT (notification_id, channel, target) DO NOTHING`,
        [stored.map((row) => row.id), stored.map((row) => notBefore.get(row.user_id) ?? null), now],
      );
      return stored.map((row) => ({ id: row.id, userId: row.user_id }));
    });
  }

  async list(userId: string, unreadOnly: boolean, count: number, after: Keyset | undefined): Promise<NotificationRecord[]> {
    const values: unknown[] = [userId];
    let where = 'user_id = $1 AND in_app';
    if (unreadOnly) where += ' AND NOT read';
    if (after) {
      values.push(after.createdAt, after.id);
      where += ' AND (created_at, id) < ($2, $3)';
    }
    values.push(count);
    const rows = await this.select<NotificationRow>(
      `SELECT ${NOTIFICATION_COLUMNS} FROM notifications WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
      values,
    );
    return rows.map(toNotification);
  }

  async unreadCount(userId: string): Promise<number> {
    const [row] = await this.select<{ count: number }>('SELECT count(*)::int AS count FROM notifications WHERE user_id = $1 AND in_app AND NOT read', [userId]);
    return row!.count;
  }

  /** The user's own notification, marked read (the first read time kept); null when it is not theirs. */
  async markRead(userId: string, id: string, now: Date): Promise<NotificationRecord | null> {
    const [row] = await this.write<NotificationRow>(
      `UPDATE notifications SET read = true, read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2 AND in_app RETURNING ${NOTIFICATION_COLUMNS}`,
      [id, userId, now],
    );
    return row ? toNotification(row) : null;
  }

  async markAllRead(userId: string, now: Date): Promise<number> {
    const rows = await this.write<{ id: string }>(
      'UPDATE notifications SET read = true, read_at = $2 WHERE user_id = $1 AND in_app AND NOT read RETURNING id',
      [userId, now],
    );
    return rows.length;
  }

  async delete(userId: string, id: string): Promise<boolean> {
    const rows = await this.write<{ id: string }>('DELETE FROM notifications WHERE id = $1 AND user_id = $2 AND in_app RETURNING id', [id, userId]);
    return rows.length > 0;
  }

  // --- deliveries

  /**
   * Takes up to `limit` due pushes (queued, past their `not_before`, held by no other worker)
   * for `leaseMs`, oldest first; rows another worker is taking at this moment are skipped, not
   * waited for. A worker that dies lets its rows go when the lease ends.
   */
  async claimDuePushes(now: Date, leaseMs: number, limit: number): Promise<ClaimedPush[]> {
    // a WITH ... UPDATE whose outer statement is a SELECT: answered as plain rows
    const rows = await this.select<{
      id: string;
      notification_id: string;
      target: string;
      attempts: number;
      user_id: string;
      type: NotificationType;
      title: string;
      body: string;
      data: Record<string, string> | null;
      fcm_token: string | null;
    }>(
      `WITH due AS (
         SELECT id FROM notification_deliveries
         WHERE channel = 'push' AND status = 'queued' AND (not_before IS NULL OR not_before <= $1) AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE notification_deliveries d SET claimed_until = $2, attempts = d.attempts + 1, updated_at = $1
         FROM due WHERE d.id = due.id RETURNING d.id, d.notification_id, d.target, d.attempts)
       SELECT c.id, c.notification_id, c.target, c.attempts, n.user_id, n.type, n.title, n.body, n.data, t.fcm_token
       FROM claimed c JOIN notifications n ON n.id = c.notification_id LEFT JOIN device_tokens t ON t.user_id = n.user_id AND t.device_id = c.target`,
      [now, new Date(now.getTime() + leaseMs), limit],
    );
    return rows.map((row) => ({
      deliveryId: row.id,
      notificationId: row.notification_id,
      userId: row.user_id,
      deviceId: row.target,
      fcmToken: row.fcm_token,
      attempts: row.attempts,
      title: row.title,
      body: row.body,
      data: row.data,
      type: row.type,
    }));
  }

  async claimEmail(notificationId: string, now: Date, leaseMs: number): Promise<ClaimedEmail | null> {
    const [row] = await this.write<{ id: string; user_id: string; content: MailContent }>(
      `UPDATE notification_deliveries d SET claimed_until = $3, attempts = d.attempts + 1, updated_at = $2 FROM notifications n
       WHERE d.notification_id = $1 AND n.id = d.notification_id AND d.channel = 'email' AND d.status = 'queued'
         AND (d.claimed_until IS NULL OR d.claimed_until < $2)
       RETURNING d.id, n.user_id, d.content`,
      [notificationId, now, new Date(now.getTime() + leaseMs)],
    );
    return row ? { deliveryId: row.id, notificationId, userId: row.user_id, content: row.content } : null;
  }

  /** Records how deliveries ended; `queued` ones are released for another attempt, not before `notBefore`. */
  async settle(outcomes: DeliveryOutcome[], now: Date): Promise<void> {
    if (!outcomes.length) return;
    await this.db.query(
      `UPDATE notification_deliveries d SET status = o.status, error = o.error, not_before = COALESCE(o.not_before, d.not_before), claimed_until = NULL, updated_at = $5
       FROM unnest($1::bigint[], $2::varchar[], $3::varchar[], $4::timestamptz[]) AS o(id, status, error, not_before) WHERE d.id = o.id`,
      [outcomes.map((o) => o.deliveryId), outcomes.map((o) => o.status), outcomes.map((o) => o.error), outcomes.map((o) => o.notBefore ?? null), now],
    );
  }

  async markSent(notificationIds: string[], now: Date): Promise<void> {
    if (!notificationIds.length) return;
    await this.db.query('UPDATE notifications SET sent_at = $2 WHERE id = ANY($1) AND sent_at IS NULL', [notificationIds, now]);
  }

  /** Deliveries due for a while but held by nobody: their job was lost. Push rows are counted, e-mails named. */
  async strandedDeliveries(dueBefore: Date, limit: number): Promise<{ pushes: number; emails: string[] }> {
    const rows = await this.select<{ notification_id: string; channel: 'push' | 'email' }>(
      `SELECT notification_id, channel FROM notification_deliveries
       WHERE status = 'queued' AND updated_at < $1 AND COALESCE(not_before, updated_at) < $1 AND (claimed_until IS NULL OR claimed_until < $1)
       LIMIT $2`,
      [dueBefore, limit],
    );
    return {
      pushes: rows.filter((row) => row.channel === 'push').length,
      emails: rows.filter((row) => row.channel === 'email').map((row) => row.notification_id),
    };
  }

  async deliveryCounts(): Promise<Record<'push' | 'email', Record<DeliveryStatus, number>>> {
    const rows = await this.select<{ channel: 'push' | 'email'; status: DeliveryStatus; count: number }>(
      'SELECT channel, status, count(*)::int AS count FROM notification_deliveries GROUP BY channel, status',
      [],
    );
    const counts = { push: { queued: 0, sent: 0, failed: 0 }, email: { queued: 0, sent: 0, failed: 0 } };
    for (const row of rows) counts[row.channel][row.status] = row.count;
    return counts;
  }

  // --- broadcasts

  async insertBroadcast(broadcast: { id: string; title: string; body: string; audience: BroadcastAudience; createdBy: string; now: Date }): Promise<void> {
    await this.db.query('INSERT INTO notification_broadcasts (id, title, body, audience, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      broadcast.id,
      broadcast.title,
      broadcast.body,
      broadcast.audience,
      broadcast.createdBy,
      broadcast.now,
    ]);
  }

  async setBroadcastJob(id: string, jobId: string): Promise<void> {
    await this.db.query('UPDATE notification_broadcasts SET job_id = $2 WHERE id = $1', [id, jobId]);
  }

  async broadcast(id: string): Promise<BroadcastRecord | null> {
    const [row] = await this.select<BroadcastRow>('SELECT * FROM notification_broadcasts WHERE id = $1', [id]);
    return row ? toBroadcast(row) : null;
  }

  async finishBroadcast(id: string, recipients: number, now: Date): Promise<void> {
    await this.db.query('UPDATE notification_broadcasts SET recipients = $2, finished_at = COALESCE(finished_at, $3) WHERE id = $1', [id, recipients, now]);
  }
}
