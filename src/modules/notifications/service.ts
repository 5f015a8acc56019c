import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import { RetryLaterError, type JobContext, type JobQueue } from '../../infra/jobs.js';
import type { Logger } from '../../infra/logger.js';
import type { Mailer } from '../../infra/mailer.js';
import { renderMail } from '../../infra/mail-templates.js';
import { PushError, type PushSender } from '../../infra/push.js';
import { NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { AccountsService } from '../users/index.js';
import type { BroadcastAudience, Channel, NotificationType, Platform } from './entities.js';
import { mergeOverrides, quietDelayMs, resolveChannels, type ChannelOverrides, type Preferences, type QuietHours } from './preferences.js';
import type { ClaimedPush, DeviceRecord, MailContent, NotificationRecord, NotificationsRepository, StoredPreferences } from './repository.js';

export const PUSH_JOB = 'notifications.push';
export const EMAIL_JOB = 'notifications.email';
export const BROADCAST_JOB = 'notifications.broadcast';
/** Runs of a push or e-mail job: the first and four retries (exponential from 2 s, or as FCM's Retry-After says). */
export const DELIVERY_ATTEMPTS = 5;

/** What a module tells a user. */
export interface NotifyPayload {
  title: string;
  body: string;
  /** The deep link the app opens (string values: FCM data is strings). */
  data?: Record<string, string>;
  /** Notify once per key per user (a milestone reached, an order paid): a repeat returns null. */
  dedupeKey?: string;
  /** The e-mail to send on the e-mail channel, when the generic one (title, body) is not enough. */
  email?: MailContent;
  /** Limits the channels to these (before the user's own choices apply). */
  channels?: readonly Channel[];
}

export type NotificationView = Omit<NotificationRecord, 'userId'>;

export interface DeviceView {
  deviceId: string;
  platform: Platform;
  createdAt: Date;
  updatedAt: Date;
}

export interface NotificationsDependencies {
  repository: NotificationsRepository;
  accounts: AccountsService;
  jobs: JobQueue;
  push: PushSender;
  mailer: Mailer;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

export interface NotificationsSettings {
  /** Pushes one job sends at once. */
  pushConcurrency: number;
  /** The app's page a notification e-mail links to. */
  appUrl: string;
}

/** How long a worker holds a delivery it took; one that dies lets it go after this. */
const DELIVERY_LEASE_MS = 5 * 60_000;
/** Users a broadcast handles per page (one transaction and one push job each). */
const BROADCAST_PAGE = 500;
/** A due delivery no worker took for this long lost its job: the sweeper enqueues it again. */
const STRANDED_AFTER_MS = 2 * 60_000;

const view = ({ userId: _userId, ...notification }: NotificationRecord): NotificationView => notification;

/** In-app notifications, device tokens, preferences, and their delivery by push and e-mail. */
export class NotificationsService {
  private readonly repository: NotificationsRepository;
  private readonly accounts: AccountsService;
  private readonly jobs: JobQueue;
  private readonly push: PushSender;
  private readonly mailer: Mailer;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly logger: Logger;

  constructor(
    dependencies: NotificationsDependencies,
    private readonly settings: NotificationsSettings,
  ) {
    this.repository = dependencies.repository;
    this.accounts = dependencies.accounts;
    this.jobs = dependencies.jobs;
    this.push = dependencies.push;
    this.mailer = dependencies.mailer;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.logger = dependencies.logger;
  }

  // --- devices

  async registerDevice(userId: string, device: { deviceId: string; platform: Platform; fcmToken: string }): Promise<DeviceView> {
    return this.repository.saveDevice({ id: this.ids.uuid(), userId, ...device, now: this.clock.now() });
  }

  /** Forgets the device's token (the app signs out, or turns push off); nothing to forget is fine. */
  async removeDevice(userId: string, deviceId: string): Promise<void> {
    await this.repository.deleteDevice(userId, deviceId);
  }

  async devices(userId: string): Promise<DeviceRecord[]> {
    return this.repository.devices(userId);
  }

  /** The user signed out of these devices (or everywhere, or was banned): no push reaches them any more. */
  async forgetDevices(userId: string, deviceIds: string[] | 'all'): Promise<void> {
    const removed = await this.repository.deleteDevices(userId, deviceIds);
    if (removed) this.logger.info({ userId, devices: removed }, 'forgot device tokens');
  }

  async eraseUser(userId: string): Promise<void> {
    await this.repository.eraseUser(userId);
  }

  // --- inbox

  async list(userId: string, query: { unread: boolean; limit: number; cursor?: string | undefined }) {
    const [rows, unreadCount] = await Promise.all([
      this.repository.list(userId, query.unread, query.limit + 1, decodeCursor(query.cursor)),
      this.repository.unreadCount(userId),
    ]);
    return { ...toPage(rows, query.limit, view), unreadCount };
  }

  async markRead(userId: string, id: string): Promise<NotificationView> {
    const row = await this.repository.markRead(userId, id, this.clock.now());
    if (!row) throw new NotFoundError('Notification');
    return view(row);
  }

  async markAllRead(userId: string): Promise<{ updated: number }> {
    return { updated: await this.repository.markAllRead(userId, this.clock.now()) };
  }

  async delete(userId: string, id: string): Promise<void> {
    if (!(await this.repository.delete(userId, id))) throw new NotFoundError('Notification');
  }

  // --- preferences

  async preferences(userId: string): Promise<Preferences> {
    return this.resolve(await this.repository.preferences(userId));
  }

  /** Changes the given types' channels and, when given, the quiet hours (null removes them); the rest stays. */
  async updatePreferences(
    userId: string,
    change: { channels?: ChannelOverrides | undefined; quietHours?: QuietHours | null | undefined },
  ): Promise<Preferences> {
    const stored = await this.repository.updatePreferences(
      userId,
      (current) => ({
        channels: mergeOverrides(current?.channels, change.channels ?? {}),
        quietHours: change.quietHours === undefined ? (current?.quietHours ?? null) : change.quietHours,
      }),
      this.clock.now(),
    );
    return this.resolve(stored);
  }

  async resetPreferences(userId: string): Promise<Preferences> {
    await this.repository.resetPreferences(userId);
    return this.resolve(null);
  }

  private resolve(stored: StoredPreferences | null): Preferences {
    return { channels: resolveChannels(stored?.channels), quietHours: stored?.quietHours ?? null };
  }

  // --- notify

  /**
   * Tells a user something, on the channels their preferences allow: the inbox row at once,
   * the push and the e-mail by jobs (push after the user's quiet hours). Returns the
   * notification's id, or null when no channel is on or `dedupeKey` was notified already.
   */
  async notify(userId: string, type: NotificationType, payload: NotifyPayload): Promise<{ id: string } | null> {
    const preferences = await this.preferences(userId);
    const allowed = (channel: Channel) => preferences.channels[type][channel] && (!payload.channels || payload.channels.includes(channel));
    const channels = { push: allowed('push'), inApp: allowed('in_app'), email: allowed('email') };
    if (!channels.push && !channels.inApp && !channels.email) return null;
    const now = this.clock.now();
    const id = this.ids.uuid();
    const delayMs = channels.push ? quietDelayMs(now, preferences.quietHours) : 0;
    const data = payload.data ?? null;
    const stored = await this.repository.insertNotification(
      { id, userId, type, title: payload.title, body: payload.body, data, inApp: channels.inApp, dedupeKey: payload.dedupeKey ?? null, createdAt: now },
      {
        push: channels.push,
        pushNotBefore: delayMs ? new Date(now.getTime() + delayMs) : null,
        email: channels.email ? (payload.email ?? this.genericEmail(payload)) : null,
      },
    );
    if (!stored) return null;
    if (stored.pushes) await this.jobs.enqueue(PUSH_JOB, { notificationIds: [id] }, { jobId: `push-${id}`, ...(delayMs ? { delayMs } : {}) });
    if (stored.email) await this.jobs.enqueue(EMAIL_JOB, { notificationId: id }, { jobId: `email-${id}` });
    return { id };
  }

  private genericEmail(payload: NotifyPayload): MailContent {
    const link = payload.data?.url;
    return renderMail('notification', {
      title: payload.title,
      body: payload.body,
      actionUrl: link && /^https?:\/\//.test(link) ? link : this.settings.appUrl,
    });
  }

  // --- delivery (run by jobs)

  /**
   * Sends the due pushes of these notifications, each to every device it was queued for, at
   * most `pushConcurrency` at once. A push already sent is never sent again (its delivery row
   * says so); a dead token is deleted; a transient failure is retried by the job (after
   * FCM's Retry-After when it gave one) until the last attempt marks it failed. A crash
   * between a send and its record may send that one push again after the lease: the
   * collapse key makes the device show it once.
   */
  async deliverPushes(notificationIds: string[], context: Pick<JobContext, 'attempt' | 'logger'> & { signal?: AbortSignal }): Promise<void> {
    const claimed = await this.repository.claimPushes(notificationIds, this.clock.now(), DELIVERY_LEASE_MS);
    if (!claimed.length) return;
    const final = context.attempt >= DELIVERY_ATTEMPTS;
    const outcomes: Array<{ deliveryId: string; status: 'queued' | 'sent' | 'failed'; error: string | null }> = [];
    const sent = new Set<string>();
    let retryAfterMs = 0;
    let transient = 0;
    const send = async (push: ClaimedPush) => {
      // A job abandoned at shutdown sends no more: what it did not send goes back to the queue now, not after the lease.
      if (context.signal?.aborted) return outcomes.push({ deliveryId: push.deliveryId, status: 'queued', error: null });
      if (!push.fcmToken) return outcomes.push({ deliveryId: push.deliveryId, status: 'failed', error: 'device_removed' });
      try {
        await this.push.send({
          token: push.fcmToken,
          title: push.title,
          body: push.body,
          data: { ...push.data, notificationId: push.notificationId, type: push.type },
          collapseKey: push.notificationId,
        });
        sent.add(push.notificationId);
        return outcomes.push({ deliveryId: push.deliveryId, status: 'sent', error: null });
      } catch (error) {
        const failure = error instanceof PushError ? error : new PushError('transient', 'unknown', error instanceof Error ? error.message : String(error));
        if (failure.kind === 'invalid-token') await this.repository.deleteDeadToken(push.userId, push.deviceId, push.fcmToken);
        if (failure.kind === 'transient' && !final) {
          transient += 1;
          retryAfterMs = Math.max(retryAfterMs, failure.retryAfterMs ?? 0);
          return outcomes.push({ deliveryId: push.deliveryId, status: 'queued', error: failure.code });
        }
        context.logger.warn({ code: failure.code, kind: failure.kind, notificationId: push.notificationId }, 'push not delivered');
        return outcomes.push({ deliveryId: push.deliveryId, status: 'failed', error: failure.code });
      }
    };
    await inParallel(claimed, this.settings.pushConcurrency, send);
    const now = this.clock.now();
    await this.repository.settle(outcomes, now);
    await this.repository.markSent([...sent], now);
    context.signal?.throwIfAborted();
    if (transient) {
      const message = `${transient} of ${claimed.length} pushes failed for now`;
      throw retryAfterMs ? new RetryLaterError(message, retryAfterMs) : new Error(message);
    }
  }

  /** Sends the notification's e-mail once, to the address the account has now. */
  async deliverEmail(notificationId: string, context: Pick<JobContext, 'attempt'>): Promise<void> {
    const claimed = await this.repository.claimEmail(notificationId, this.clock.now(), DELIVERY_LEASE_MS);
    if (!claimed) return;
    const account = await this.accounts.findSummary(claimed.userId);
    if (!account) return this.repository.settle([{ deliveryId: claimed.deliveryId, status: 'failed', error: 'no_address' }], this.clock.now());
    try {
      await this.mailer.send({ to: account.email, ...claimed.content });
    } catch (error) {
      const final = context.attempt >= DELIVERY_ATTEMPTS;
      await this.repository.settle([{ deliveryId: claimed.deliveryId, status: final ? 'failed' : 'queued', error: 'send_failed' }], this.clock.now());
      throw error;
    }
    const now = this.clock.now();
    await this.repository.settle([{ deliveryId: claimed.deliveryId, status: 'sent', error: null }], now);
    await this.repository.markSent([notificationId], now);
  }

  /** Enqueues again the deliveries whose job was lost (a crash between commit and enqueue, a job past its last attempt while still due). */
  async redeliverStranded(): Promise<number> {
    const now = this.clock.now();
    const stranded = await this.repository.strandedDeliveries(new Date(now.getTime() - STRANDED_AFTER_MS), 1000);
    const minute = Math.floor(now.getTime() / 60_000);
    for (const { notificationId, channel } of stranded) {
      if (channel === 'push') await this.jobs.enqueue(PUSH_JOB, { notificationIds: [notificationId] }, { jobId: `push-${notificationId}-${minute}` });
      else await this.jobs.enqueue(EMAIL_JOB, { notificationId }, { jobId: `email-${notificationId}-${minute}` });
    }
    return stranded.length;
  }

  // --- broadcast

  /** Starts an admin's broadcast (a system notice in the inbox and as a push, never an e-mail); the job does the rest. */
  async broadcast(adminId: string, message: { title: string; body: string; audience: BroadcastAudience }): Promise<{ broadcastId: string; jobId: string }> {
    const broadcastId = this.ids.uuid();
    await this.repository.insertBroadcast({ id: broadcastId, ...message, createdBy: adminId, now: this.clock.now() });
    const jobId = await this.jobs.enqueue(BROADCAST_JOB, { broadcastId }, { jobId: `broadcast-${broadcastId}` });
    await this.repository.setBroadcastJob(broadcastId, jobId);
    return { broadcastId, jobId };
  }

  /**
   * Writes the broadcast's notifications page by page and enqueues their pushes. Safe to run
   * again from the start (a worker that died midway): a user's notification is written once
   * (its dedupe key), and a push already sent is not sent again.
   */
  async runBroadcast(broadcastId: string, context: Pick<JobContext, 'progress'>): Promise<void> {
    const broadcast = await this.repository.broadcast(broadcastId);
    if (!broadcast) return;
    const audience = broadcast.audience;
    const total = await this.accounts.countRecipients(audience);
    let afterId: string | null = null;
    let done = 0;
    for (;;) {
      const userIds = await this.accounts.recipients(audience, afterId, BROADCAST_PAGE);
      if (!userIds.length) break;
      const quiet = new Map((await this.repository.preferencesOf(userIds)).map(([userId, stored]) => [userId, stored.quietHours]));
      const now = this.clock.now();
      const rows = userIds.map((userId) => {
        const delayMs = quietDelayMs(now, quiet.get(userId) ?? null);
        return { id: this.ids.uuid(), userId, pushNotBefore: delayMs ? new Date(now.getTime() + delayMs) : null, delayMs };
      });
      const stored = await this.repository.insertMany(
        rows,
        { type: 'system', title: broadcast.title, body: broadcast.body, data: { broadcastId }, dedupeKey: `broadcast:${broadcastId}` },
        now,
      );
      const delays = new Map(rows.map((row) => [row.userId, row.delayMs]));
      const dueNow = stored.filter((row) => !delays.get(row.userId)).map((row) => row.id);
      if (dueNow.length) await this.jobs.enqueue(PUSH_JOB, { notificationIds: dueNow }, { jobId: `broadcast-${broadcastId}-${afterId ?? 'first'}` });
      for (const row of stored) {
        const delayMs = delays.get(row.userId) ?? 0;
        if (delayMs) await this.jobs.enqueue(PUSH_JOB, { notificationIds: [row.id] }, { jobId: `push-${row.id}`, delayMs });
      }
      done += userIds.length;
      afterId = userIds[userIds.length - 1]!;
      await context.progress(Math.min(99, Math.floor((done * 100) / Math.max(total, 1))));
    }
    await this.repository.finishBroadcast(broadcastId, done, this.clock.now());
    await context.progress(100);
  }

  /** Deliveries by channel and outcome, for the admin dashboard. */
  async deliveryCounts() {
    return this.repository.deliveryCounts();
  }
}

/** Runs `work` on every item, at most `limit` at once. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
