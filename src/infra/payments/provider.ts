/**
 * The payment providers Parley sells through (Stripe, PayPal, and the offline local one), behind
 * one interface: the payments module never sees a provider's SDK or wire format.
 */
export const PAYMENT_PROVIDERS = ['stripe', 'paypal', 'local'] as const;
export type PaymentProviderName = (typeof PAYMENT_PROVIDERS)[number];

export interface CheckoutRequest {
  /** Parley's order id: the provider carries it back in every event (Stripe metadata.internalOrderId, PayPal custom_id). */
  orderId: string;
  userId: string;
  /** Set for a course purchase (Stripe metadata.courseId). */
  courseId?: string;
  /** What the buyer sees on the provider's page, e.g. the course title. */
  description: string;
  /** Integer minor units (cents); zero-decimal currencies (JPY) in their whole units. */
  amountMinor: number;
  /** ISO 4217, lower case: `usd`. */
  currency: string;
  /** Prefills the provider's page when known. */
  customerEmail?: string;
}

export interface CheckoutSession {
  /** Stripe Checkout Session id (`cs_…`), PayPal order id, local session id. */
  providerSessionId: string;
  /** Where the buyer pays (Stripe's hosted page, PayPal's approve link, the local page). */
  url: string;
}

/** Where an event points: any of these finds the order (the first that is set, in this order). */
export interface OrderReference {
  orderId?: string;
  providerSessionId?: string;
  /** Stripe PaymentIntent id, PayPal capture id. */
  providerPaymentId?: string;
}

/**
 * What a verified event means for an order, in the provider's final terms. Effects are
 * facts, applied so that any delivery order ends in the same state:
 * - `paid`: money was taken (Stripe checkout.session.completed with payment_status paid, PayPal PAYMENT.CAPTURE.COMPLETED);
 * - `approved`: the buyer approved, the money is taken by capturing (PayPal CHECKOUT.ORDER.APPROVED);
 * - `expired`: the checkout was abandoned (checkout.session.expired);
 * - `failed`: the payment was declined for good (checkout.session.async_payment_failed, PAYMENT.CAPTURE.DENIED);
 * - `refunded`: a refund succeeded; `refundId` names it when the event is about one refund (absent when the event only
 *   reports the running total, as Stripe's charge.refunded does); `totalRefundedMinor` is the provider's running total for
 *   the payment when it says it;
 * - `disputed`: the buyer opened a dispute (charge.dispute.created);
 * - `ignored`: an event type Parley does not act on (still verified, stored and acknowledged).
 */
export type PaymentEffect =
  | { kind: 'paid'; ref: OrderReference; providerPaymentId?: string; amountMinor?: number; currency?: string }
  | { kind: 'approved'; ref: OrderReference }
  | { kind: 'expired'; ref: OrderReference }
  | { kind: 'failed'; ref: OrderReference; reason?: string }
  | { kind: 'refunded'; ref: OrderReference; refundId?: string; amountMinor: number; totalRefundedMinor?: number; currency?: string }
  | { kind: 'disputed'; ref: OrderReference; disputeId: string; reason?: string }
  | { kind: 'ignored' };

/** A webhook whose signature (and timestamp) checked out. */
export interface VerifiedEvent {
  /** The provider's event id: the key of the inbox (unique per provider). */
  eventId: string;
  /** The provider's own name for it, e.g. `checkout.session.completed`. */
  type: string;
  effect: PaymentEffect;
  /** The event as the provider sent it, parsed from the verified raw body. */
  payload: unknown;
}

export interface CaptureResult {
  /** The capture (PayPal) or payment id. */
  providerPaymentId: string;
  /** `paid` once the money is taken; `pending` when the provider still decides (PayPal PENDING). */
  status: 'paid' | 'pending' | 'failed';
  amountMinor?: number;
  currency?: string;
}

export interface RefundRequest {
  orderId: string;
  /** Unique per refund request: the provider's idempotency key, so a retry never refunds twice. */
  refundRequestId: string;
  providerPaymentId: string;
  amountMinor: number;
  currency: string;
}

export interface RefundResult {
  providerRefundId: string;
  status: 'succeeded' | 'pending' | 'failed';
}

/** Request headers as Node gives them. */
export type WebhookHeaders = Record<string, string | string[] | undefined>;

export interface PaymentProvider {
  readonly name: PaymentProviderName;
  /** Opens a hosted checkout for an order Parley has already written as pending. */
  createCheckout(request: CheckoutRequest): Promise<CheckoutSession>;
  /**
   * Verifies a webhook against the raw bytes received (never a re-serialised body) and maps
   * it to an effect. Rejects with WebhookVerificationError when it is not authentic (bad or
   * missing signature, stale timestamp, malformed body); with PaymentProviderError
   * `unavailable` when the provider's own verification service could not be asked (PayPal),
   * so the provider retries later.
   */
  parseAndVerifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedEvent>;
  /** Takes the money of an approved order (PayPal); idempotent: an order captured before answers its capture. */
  capture?(providerSessionId: string, orderId: string): Promise<CaptureResult>;
  refund(request: RefundRequest): Promise<RefundResult>;
}

/** A webhook that is not authentic or not well-formed: answered 400, nothing stored. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}

/**
 * The provider failed a call: `unavailable` (network error, timeout, 429, 5xx: worth retrying),
 * or `rejected` (the provider refused the request for good: 4xx). The message never holds a
 * secret or card data.
 */
export class PaymentProviderError extends Error {
  override name = 'PaymentProviderError';
  constructor(
    readonly kind: 'unavailable' | 'rejected',
    readonly provider: PaymentProviderName,
    message: string,
    /** The provider's own error code when it gave one (e.g. `ORDER_ALREADY_CAPTURED`, `charge_already_refunded`). */
    readonly providerCode?: string,
  ) {
    super(message);
  }
}
