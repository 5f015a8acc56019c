import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';

export const ORDER_STATUSES = ['pending', 'paid', 'failed', 'expired', 'refunded', 'partially_refunded', 'disputed'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const ORDER_KINDS = ['course', 'donation'] as const;
export type OrderKind = (typeof ORDER_KINDS)[number];

/**
 * One purchase: a course or a donation, through one provider. Its status is derived from the
 * facts the provider's events established (paid_at, refunded_minor, …), so events applied in
 * any order end in the same status.
 */
@Entity('orders')
@Check('orders_status_check', `status IN ('pending', 'paid', 'failed', 'expired', 'refunded', 'partially_refunded', 'disputed')`)
@Check('orders_kind_check', `kind IN ('course', 'donation') AND (kind <> 'course' OR course_id IS NOT NULL)`)
@Check('orders_amounts_check', `amount_minor > 0 AND refunded_minor >= 0 AND refunded_minor <= amount_minor`)
@Unique('orders_provider_session_unique', ['provider', 'providerSessionId'])
@Index('orders_user_created_idx', ['userId', 'createdAt', 'id'])
@Index('orders_status_created_idx', ['status', 'createdAt', 'id'])
@Index('orders_provider_payment_idx', ['provider', 'providerPaymentId'])
// one open checkout per user and course: a second request gets the first one's page
@Index('orders_one_pending_checkout_idx', ['userId', 'courseId'], { unique: true, where: `status = 'pending' AND kind = 'course'` })
export class Order {
  @PrimaryColumn('uuid')
  id!: string;

  /** What the buyer quotes to support (module 08's receipt_id). */
  @Column({ name: 'receipt_id', type: 'varchar', length: 32, unique: true })
  receiptId!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'orders_user_id_fkey' })
  user?: unknown;

  @Column({ type: 'varchar', length: 16 })
  kind!: OrderKind;

  @Index('orders_course_id_idx')
  @Column({ name: 'course_id', type: 'uuid', nullable: true })
  courseId!: string | null;

  @ManyToOne('Course', { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'course_id', foreignKeyConstraintName: 'orders_course_id_fkey' })
  course?: unknown;

  @Column({ type: 'varchar', length: 200 })
  description!: string;

  @Column({ type: 'varchar', length: 16 })
  provider!: string;

  /** Stripe Checkout Session, PayPal order or local session id; null until the provider answered. */
  @Column({ name: 'provider_session_id', type: 'varchar', length: 255, nullable: true })
  providerSessionId!: string | null;

  /** Stripe PaymentIntent or PayPal capture id, once paid. */
  @Column({ name: 'provider_payment_id', type: 'varchar', length: 255, nullable: true })
  providerPaymentId!: string | null;

  @Column({ name: 'checkout_url', type: 'text', nullable: true })
  checkoutUrl!: string | null;

  @Column({ name: 'amount_minor', type: 'integer' })
  amountMinor!: number;

  @Column({ type: 'char', length: 3 })
  currency!: string;

  @Column({ type: 'varchar', length: 24, default: 'pending' })
  status!: OrderStatus;

  @Column({ name: 'refunded_minor', type: 'integer', default: 0 })
  refundedMinor!: number;

  @Column({ name: 'paid_at', type: 'timestamptz', nullable: true })
  paidAt!: Date | null;

  @Column({ name: 'expired_at', type: 'timestamptz', nullable: true })
  expiredAt!: Date | null;

  @Column({ name: 'failed_at', type: 'timestamptz', nullable: true })
  failedAt!: Date | null;

  @Column({ name: 'failure_reason', type: 'varchar', length: 200, nullable: true })
  failureReason!: string | null;

  @Column({ name: 'disputed_at', type: 'timestamptz', nullable: true })
  disputedAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

export const REFUND_STATUSES = ['requested', 'submitted', 'succeeded', 'failed'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/**
 * A refund: asked by an admin (`requested`, then `submitted` once the provider took it) or
 * learnt from the provider; `succeeded` only by the provider's event.
 */
@Entity('order_refunds')
@Check('order_refunds_status_check', `status IN ('requested', 'submitted', 'succeeded', 'failed')`)
@Check('order_refunds_amount_check', `amount_minor > 0`)
@Unique('order_refunds_provider_refund_unique', ['provider', 'providerRefundId'])
export class OrderRefund {
  @PrimaryColumn('uuid')
  id!: string;

  @Index('order_refunds_order_id_idx')
  @Column({ name: 'order_id', type: 'uuid' })
  orderId!: string;

  @ManyToOne('Order', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'order_refunds_order_id_fkey' })
  order?: unknown;

  @Column({ type: 'varchar', length: 16 })
  provider!: string;

  @Column({ name: 'provider_refund_id', type: 'varchar', length: 255, nullable: true })
  providerRefundId!: string | null;

  @Column({ name: 'amount_minor', type: 'integer' })
  amountMinor!: number;

  @Column({ type: 'varchar', length: 16 })
  status!: RefundStatus;

  @Index('order_refunds_requested_by_idx')
  @Column({ name: 'requested_by', type: 'uuid', nullable: true })
  requestedBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'requested_by', foreignKeyConstraintName: 'order_refunds_requested_by_fkey' })
  requester?: unknown;

  @Column({ type: 'varchar', length: 200, nullable: true })
  error!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

export const WEBHOOK_STATUSES = ['received', 'processed', 'failed'] as const;
export type WebhookStatus = (typeof WEBHOOK_STATUSES)[number];

/**
 * The durable inbox: every verified provider event is written here before the provider gets
 * its 2xx, then applied by the `payments.webhooks` job.
 */
@Entity('payment_webhook_events')
@Check('payment_webhook_events_status_check', `status IN ('received', 'processed', 'failed')`)
@Unique('payment_webhook_events_provider_event_unique', ['provider', 'eventId'])
@Index('payment_webhook_events_due_idx', ['nextAttemptAt'], { where: `status = 'received'` })
@Index('payment_webhook_events_status_idx', ['status', 'receivedAt', 'id'])
export class PaymentWebhookEvent {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 16 })
  provider!: string;

  @Column({ name: 'event_id', type: 'varchar', length: 255 })
  eventId!: string;

  @Column({ type: 'varchar', length: 100 })
  type!: string;

  /** The event as the provider sent it (verified). */
  @Column({ type: 'jsonb' })
  payload!: unknown;

  /** What it means for an order (the provider's mapping), applied by the job. */
  @Column({ type: 'jsonb' })
  effect!: unknown;

  @Column({ type: 'varchar', length: 16, default: 'received' })
  status!: WebhookStatus;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'next_attempt_at', type: 'timestamptz' })
  nextAttemptAt!: Date;

  /** A worker holds the row until then; past it, another may take it (the first one died). */
  @Column({ name: 'claimed_until', type: 'timestamptz', nullable: true })
  claimedUntil!: Date | null;

  @Column({ name: 'last_error', type: 'varchar', length: 500, nullable: true })
  lastError!: string | null;

  @Index('payment_webhook_events_order_id_idx')
  @Column({ name: 'order_id', type: 'uuid', nullable: true })
  orderId!: string | null;

  @ManyToOne('Order', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'payment_webhook_events_order_id_fkey' })
  order?: unknown;

  /** The notices the effect calls for, recorded with it, so a retry sends the same ones (deduplicated). */
  @Column({ type: 'jsonb', nullable: true })
  notices!: unknown;

  @Column({ name: 'received_at', type: 'timestamptz' })
  receivedAt!: Date;

  /** When the effect committed; the notices may still be on their way. */
  @Column({ name: 'applied_at', type: 'timestamptz', nullable: true })
  appliedAt!: Date | null;

  @Column({ name: 'processed_at', type: 'timestamptz', nullable: true })
  processedAt!: Date | null;
}

export const SPONSORSHIP_STATUSES = ['pending', 'completed', 'failed', 'expired', 'refunded'] as const;
export type SponsorshipStatus = (typeof SPONSORSHIP_STATUSES)[number];

/** A donation (document 000's `sponsorships`), amounts in minor units; its money moves through its order. */
@Entity('sponsorships')
@Check('sponsorships_status_check', `status IN ('pending', 'completed', 'failed', 'expired', 'refunded')`)
@Index('sponsorships_user_created_idx', ['userId', 'createdAt'])
export class Sponsorship {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'sponsorships_user_id_fkey' })
  user?: unknown;

  @Column({ name: 'order_id', type: 'uuid', unique: true })
  orderId!: string;

  @ManyToOne('Order', { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'sponsorships_order_id_fkey' })
  order?: unknown;

  @Column({ name: 'sponsor_type', type: 'varchar', length: 40 })
  sponsorType!: string;

  @Column({ name: 'target_identifier', type: 'varchar', length: 200 })
  targetIdentifier!: string;

  @Column({ name: 'amount_minor', type: 'integer' })
  amountMinor!: number;

  @Column({ type: 'char', length: 3 })
  currency!: string;

  @Column({ name: 'payment_provider', type: 'varchar', length: 16 })
  paymentProvider!: string;

  @Column({ name: 'payment_provider_order_id', type: 'varchar', length: 255, nullable: true })
  paymentProviderOrderId!: string | null;

  @Column({ name: 'payment_provider_capture_id', type: 'varchar', length: 255, nullable: true })
  paymentProviderCaptureId!: string | null;

  @Column({ type: 'varchar', length: 500, nullable: true })
  message!: string | null;

  /** Shown as "anonymous" wherever donors are listed; the account is still known. */
  @Column({ type: 'boolean', default: false })
  anonymous!: boolean;

  @Column({ type: 'varchar', length: 16, default: 'pending' })
  status!: SponsorshipStatus;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true })
  completedAt!: Date | null;
}

export const LOCAL_SESSION_STATUSES = ['open', 'completed', 'cancelled', 'expired'] as const;
export type LocalSessionStatus = (typeof LOCAL_SESSION_STATUSES)[number];

/** A checkout of the local provider: what its hosted page shows and completes. */
@Entity('local_checkout_sessions')
@Check('local_checkout_sessions_status_check', `status IN ('open', 'completed', 'cancelled', 'expired')`)
@Index('local_checkout_sessions_open_idx', ['expiresAt'], { where: `status = 'open'` })
export class LocalCheckoutSession {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  @Column({ name: 'order_id', type: 'uuid', unique: true })
  orderId!: string;

  @ManyToOne('Order', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'local_checkout_sessions_order_id_fkey' })
  order?: unknown;

  @Column({ type: 'varchar', length: 200 })
  description!: string;

  @Column({ name: 'amount_minor', type: 'integer' })
  amountMinor!: number;

  @Column({ type: 'char', length: 3 })
  currency!: string;

  @Column({ type: 'varchar', length: 16, default: 'open' })
  status!: LocalSessionStatus;

  /** Set when completed: what refunds name. */
  @Column({ name: 'payment_id', type: 'varchar', length: 64, nullable: true, unique: true })
  paymentId!: string | null;

  @Column({ name: 'refunded_minor', type: 'integer', default: 0 })
  refundedMinor!: number;

  /** The refund requests already applied: one asked again is not refunded twice. */
  @Column({ name: 'refund_ids', type: 'jsonb', default: () => `'[]'` })
  refundIds!: string[];

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;
}
