import { inParallel } from '../../shared/concurrency.js';
import { DrainWindows } from '../../infra/drain-windows.js';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { JobContext, JobQueue } from '../../infra/jobs.js';
import type { Logger } from '../../infra/logger.js';
import { rethrowForJobs } from '../../infra/mail-queue.js';
import { MailRefusedError, type Mailer } from '../../infra/mailer.js';
import { renderMail } from '../../infra/mail-templates.js';
import { PushError, type PushSender } from '../../infra/push.js';
import { AppError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { AccountsService } from '../users/index.js';
import type { BroadcastAudience, Channel, NotificationType, Platform } from './entities.js';
import { mergeOverrides, quietDelayMs, resolveChannels, type ChannelOverrides, type Preferences, type QuietHours } from './preferences.js';
import type { ClaimedPush, DeliveryOutcome, DeviceRecord, MailContent, NotificationRecord, NotificationsRepository, StoredPreferences } from './repository.js';

export const PUSH_JOB = 'notifications.push';
export const EMAIL_JOB = 'notifications.email';
export const BROADCAST_JOB = 'notifications.broadcast';
/** Tries of a push or an e-mail: the first and four retries (exponential from 2 s, or as FCM's Retry-After says). */
export const DELIVERY_ATTEMPTS = 5;
const RETRY_BASE_MS = 2_000;

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

export interface NotificationsDependencies {
  repository: NotificationsRepository;
  accounts: AccountsService;
  sessions: { sessionDevice(sessionId: string): Promise<string | null> };
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
/** Pushes one drain claims at a time. */
const PUSH_BATCH = 500;
/** A drain hands over to a fresh job after this long, so one job never holds a worker for long. */
const DRAIN_BUDGET_MS = 20_000;
/** Pushes due within one window share one drain job. */
const DRAIN_WINDOW_MS = 25;

const view = ({ userId: _userId, ...notification }: NotificationRecord): NotificationView => notification;

/** In-app notifications, device tokens, preferences, and their delivery by push and e-mail. */
export class NotificationsService {
  private readonly repository: NotificationsRepository;
  private readonly accounts: AccountsService;
  private readonly sessions: NotificationsDependencies['sessions'];
  private readonly jobs: JobQueue;
  private readonly push: PushSender;
  private readonly mailer: Mailer;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly logger: Logger;

  private readonly pushWindows: DrainWindows;
  constructor(
    dependencies: NotificationsDependencies,
    private readonly settings: NotificationsSettings,
  ) {
    this.repository = dependencies.repository;
    this.accounts = dependencies.accounts;
    this.sessions = dependencies.sessions;
    this.jobs = dependencies.jobs;
    this.push = dependencies.push;
    this.mailer = dependencies.mailer;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.logger = dependencies.logger;
    this.pushWindows = new DrainWindows(dependencies.jobs, { name: PUSH_JOB, idPrefix: 'push', windowMs: DRAIN_WINDOW_MS });
  }

  // --- devices

  /**
   * Registers the push token of the caller's own device: the device its session signed in
   * with, so that signing that session out forgets the token. A `deviceId` that names another
   * device is refused.
   */
  async registerDevice(
    caller: { userId: string; sessionId: string },
    device: { deviceId?: string | undefined; platform: Platform; fcmToken: string },
  ): Promise<DeviceRecord> {
    const deviceId = await this.sessions.sessionDevice(caller.sessionId);
    if (!deviceId) throw new AppError('session_revoked', 'This session was signed out');
    if (device.deviceId !== undefined && device.deviceId !== deviceId) {
      throw new ValidationError('deviceId is not the device this session signed in with', {
        fields: [{ in: 'body', path: 'deviceId', message: `this session signed in as device "${deviceId}"; omit deviceId or send that one` }],
      });
    }
    return this.repository.saveDevice({
      id: this.ids.uuid(),
      userId: caller.userId,
      deviceId,
      platform: device.platform,
      fcmToken: device.fcmToken,
      now: this.clock.now(),
    });
  }

  /** Forgets the device's token (the app signs out, or turns push off); nothing to forget is fine. */
  async removeDevice(userId: string, deviceId: string): Promise<void> {
    await this.repository.deleteDevice(userId, deviceId);
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
    if (stored.pushes) await this.drainPushesIn(delayMs);
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
   * Makes sure a drain job runs once `delayMs` from now (after the caller committed its
   * pushes): one job per window, whatever the number of pushes (a broadcast page, a burst).
   */
  private drainPushesIn(delayMs: number): Promise<void> {
    return this.pushWindows.drainIn(delayMs);
  }

  /**
   * Sends every due push, batch by batch, `pushConcurrency` at once, until none is left. A push
   * already sent is never sent again (its delivery row says so, and a claim holds it); a dead
   * token is deleted; a transient failure is queued again after FCM's Retry-After or an
   * exponential backoff, until the last try marks it failed. A crash between a send and its
   * record may send that one push again after the lease: the collapse key makes the device
   * show it once.
   */
  async drainDuePushes(windowEnd: number, context: Pick<JobContext, 'logger'> & { signal?: AbortSignal }): Promise<void> {
    await this.pushWindows.untilOver(windowEnd, context.signal);
    const started = Date.now();
    for (;;) {
      if (context.signal?.aborted) return;
      const claimed = await this.repository.claimDuePushes(this.clock.now(), DELIVERY_LEASE_MS, PUSH_BATCH);
      if (!claimed.length) return;
      await this.sendPushes(claimed, context);
      if (claimed.length < PUSH_BATCH) return;
      if (Date.now() - started > DRAIN_BUDGET_MS) return this.drainPushesIn(0);
    }
  }

  private async sendPushes(claimed: ClaimedPush[], context: Pick<JobContext, 'logger'> & { signal?: AbortSignal }): Promise<void> {
    const outcomes: DeliveryOutcome[] = [];
    const sent = new Set<string>();
    let retryInMs: number | null = null;
    const queueAgain = (push: ClaimedPush, code: string, retryAfterMs: number | undefined) => {
      const waitMs = Math.max(retryAfterMs ?? 0, RETRY_BASE_MS * 2 ** (push.attempts - 1));
      retryInMs = Math.min(retryInMs ?? waitMs, waitMs);
      outcomes.push({ deliveryId: push.deliveryId, status: 'queued', error: code, notBefore: new Date(this.clock.now().getTime() + waitMs) });
    };
    const send = async (push: ClaimedPush) => {
      // A job abandoned at shutdown sends no more: what it did not send goes back to the queue now, not after the lease.
      if (context.signal?.aborted) return outcomes.push({ deliveryId: push.deliveryId, status: 'queued', error: null });
      if (!push.fcmToken) return outcomes.push({ deliveryId: push.deliveryId, status: 'failed', error: 'device_removed' });
      try {
        await this.push.send({ token: push.fcmToken, collapseKey: push.notificationId, ...fitForPush(push) });
        sent.add(push.notificationId);
        return outcomes.push({ deliveryId: push.deliveryId, status: 'sent', error: null });
      } catch (error) {
        const failure = error instanceof PushError ? error : new PushError('transient', 'unknown', error instanceof Error ? error.message : String(error));
        if (failure.kind === 'transient' && push.attempts < DELIVERY_ATTEMPTS) return queueAgain(push, failure.code, failure.retryAfterMs);
        context.logger.warn({ code: failure.code, kind: failure.kind, notificationId: push.notificationId }, 'push not delivered');
        outcomes.push({ deliveryId: push.deliveryId, status: 'failed', error: failure.code });
        if (failure.kind === 'invalid-token') {
          await this.repository
            .deleteDeadToken(push.userId, push.deviceId, push.fcmToken)
            .catch((reason: unknown) => context.logger.warn({ err: reason }, 'could not delete a dead push token; its next push will fail again'));
        }
      }
    };
    try {
      await inParallel(claimed, this.settings.pushConcurrency, send);
    } finally {
      // Whatever happened to the others, what was sent is recorded: never sent twice.
      const now = this.clock.now();
      await this.repository.settle(outcomes, now);
      await this.repository.markSent([...sent], now);
    }
    if (retryInMs !== null) await this.drainPushesIn(retryInMs);
  }

  /** Sends the notification's e-mail once, to the address the account has now. */
  async deliverEmail(notificationId: string, context: Pick<JobContext, 'attempt'>): Promise<void> {
    const claimed = await this.repository.claimEmail(notificationId, this.clock.now(), DELIVERY_LEASE_MS);
    if (!claimed) return;
    try {
      const account = await this.accounts.findSummary(claimed.userId);
      if (!account) return await this.repository.settle([{ deliveryId: claimed.deliveryId, status: 'failed', error: 'no_address' }], this.clock.now());
      await this.mailer.send({ to: account.email, ...claimed.content });
    } catch (error) {
      const final = context.attempt >= DELIVERY_ATTEMPTS || (error instanceof MailRefusedError && error.permanent);
      await this.repository.settle([{ deliveryId: claimed.deliveryId, status: final ? 'failed' : 'queued', error: 'send_failed' }], this.clock.now());
      rethrowForJobs(error);
    }
    const now = this.clock.now();
    await this.repository.settle([{ deliveryId: claimed.deliveryId, status: 'sent', error: null }], now);
    await this.repository.markSent([notificationId], now);
  }

  /** Enqueues again the deliveries whose job was lost (a crash between commit and enqueue, a drain that died). */
  async redeliverStranded(): Promise<number> {
    const now = this.clock.now();
    const stranded = await this.repository.strandedDeliveries(new Date(now.getTime() - STRANDED_AFTER_MS), 1000);
    if (stranded.pushes) await this.drainPushesIn(0);
    // the e-mail's own job id: a job still waiting (a backlog, a Retry-After) is not doubled
    for (const notificationId of stranded.emails) await this.jobs.enqueue(EMAIL_JOB, { notificationId }, { jobId: `email-${notificationId}` });
    return stranded.pushes + stranded.emails.length;
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
        return { id: this.ids.uuid(), userId, pushNotBefore: delayMs ? new Date(now.getTime() + delayMs) : null };
      });
      const stored = await this.repository.insertMany(
        rows,
        { type: 'system', title: broadcast.title, body: broadcast.body, data: { broadcastId }, dedupeKey: `broadcast:${broadcastId}` },
        now,
      );
      // one drain for the page's due pushes, one per distinct end of quiet hours
      const delays = new Set(stored.length ? rows.map((row) => (row.pushNotBefore ? row.pushNotBefore.getTime() - now.getTime() : 0)) : []);
      for (const delayMs of delays) await this.drainPushesIn(delayMs);
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

/** FCM refuses a message over 4 KB (title, body and data together); the rest is room for its own fields. */
const PUSH_PAYLOAD_BYTES = 3_500;

/**
 * The push of a notification, its body cut (with an ellipsis) to fit FCM's size limit: the
 * inbox keeps the whole text, which the app shows when opened.
 */
function fitForPush(push: Pick<ClaimedPush, 'title' | 'body' | 'data' | 'notificationId' | 'type'>): {
  title: string;
  body: string;
  data: Record<string, string>;
} {
  const data = { ...push.data, notificationId: push.notificationId, type: push.type };
  const title = cutToBytes(push.title, 600);
  const room = PUSH_PAYLOAD_BYTES - Buffer.byteLength(title) - Buffer.byteLength(JSON.stringify(data));
  return { title, body: cutToBytes(push.body, Math.max(0, room)), data };
}

function cutToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const budget = maxBytes - Buffer.byteLength('…');
  let bytes = 0;
  let end = 0;
  for (const character of text) {
    bytes += Buffer.byteLength(character);
    if (bytes > budget) break;
    end += character.length;
  }
  return `${text.slice(0, end)}…`;
}
