import type { DataSource, EntityManager } from 'typeorm';
import type { OrderReference, PaymentProviderName } from '../../infra/payments/provider.js';
import { updateReturning } from '../../infra/sql.js';
import type { Keyset } from '../../shared/pagination.js';
import type {
  LocalCheckoutSession,
  Order,
  OrderKind,
  OrderRefund,
  OrderStatus,
  PaymentWebhookEvent,
  RefundStatus,
  Sponsorship,
  SponsorshipStatus,
  WebhookStatus,
} from './entities.js';

export type OrderRecord = Omit<Order, 'user' | 'course'>;
export type RefundRecord = Omit<OrderRefund, 'order' | 'requester'>;
export type WebhookEventRecord = Omit<PaymentWebhookEvent, 'order'>;
export type SponsorshipRecord = Omit<Sponsorship, 'user' | 'order'>;
export type LocalSessionRecord = Omit<LocalCheckoutSession, 'order'>;

type Queryable = EntityManager | DataSource;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const ORDER_COLUMNS = `id, receipt_id AS "receiptId", user_id AS "userId", kind, course_id AS "courseId", description, provider,
  provider_session_id AS "providerSessionId", provider_payment_id AS "providerPaymentId", checkout_url AS "checkoutUrl",
  amount_minor AS "amountMinor", currency, status, refunded_minor AS "refundedMinor", paid_at AS "paidAt", expired_at AS "expiredAt",
  failed_at AS "failedAt", failure_reason AS "failureReason", disputed_at AS "disputedAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

const REFUND_COLUMNS = `id, order_id AS "orderId", provider, provider_refund_id AS "providerRefundId", amount_minor AS "amountMinor", status,
  requested_by AS "requestedBy", error, created_at AS "createdAt", updated_at AS "updatedAt"`;

const EVENT_COLUMNS = `id, provider, event_id AS "eventId", type, payload, effect, status, attempts, next_attempt_at AS "nextAttemptAt",
  claimed_until AS "claimedUntil", last_error AS "lastError", order_id AS "orderId", notices, received_at AS "receivedAt",
  applied_at AS "appliedAt", processed_at AS "processedAt"`;

const SPONSORSHIP_COLUMNS = `id, user_id AS "userId", order_id AS "orderId", sponsor_type AS "sponsorType", target_identifier AS "targetIdentifier",
  amount_minor AS "amountMinor", currency, payment_provider AS "paymentProvider", payment_provider_order_id AS "paymentProviderOrderId",
  payment_provider_capture_id AS "paymentProviderCaptureId", message, anonymous, status, created_at AS "createdAt", completed_at AS "completedAt"`;

const LOCAL_COLUMNS = `id, order_id AS "orderId", description, amount_minor AS "amountMinor", currency, status, payment_id AS "paymentId",
  refunded_minor AS "refundedMinor", refund_ids AS "refundIds", created_at AS "createdAt", expires_at AS "expiresAt"`;

export interface OrderFilter {
  status?: OrderStatus | undefined;
  userId?: string | undefined;
  kind?: OrderKind | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

export interface OrderTotals {
  currency: string;
  orders: number;
  amountMinor: number;
  refundedMinor: number;
}

function orderConditions(filter: OrderFilter, parameters: unknown[]): string[] {
  const conditions: string[] = [];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    parameters.push(value);
    conditions.push(sql(`$${parameters.length}`));
  };
  if (filter.status) add((p) => `status = ${p}`, filter.status);
  if (filter.userId) add((p) => `user_id = ${p}`, filter.userId);
  if (filter.kind) add((p) => `kind = ${p}`, filter.kind);
  if (filter.from) add((p) => `created_at >= ${p}`, filter.from);
  if (filter.to) add((p) => `created_at < ${p}`, filter.to);
  return conditions;
}

/**
 * JSON for a jsonb column: PostgreSQL refuses U+0000 in jsonb (and in text), which a provider's
 * event may carry in text its customer typed; it is kept as U+FFFD. Only the escape itself is
 * replaced, not an escaped backslash followed by "u0000".
 */
function jsonbText(value: unknown): string {
  return JSON.stringify(value).replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd');
}

/** The only SQL of the payments module. */
export class PaymentsRepository {
  constructor(private readonly db: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  // --- orders

  async insertOrder(order: OrderRecord, manager: Queryable = this.db): Promise<void> {
    await manager.query(
      `INSERT INTO orders (id, receipt_id, user_id, kind, course_id, description, provider, amount_minor, currency, status, refunded_minor, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10)`,
      [
        order.id,
        order.receiptId,
        order.userId,
        order.kind,
        order.courseId,
        order.description,
        order.provider,
        order.amountMinor,
        order.currency,
        order.createdAt,
      ],
    );
  }

  async pendingCourseOrder(userId: string, courseId: string): Promise<OrderRecord | null> {
    const rows: OrderRecord[] = await this.db.query(
      `SELECT ${ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND course_id = $2 AND kind = 'course' AND status = 'pending'`,
      [userId, courseId],
    );
    return rows[0] ?? null;
  }

  /** Saves the provider's session on the order, and on its donation (document 000's payment_provider_order_id), in one statement. */
  async setCheckout(orderId: string, providerSessionId: string, url: string, now: Date): Promise<void> {
    await this.db.query(
      `WITH opened AS (UPDATE orders SET provider_session_id = $2, checkout_url = $3, updated_at = $4 WHERE id = $1 RETURNING id)
       UPDATE sponsorships SET payment_provider_order_id = $2 WHERE order_id IN (SELECT id FROM opened)`,
      [orderId, providerSessionId, url, now],
    );
  }

  /** A pending order whose checkout could not be opened (or never was): failed, so a new one may start, and its donation with it. */
  async failUnopenedOrder(orderId: string, reason: string, now: Date): Promise<boolean> {
    const rows: Array<{ id: string }> = await this.db.query(
      `WITH failed AS (
         UPDATE orders SET status = 'failed', failed_at = $3, failure_reason = $2, updated_at = $3
         WHERE id = $1 AND status = 'pending' AND provider_session_id IS NULL RETURNING id),
       donation AS (UPDATE sponsorships SET status = 'failed' WHERE order_id IN (SELECT id FROM failed) AND status = 'pending')
       SELECT id FROM failed`,
      [orderId, reason, now],
    );
    return rows.length > 0;
  }

  /**
   * A pending checkout set aside for a new one (too old to reuse, or of a provider no longer
   * chosen). Should the buyer still pay it, its event marks it paid all the same.
   */
  async expirePendingOrder(orderId: string, now: Date): Promise<boolean> {
    const rows = await updateReturning<{ id: string }>(
      this.db,
      `UPDATE orders SET status = 'expired', expired_at = coalesce(expired_at, $2), updated_at = $2 WHERE id = $1 AND status = 'pending' RETURNING id`,
      [orderId, now],
    );
    return rows.length > 0;
  }

  async findOrder(id: string, manager: Queryable = this.db): Promise<OrderRecord | null> {
    const rows: OrderRecord[] = await manager.query(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** The order an event points at, locked for the rest of the transaction. */
  async lockOrderByReference(manager: EntityManager, provider: PaymentProviderName, ref: OrderReference): Promise<OrderRecord | null> {
    const lookups: Array<[string, unknown[]]> = [];
    if (ref.orderId && UUID.test(ref.orderId)) lookups.push([`id = $1 AND provider = $2`, [ref.orderId, provider]]);
    if (ref.providerSessionId) lookups.push([`provider_session_id = $1 AND provider = $2`, [ref.providerSessionId, provider]]);
    if (ref.providerPaymentId) lookups.push([`provider_payment_id = $1 AND provider = $2`, [ref.providerPaymentId, provider]]);
    for (const [condition, parameters] of lookups) {
      const rows: OrderRecord[] = await manager.query(`SELECT ${ORDER_COLUMNS} FROM orders WHERE ${condition} FOR UPDATE`, parameters);
      if (rows[0]) return rows[0];
    }
    return null;
  }

  async lockOrder(manager: EntityManager, id: string): Promise<OrderRecord | null> {
    const rows: OrderRecord[] = await manager.query(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE`, [id]);
    return rows[0] ?? null;
  }

  /** Another order of the buyer that still pays for the same course (paid, not wholly refunded), locked; null when none does. */
  async lockOtherPayingCourseOrder(manager: EntityManager, order: Pick<OrderRecord, 'id' | 'userId' | 'courseId'>): Promise<OrderRecord | null> {
    const rows: OrderRecord[] = await manager.query(
      `SELECT ${ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND course_id = $2 AND kind = 'course' AND id <> $3
         AND (paid_at IS NOT NULL OR refunded_minor > 0) AND refunded_minor < amount_minor
       ORDER BY paid_at, id LIMIT 1 FOR UPDATE`,
      [order.userId, order.courseId, order.id],
    );
    return rows[0] ?? null;
  }

  async saveOrderFacts(manager: EntityManager, order: OrderRecord): Promise<void> {
    await manager.query(
      `UPDATE orders SET status = $2, provider_payment_id = $3, refunded_minor = $4, paid_at = $5, expired_at = $6, failed_at = $7, failure_reason = $8,
         disputed_at = $9, updated_at = $10 WHERE id = $1`,
      [
        order.id,
        order.status,
        order.providerPaymentId,
        order.refundedMinor,
        order.paidAt,
        order.expiredAt,
        order.failedAt,
        order.failureReason,
        order.disputedAt,
        order.updatedAt,
      ],
    );
  }

  async listOrders(filter: OrderFilter, limit: number, after?: Keyset): Promise<OrderRecord[]> {
    const parameters: unknown[] = [limit + 1];
    const conditions = orderConditions(filter, parameters);
    if (after) {
      parameters.push(after.createdAt, after.id);
      conditions.push(`(created_at, id) < ($${parameters.length - 1}, $${parameters.length})`);
    }
    return this.db.query(
      `SELECT ${ORDER_COLUMNS} FROM orders ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $1`,
      parameters,
    );
  }

  /** Per currency: how many orders match, what they were for and what went back. */
  async orderTotals(filter: OrderFilter): Promise<OrderTotals[]> {
    const parameters: unknown[] = [];
    const conditions = orderConditions(filter, parameters);
    const rows: Array<{ currency: string; orders: string; amount: string; refunded: string }> = await this.db.query(
      `SELECT currency, count(*) AS orders, coalesce(sum(amount_minor), 0) AS amount, coalesce(sum(refunded_minor), 0) AS refunded
       FROM orders ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} GROUP BY currency ORDER BY currency`,
      parameters,
    );
    return rows.map((row) => ({ currency: row.currency, orders: Number(row.orders), amountMinor: Number(row.amount), refundedMinor: Number(row.refunded) }));
  }

  // --- refunds

  async refunds(manager: Queryable, orderId: string): Promise<RefundRecord[]> {
    return manager.query(`SELECT ${REFUND_COLUMNS} FROM order_refunds WHERE order_id = $1 ORDER BY created_at, id`, [orderId]);
  }

  async insertRefund(manager: Queryable, refund: RefundRecord): Promise<void> {
    await manager.query(
      `INSERT INTO order_refunds (id, order_id, provider, provider_refund_id, amount_minor, status, requested_by, error, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
      [
        refund.id,
        refund.orderId,
        refund.provider,
        refund.providerRefundId,
        refund.amountMinor,
        refund.status,
        refund.requestedBy,
        refund.error,
        refund.createdAt,
      ],
    );
  }

  /**
   * What the provider said of a refund Parley asked for; a refund its event already confirmed
   * stays `succeeded`. The event may have been applied before this answer came back: it then
   * recorded the refund as one made elsewhere, in a row of its own under the provider's refund
   * id, and that row is folded into this one, so the refund counts once.
   */
  async recordRefundAnswer(id: string, answer: { status: RefundStatus; providerRefundId: string | null; error: string | null }, now: Date): Promise<void> {
    await this.db.transaction(async (manager) => {
      // the order's lock, which an event applying this refund holds until it commits
      await manager.query(`SELECT o.id FROM orders o JOIN order_refunds r ON r.order_id = o.id WHERE r.id = $1 FOR UPDATE OF o`, [id]);
      const learnt = answer.providerRefundId
        ? await updateReturning<{ status: RefundStatus }>(
            manager,
            `DELETE FROM order_refunds WHERE provider = (SELECT provider FROM order_refunds WHERE id = $1) AND provider_refund_id = $2 AND id <> $1
               AND requested_by IS NULL RETURNING status`,
            [id, answer.providerRefundId],
          )
        : [];
      const status = learnt.some((row) => row.status === 'succeeded') ? 'succeeded' : answer.status;
      await manager.query(
        `UPDATE order_refunds SET status = CASE WHEN status = 'succeeded' THEN status ELSE $2 END, provider_refund_id = coalesce(provider_refund_id, $3), error = $4, updated_at = $5
         WHERE id = $1`,
        [id, status, answer.providerRefundId, answer.error, now],
      );
    });
  }

  /**
   * Records a refund the provider confirmed: the request Parley made for it (same provider
   * refund id) or a new row for one made elsewhere (the provider's dashboard).
   */
  async confirmRefund(
    manager: EntityManager,
    refund: { id: string; orderId: string; provider: string; providerRefundId: string; amountMinor: number; now: Date },
  ): Promise<void> {
    await manager.query(
      `INSERT INTO order_refunds (id, order_id, provider, provider_refund_id, amount_minor, status, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'succeeded', $6, $6)
       ON CONFLICT ON CONSTRAINT order_refunds_provider_refund_unique DO UPDATE SET status = 'succeeded', error = NULL, updated_at = $6`,
      [refund.id, refund.orderId, refund.provider, refund.providerRefundId, refund.amountMinor, refund.now],
    );
  }

  // --- webhook inbox

  /** Writes a verified event; false when this provider's event id was stored before. */
  async insertEvent(event: Pick<WebhookEventRecord, 'id' | 'provider' | 'eventId' | 'type' | 'payload' | 'effect' | 'receivedAt'>): Promise<boolean> {
    const rows: unknown[] = await this.db.query(
      `INSERT INTO payment_webhook_events (id, provider, event_id, type, payload, effect, status, attempts, next_attempt_at, received_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'received', 0, $7, $7)
       ON CONFLICT ON CONSTRAINT payment_webhook_events_provider_event_unique DO NOTHING RETURNING id`,
      [event.id, event.provider, event.eventId, event.type.replaceAll('\u0000', '\ufffd'), jsonbText(event.payload), jsonbText(event.effect), event.receivedAt],
    );
    return rows.length > 0;
  }

  /** Takes up to `limit` due events for `leaseMs`, oldest first, skipping the ones another worker holds. */
  async claimDueEvents(now: Date, leaseMs: number, limit: number): Promise<WebhookEventRecord[]> {
    return updateReturning<WebhookEventRecord>(
      this.db,
      `UPDATE payment_webhook_events SET claimed_until = $2, attempts = attempts + 1
       WHERE id IN (
         SELECT id FROM payment_webhook_events
         WHERE status = 'received' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY received_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING ${EVENT_COLUMNS}`,
      [now, new Date(now.getTime() + leaseMs), limit],
    );
  }

  async lockEvent(manager: EntityManager, id: string): Promise<WebhookEventRecord | null> {
    const rows: WebhookEventRecord[] = await manager.query(`SELECT ${EVENT_COLUMNS} FROM payment_webhook_events WHERE id = $1 FOR UPDATE`, [id]);
    return rows[0] ?? null;
  }

  /** Records the effect as committed with the notices it calls for; without notices the event is done (processed) too. */
  async markApplied(id: string, orderId: string | null, notices: readonly unknown[], now: Date, manager: Queryable = this.db): Promise<void> {
    await manager.query(
      `UPDATE payment_webhook_events SET order_id = $2, notices = $3, applied_at = $4, last_error = NULL,
         status = CASE WHEN $5 THEN 'processed' ELSE status END, processed_at = CASE WHEN $5 THEN $4 ELSE processed_at END,
         claimed_until = CASE WHEN $5 THEN NULL ELSE claimed_until END
       WHERE id = $1`,
      [id, orderId, JSON.stringify(notices), now, notices.length === 0],
    );
  }

  async markProcessed(id: string, now: Date): Promise<void> {
    await this.db.query(`UPDATE payment_webhook_events SET status = 'processed', processed_at = $2, claimed_until = NULL WHERE id = $1`, [id, now]);
  }

  /** Another try at `nextAttemptAt`, or `failed` for an operator when `final`. */
  async markAttemptFailed(id: string, error: string, outcome: { final: true } | { final: false; nextAttemptAt: Date }): Promise<void> {
    await this.db.query(
      `UPDATE payment_webhook_events SET status = $2, last_error = $3, next_attempt_at = coalesce($4, next_attempt_at), claimed_until = NULL WHERE id = $1`,
      [id, outcome.final ? 'failed' : 'received', error.slice(0, 500), outcome.final ? null : outcome.nextAttemptAt],
    );
  }

  /** A failed (or stuck) event back in the queue, due now, with its tries counted afresh. */
  async requeueEvent(id: string, now: Date): Promise<WebhookEventRecord | null> {
    const [row] = await updateReturning<WebhookEventRecord>(
      this.db,
      `UPDATE payment_webhook_events SET status = 'received', attempts = 0, next_attempt_at = $2, claimed_until = NULL WHERE id = $1 AND status <> 'processed' RETURNING ${EVENT_COLUMNS}`,
      [id, now],
    );
    return row ?? null;
  }

  async findEvent(id: string): Promise<WebhookEventRecord | null> {
    const rows: WebhookEventRecord[] = await this.db.query(`SELECT ${EVENT_COLUMNS} FROM payment_webhook_events WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  async listEvents(status: WebhookStatus, limit: number, after?: Keyset): Promise<WebhookEventRecord[]> {
    const parameters: unknown[] = [status, limit + 1];
    let keyset = '';
    if (after) {
      parameters.push(after.createdAt, after.id);
      keyset = `AND (received_at, id) < ($3, $4)`;
    }
    return this.db.query(
      `SELECT ${EVENT_COLUMNS} FROM payment_webhook_events WHERE status = $1 ${keyset} ORDER BY received_at DESC, id DESC LIMIT $2`,
      parameters,
    );
  }

  /** When the next waiting event may be claimed (its retry time, or the end of its current claim): null when none waits. */
  async nextDueEventAt(): Promise<Date | null> {
    const rows: Array<{ due: Date | null }> = await this.db.query(
      `SELECT min(greatest(next_attempt_at, coalesce(claimed_until, next_attempt_at))) AS due FROM payment_webhook_events WHERE status = 'received'`,
    );
    return rows[0]?.due ?? null;
  }

  // --- sponsorships

  async insertSponsorship(manager: Queryable, sponsorship: SponsorshipRecord): Promise<void> {
    await manager.query(
      `INSERT INTO sponsorships (id, user_id, order_id, sponsor_type, target_identifier, amount_minor, currency, payment_provider, message, anonymous, status, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)`,
      [
        sponsorship.id,
        sponsorship.userId,
        sponsorship.orderId,
        sponsorship.sponsorType,
        sponsorship.targetIdentifier,
        sponsorship.amountMinor,
        sponsorship.currency,
        sponsorship.paymentProvider,
        sponsorship.message,
        sponsorship.anonymous,
        sponsorship.createdAt,
      ],
    );
  }

  async findSponsorship(id: string): Promise<SponsorshipRecord | null> {
    const rows: SponsorshipRecord[] = await this.db.query(`SELECT ${SPONSORSHIP_COLUMNS} FROM sponsorships WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** Keeps the donation in step with its order, in the order's transaction. */
  async syncSponsorship(
    manager: EntityManager,
    orderId: string,
    state: { status: SponsorshipStatus; captureId: string | null; completedAt: Date | null },
  ): Promise<void> {
    await manager.query(
      `UPDATE sponsorships SET status = $2, payment_provider_capture_id = coalesce($3, payment_provider_capture_id), completed_at = coalesce(completed_at, $4) WHERE order_id = $1`,
      [orderId, state.status, state.captureId, state.completedAt],
    );
  }

  // --- the local provider's checkouts

  async insertLocalSession(session: LocalSessionRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO local_checkout_sessions (id, order_id, description, amount_minor, currency, status, refunded_minor, refund_ids, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, 'open', 0, '[]', $6, $7)`,
      [session.id, session.orderId, session.description, session.amountMinor, session.currency, session.createdAt, session.expiresAt],
    );
  }

  async findLocalSession(id: string): Promise<LocalSessionRecord | null> {
    const rows: LocalSessionRecord[] = await this.db.query(`SELECT ${LOCAL_COLUMNS} FROM local_checkout_sessions WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** Moves an open, unexpired session to `status`; null when it was not open (completed twice, expired). */
  async closeLocalSession(id: string, status: 'completed' | 'cancelled', paymentId: string | null, now: Date): Promise<LocalSessionRecord | null> {
    const [row] = await updateReturning<LocalSessionRecord>(
      this.db,
      `UPDATE local_checkout_sessions SET status = $2, payment_id = $3 WHERE id = $1 AND status = 'open' AND expires_at > $4 RETURNING ${LOCAL_COLUMNS}`,
      [id, status, paymentId, now],
    );
    return row ?? null;
  }

  async expireLocalSessions(now: Date, limit: number): Promise<LocalSessionRecord[]> {
    return updateReturning<LocalSessionRecord>(
      this.db,
      `UPDATE local_checkout_sessions SET status = 'expired' WHERE id IN (
         SELECT id FROM local_checkout_sessions WHERE status = 'open' AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING ${LOCAL_COLUMNS}`,
      [now, limit],
    );
  }

  /**
   * Adds a refund to a completed session's payment, once per refund id. Null when it would
   * exceed what was paid; the session unchanged when this refund id was applied before.
   */
  async refundLocalPayment(paymentId: string, refundId: string, amountMinor: number): Promise<{ session: LocalSessionRecord; applied: boolean } | null> {
    const [row] = await updateReturning<LocalSessionRecord>(
      this.db,
      `UPDATE local_checkout_sessions SET refunded_minor = refunded_minor + $2, refund_ids = refund_ids || jsonb_build_array($3::text)
       WHERE payment_id = $1 AND status = 'completed' AND NOT refund_ids ? $3 AND refunded_minor + $2 <= amount_minor RETURNING ${LOCAL_COLUMNS}`,
      [paymentId, amountMinor, refundId],
    );
    if (row) return { session: row, applied: true };
    const rows: LocalSessionRecord[] = await this.db.query(`SELECT ${LOCAL_COLUMNS} FROM local_checkout_sessions WHERE payment_id = $1 AND refund_ids ? $2`, [
      paymentId,
      refundId,
    ]);
    return rows[0] ? { session: rows[0], applied: false } : null;
  }

  /** Sessions closed on the page whose event never reached the inbox (the process died in between). */
  async localSessionsWithoutEvent(since: Date, limit: number): Promise<LocalSessionRecord[]> {
    return this.db.query(
      `SELECT ${LOCAL_COLUMNS} FROM local_checkout_sessions s WHERE s.status IN ('completed', 'cancelled', 'expired') AND s.created_at >= $2
         AND NOT EXISTS (SELECT 1 FROM payment_webhook_events e WHERE e.provider = 'local' AND e.event_id = 'evt_' || s.id || '_' || s.status)
       ORDER BY s.created_at LIMIT $1`,
      [limit, since],
    );
  }
}
