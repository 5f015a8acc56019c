import type { EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import { DrainWindows } from '../../infra/drain-windows.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { JobContext, JobQueue } from '../../infra/jobs.js';
import type { Logger } from '../../infra/logger.js';
import {
  PaymentProviderError,
  WebhookVerificationError,
  type PaymentEffect,
  type PaymentProvider,
  type PaymentProviderName,
  type WebhookHeaders,
} from '../../infra/payments/provider.js';
import { redisKeys } from '../../infra/redis-keys.js';
import type { RedisConnection } from '../../infra/redis.js';
import { inParallel } from '../../shared/concurrency.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import type { LmsService } from '../lms/index.js';
import { grantsAccess, sponsorshipStatus, withEffect } from './effects.js';
import type { Notice, PaymentNotifier } from './notices.js';
import type { OrderRecord, PaymentsRepository, WebhookEventRecord } from './repository.js';

export const WEBHOOK_JOB = 'payments.webhooks';

/** Redis remembers a stored event this long: Stripe retries a webhook for up to 3 days. */
const GATE_TTL_SECONDS = 72 * 3600;
/** Tries of one event before it waits for an operator (GET /admin/webhooks). */
export const EVENT_ATTEMPTS = 8;
/** The inbox's event_id column. */
const MAX_EVENT_ID_LENGTH = 255;
const UNMATCHED_ATTEMPTS = 3;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 10 * 60_000;
const BATCH = 100;
/** Events received within one window share one drain job. */
const DRAIN_WINDOW_MS = 100;
/** Events one drain applies at once. */
const APPLY_CONCURRENCY = 16;
/** A drain hands over to a fresh job after this long, so one job never holds a worker for long. */
const DRAIN_BUDGET_MS = 20_000;
/** How soon a drain that found every due event taken looks again. */
const IDLE_RECHECK_MS = 1_000;

export interface InboxDependencies {
  /**
   * A worker holds the events it claimed this long; one that died gives them up after it. At
   * least the job runtime's stalled timeout, after which the drain job itself runs again.
   */
  leaseMs: number;
  repository: PaymentsRepository;
  providers: ReadonlyMap<PaymentProviderName, PaymentProvider>;
  lms: LmsService;
  notifier: PaymentNotifier;
  jobs: JobQueue;
  redis: RedisConnection;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

/**
 * Provider events, exactly once: verified, written to the inbox before the provider hears
 * 2xx, then applied by jobs. The unique (provider, event id) row and the order's own facts are
 * the permanent guard; Redis only spares a repeated delivery the database round trip.
 */
export class WebhookInbox {
  private readonly windows: DrainWindows;

  constructor(private readonly dependencies: InboxDependencies) {
    this.windows = new DrainWindows(dependencies.jobs, { name: WEBHOOK_JOB, idPrefix: 'webhooks', windowMs: DRAIN_WINDOW_MS });
  }

  /** Verifies and stores one delivery. Throws 400 `invalid_signature` (nothing stored) or 503 when the provider's verification service is down. */
  async receive(providerName: PaymentProviderName, rawBody: Buffer, headers: WebhookHeaders): Promise<{ eventId: string; duplicate: boolean }> {
    const { repository, providers, redis, logger } = this.dependencies;
    const provider = providers.get(providerName);
    if (!provider) throw new AppError('not_found', `No ${providerName} webhook here: ${providerName} is not configured on this server`);
    const event = await provider.parseAndVerifyWebhook(rawBody, headers).catch((error: unknown) => {
      if (error instanceof WebhookVerificationError) {
        logger.warn({ provider: providerName, reason: error.message }, 'webhook refused: not authentic');
        throw new AppError('invalid_signature', 'Webhook signature verification failed');
      }
      if (error instanceof PaymentProviderError)
        throw new AppError('payment_provider_unavailable', `Could not verify the webhook with ${providerName}; retry later`);
      throw error;
    });
    // the inbox keys events by id: no provider sends one this long, so it is not an event of theirs
    if (event.eventId.length > MAX_EVENT_ID_LENGTH) throw new AppError('invalid_signature', 'Webhook event id is too long');
    const gate = redisKeys.webhookSeen(providerName, event.eventId);
    const seen = await redis.client.exists(gate).catch(() => 0);
    if (seen) return { eventId: event.eventId, duplicate: true };
    const now = this.dependencies.clock.now();
    const inserted = await repository.insertEvent({
      id: this.dependencies.ids.uuid(),
      provider: providerName,
      eventId: event.eventId,
      type: event.type.slice(0, 100),
      payload: event.payload,
      effect: event.effect,
      receivedAt: now,
    });
    if (inserted) await this.drainIn(0);
    // after the row: a gate set without its row would drop the event's retries
    await redis.client.set(gate, '1', 'EX', GATE_TTL_SECONDS).catch((error: unknown) => logger.warn({ err: error }, 'could not set the webhook gate in Redis'));
    return { eventId: event.eventId, duplicate: !inserted };
  }

  /** Makes sure a drain job runs `delayMs` from now: one job per window, whatever the number of events. */
  drainIn(delayMs: number): Promise<void> {
    return this.windows.drainIn(delayMs);
  }

  /** Applies every due event, batch by batch, until none is left. */
  async drain(windowEnd: number, context: Pick<JobContext, 'logger' | 'signal'>): Promise<void> {
    await this.windows.untilOver(windowEnd, context.signal);
    const started = Date.now();
    let applied = 0;
    for (;;) {
      if (context.signal.aborted) return;
      const claimed = await this.dependencies.repository.claimDueEvents(this.dependencies.clock.now(), this.dependencies.leaseMs, BATCH);
      await this.processBatch(claimed, context.logger);
      applied += claimed.length;
      if (claimed.length < BATCH) break;
      if (Date.now() - started > DRAIN_BUDGET_MS) return this.drainIn(0);
    }
    // Due events this drain could not take are held by a running worker (locked rows are
    // skipped): look again a little later rather than spin on them.
    await this.scheduleNextDue(applied ? 0 : IDLE_RECHECK_MS);
  }

  /** Enqueues a drain for when the next event is due (its retry, or the end of a dead worker's claim), not before `atLeastMs`. */
  async scheduleNextDue(atLeastMs = 0): Promise<void> {
    const due = await this.dependencies.repository.nextDueEventAt();
    if (due) await this.drainIn(Math.max(atLeastMs, due.getTime() - this.dependencies.clock.now().getTime()));
  }

  /** Puts a failed event back in the queue (an operator's retry). */
  async retry(eventId: string): Promise<WebhookEventRecord> {
    const event = await this.dependencies.repository.requeueEvent(eventId, this.dependencies.clock.now());
    if (!event) {
      const existing = await this.dependencies.repository.findEvent(eventId);
      if (!existing) throw new NotFoundError('Webhook event');
      throw new AppError('conflict', 'This event was processed already');
    }
    await this.drainIn(0);
    return event;
  }

  /**
   * Applies every claimed event first (their orders paid, enrolled, refunded), then sends the
   * notices they call for: a slow notice never holds back another event's effect.
   */
  private async processBatch(events: readonly WebhookEventRecord[], logger: Logger): Promise<void> {
    const pending: Array<{ event: WebhookEventRecord; notices: Notice[] }> = [];
    // each event locks its own order: events of different orders apply side by side, those of one order in turn
    await inParallel(events, APPLY_CONCURRENCY, async (event) => {
      try {
        if (event.appliedAt) return void pending.push({ event, notices: (event.notices ?? []) as Notice[] });
        const notices = await this.apply(event);
        // without notices the event was marked processed with its effect
        if (notices.length) pending.push({ event, notices });
      } catch (error) {
        await this.failed(event, error, logger);
      }
    });
    await inParallel(pending, APPLY_CONCURRENCY, async ({ event, notices }) => {
      try {
        // after the commit, and again on a retry: each notice has its own dedupe key
        for (const notice of notices) await this.dependencies.notifier.send(notice);
        await this.dependencies.repository.markProcessed(event.id, this.dependencies.clock.now());
      } catch (error) {
        await this.failed(event, error, logger);
      }
    });
  }

  /** Schedules another try of a failed event, or leaves it to an operator after its last. */
  private async failed(event: WebhookEventRecord, error: unknown, logger: Logger): Promise<void> {
    const reason = error instanceof UnmatchedEventError || error instanceof PaymentProviderError ? error.message : 'internal error while applying the event';
    // an unmatched event may only be early (its order's provider id not saved yet): a few tries, then an operator
    const final =
      event.attempts >= EVENT_ATTEMPTS ||
      (error instanceof UnmatchedEventError && event.attempts >= UNMATCHED_ATTEMPTS) ||
      (error instanceof PaymentProviderError && error.kind === 'rejected');
    (final ? logger.error.bind(logger) : logger.warn.bind(logger))(
      { err: error, provider: event.provider, eventId: event.eventId, type: event.type, attempt: event.attempts },
      final ? 'payment event failed: waiting for an operator (GET /admin/webhooks)' : 'payment event failed: retrying',
    );
    const delayMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (event.attempts - 1));
    const { repository, clock } = this.dependencies;
    await repository.markAttemptFailed(event.id, reason, final ? { final: true } : { final: false, nextAttemptAt: new Date(clock.now().getTime() + delayMs) });
  }

  /** Applies the event's effect in one transaction with its record; returns the notices it calls for. */
  private async apply(event: WebhookEventRecord): Promise<Notice[]> {
    const provider = event.provider as PaymentProviderName;
    let effect = event.effect as PaymentEffect;
    if (effect.kind === 'ignored') {
      await this.dependencies.repository.markApplied(event.id, null, [], this.dependencies.clock.now());
      return [];
    }
    if (effect.kind === 'approved') effect = await this.captureApproved(provider, effect);
    const paid = effect;
    return this.dependencies.repository.transaction(async (manager) => {
      const locked = await this.dependencies.repository.lockEvent(manager, event.id);
      if (locked?.appliedAt) return (locked.notices ?? []) as Notice[];
      const order = await this.dependencies.repository.lockOrderByReference(manager, provider, paid.kind === 'ignored' ? {} : paid.ref);
      if (!order) throw new UnmatchedEventError(`No ${provider} order matches this event (${JSON.stringify(paid.kind === 'ignored' ? {} : paid.ref)})`);
      const notices = await this.applyToOrder(manager, order, paid);
      await this.dependencies.repository.markApplied(event.id, order.id, notices, this.dependencies.clock.now(), manager);
      return notices;
    });
  }

  /** PayPal: an approved order is paid once captured (idempotent on PayPal's side). */
  private async captureApproved(providerName: PaymentProviderName, effect: Extract<PaymentEffect, { kind: 'approved' }>): Promise<PaymentEffect> {
    const provider = this.dependencies.providers.get(providerName);
    if (!provider?.capture || !effect.ref.providerSessionId) return { kind: 'ignored' };
    const result = await provider.capture(effect.ref.providerSessionId, effect.ref.orderId ?? effect.ref.providerSessionId);
    if (result.status === 'paid') return { kind: 'paid', ref: effect.ref, providerPaymentId: result.providerPaymentId };
    if (result.status === 'failed') return { kind: 'failed', ref: effect.ref, reason: 'capture declined' };
    return { kind: 'ignored' };
  }

  /** Applies an effect Parley learnt from the provider's own answer (a PayPal capture), as an event would, and tells whom it concerns. */
  async applyNow(orderId: string, effect: PaymentEffect): Promise<void> {
    const { repository } = this.dependencies;
    const notices = await repository.transaction(async (manager) => {
      const order = await repository.lockOrder(manager, orderId);
      if (!order) throw new NotFoundError('Order');
      return this.applyToOrder(manager, order, effect);
    });
    for (const notice of notices) await this.dependencies.notifier.send(notice);
  }

  /**
   * Adds an effect to a locked order and keeps what depends on it in the same transaction:
   * the course enrollment, the donation's status. Returns the notices to send after commit.
   */
  async applyToOrder(manager: EntityManager, order: OrderRecord, effect: PaymentEffect): Promise<Notice[]> {
    const { repository, lms, clock, ids } = this.dependencies;
    const now = clock.now();
    const notices: Notice[] = [];
    let refundedBySucceededRows = order.refundedMinor;
    if (effect.kind === 'refunded' && effect.refundId) {
      await repository.confirmRefund(manager, {
        id: ids.uuid(),
        orderId: order.id,
        provider: order.provider,
        providerRefundId: effect.refundId,
        amountMinor: effect.amountMinor,
        now,
      });
      const rows = await repository.refunds(manager, order.id);
      refundedBySucceededRows = rows.filter((row) => row.status === 'succeeded').reduce((sum, row) => sum + row.amountMinor, 0);
    }
    const next = withEffect(order, effect, refundedBySucceededRows, now);
    next.updatedAt = now;
    await repository.saveOrderFacts(manager, next);

    if (next.kind === 'course' && next.courseId) {
      if (grantsAccess(next)) await lms.grantPurchase(manager, { userId: next.userId, courseId: next.courseId, orderId: next.id });
      else if (next.refundedMinor >= next.amountMinor && (await lms.revokePurchase(manager, next.id))) {
        // the buyer paid for the course by another order too (a checkout left open, then paid): that one keeps it
        const other = await repository.lockOtherPayingCourseOrder(manager, next);
        if (other) await lms.grantPurchase(manager, { userId: other.userId, courseId: next.courseId, orderId: other.id });
      }
    }
    if (next.kind === 'donation') {
      await repository.syncSponsorship(manager, next.id, {
        status: sponsorshipStatus(next.status),
        captureId: next.providerPaymentId,
        completedAt: next.paidAt,
      });
    }

    const about = {
      userId: next.userId,
      orderId: next.id,
      orderKind: next.kind,
      courseId: next.courseId,
      description: next.description,
      currency: next.currency,
    };
    if (!order.paidAt && next.paidAt && effect.kind === 'paid')
      notices.push({ kind: 'paid', ...about, amountMinor: next.amountMinor, paidAt: next.paidAt.toISOString() });
    if (effect.kind === 'refunded' && next.refundedMinor > order.refundedMinor) {
      // keyed by the running total: two events about one refund (charge.refunded, refund.created) tell the buyer once
      notices.push({
        kind: 'refunded',
        ...about,
        refundedTotalMinor: next.refundedMinor,
        amountMinor: next.refundedMinor - order.refundedMinor,
        full: next.refundedMinor >= next.amountMinor,
      });
    }
    if (effect.kind === 'disputed' && !order.disputedAt)
      notices.push({ kind: 'disputed', ...about, disputeId: effect.disputeId, amountMinor: next.amountMinor });
    return notices;
  }
}

/** The event names no order Parley knows: kept, reported, retried by an operator. */
export class UnmatchedEventError extends Error {
  override name = 'UnmatchedEventError';
}
