import Stripe from 'stripe';
import { minorUnitDigits } from '../../shared/money.js';
import {
  PaymentProviderError,
  WebhookVerificationError,
  type CheckoutRequest,
  type CheckoutSession,
  type OrderReference,
  type PaymentEffect,
  type PaymentProvider,
  type RefundRequest,
  type RefundResult,
  type VerifiedEvent,
  type WebhookHeaders,
} from './provider.js';

export interface StripeSettings {
  /** `sk_live_…` / `sk_test_…` (or a restricted `rk_…` key allowed to create Checkout Sessions and Refunds). */
  secretKey: string;
  /** The endpoint's signing secret, `whsec_…`. */
  webhookSecret: string;
  /** Where Stripe sends the buyer after paying; `session_id={CHECKOUT_SESSION_ID}` is appended. */
  successUrl: string;
  cancelUrl: string;
  /** Base URL of Stripe's API, e.g. http://127.0.0.1:12111 for a local fake; unset = https://api.stripe.com. */
  apiUrl?: string;
  /** Per attempt; 10 s unless told. */
  timeoutMs?: number;
  /** How far a webhook's signed timestamp may be from now, either way; 300 s unless told. */
  toleranceSeconds?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_TOLERANCE_SECONDS = 300;
/** One retry after a network error, 409 or 5xx: every POST carries an idempotency key, so Stripe runs it once. */
const MAX_NETWORK_RETRIES = 1;
const SIGNATURE_HEADER = 'stripe-signature';
/** Stripe echoes API keys in some errors (masked, but with their last characters): never pass one on. */
const KEY_PATTERN = /\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*]+|\bwhsec_[A-Za-z0-9*]+/g;

/** Currencies Stripe's API counts in whole units; all others but THREE_DECIMAL_CURRENCIES in hundredths, whatever their ISO 4217 exponent. */
const ZERO_DECIMAL_CURRENCIES = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);
const THREE_DECIMAL_CURRENCIES = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/**
 * Powers of ten from Parley's minor units (the ISO 4217 exponent) to the units of Stripe's API:
 * 0 for USD (cents both) and JPY (yen both), 2 for ISK, HUF or COP, which ISO counts in whole
 * units and Stripe in hundredths ("an ISK amount of 100 represents 1 króna").
 */
function stripeShift(currency: string): number {
  const code = currency.toLowerCase();
  // not a currency code (a malformed event): counted as it came
  if (!/^[a-z]{3}$/.test(code)) return 0;
  const stripeDigits = ZERO_DECIMAL_CURRENCIES.has(code) ? 0 : THREE_DECIMAL_CURRENCIES.has(code) ? 3 : 2;
  return stripeDigits - minorUnitDigits(code);
}

function toStripeAmount(amountMinor: number, currency: string): number {
  const shift = stripeShift(currency);
  if (shift >= 0) return amountMinor * 10 ** shift;
  const unit = 10 ** -shift;
  if (amountMinor % unit !== 0)
    throw new PaymentProviderError('rejected', 'stripe', `Stripe takes ${currency.toUpperCase()} in whole units only`, 'invalid_amount');
  return amountMinor / unit;
}

/** An amount of Stripe's (a refund made in the Dashboard may hold a fraction of Parley's unit: the nearest whole one counts). */
function fromStripeAmount(amount: number, currency: string): number {
  const shift = stripeShift(currency);
  return shift >= 0 ? Math.round(amount / 10 ** shift) : amount * 10 ** -shift;
}

type ConnectionSettings = Pick<Stripe.StripeConfig, 'host' | 'port' | 'protocol'>;

function connectionOf(apiUrl: string | undefined): ConnectionSettings {
  if (!apiUrl) return {};
  const url = new URL(apiUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the Stripe API URL must be http or https, not ${url.protocol}`);
  // The SDK always requests /v1/… from the host's root: a path here could not be honoured.
  if (url.pathname !== '/' || url.search || url.hash) throw new Error('the Stripe API URL takes no path, query or fragment');
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    // URL keeps the brackets of an IPv6 literal; http.request wants the bare address.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    protocol,
  };
}

function withSessionIdPlaceholder(successUrl: string): string {
  // Stripe replaces the literal {CHECKOUT_SESSION_ID} with the session id on redirect.
  return `${successUrl}${successUrl.includes('?') ? '&' : '?'}session_id={CHECKOUT_SESSION_ID}`;
}

function idOf(value: string | { id: string } | null | undefined): string | undefined {
  if (typeof value === 'string') return value || undefined;
  return value?.id || undefined;
}

function orderIdIn(metadata: Stripe.Metadata | null | undefined): string | undefined {
  return metadata?.internalOrderId || undefined;
}

/** Drops the keys whose value is unset, so a reference names only what the event said. */
function reference(ref: OrderReference): OrderReference {
  return Object.fromEntries(Object.entries(ref).filter(([, value]) => value !== undefined));
}

function sessionReference(session: Stripe.Checkout.Session): OrderReference {
  return reference({ orderId: orderIdIn(session.metadata) ?? (session.client_reference_id || undefined), providerSessionId: session.id });
}

function paidEffect(session: Stripe.Checkout.Session): PaymentEffect {
  return {
    kind: 'paid',
    ref: sessionReference(session),
    providerPaymentId: idOf(session.payment_intent),
    amountMinor: session.amount_total !== null && session.currency ? fromStripeAmount(session.amount_total, session.currency) : undefined,
    currency: session.currency ?? undefined,
  };
}

/**
 * The refund a charge.refunded is about: the first of the charge's list (Stripe lists newest first).
 * Since API version 2022-11-15 a charge carries the list only when expanded, which webhooks never are.
 */
function latestRefund(charge: Stripe.Charge): Stripe.Refund | undefined {
  return charge.refunds?.data[0];
}

function chargeRefundedEffect(charge: Stripe.Charge): PaymentEffect {
  const refund = latestRefund(charge);
  return {
    kind: 'refunded',
    // PaymentIntent metadata is copied onto the charge it creates (once, at confirmation).
    ref: reference({ orderId: orderIdIn(charge.metadata), providerPaymentId: idOf(charge.payment_intent) }),
    // without the list, the event names no one refund: only its running total counts
    ...(refund ? { refundId: refund.id } : {}),
    amountMinor: fromStripeAmount(refund?.amount ?? charge.amount_refunded, charge.currency),
    totalRefundedMinor: fromStripeAmount(charge.amount_refunded, charge.currency),
    currency: charge.currency,
  };
}

function refundEffect(refund: Stripe.Refund): PaymentEffect {
  if (refund.status !== 'succeeded') return { kind: 'ignored' };
  return {
    kind: 'refunded',
    // Set by refund() below; a refund made in the Dashboard has none.
    ref: reference({ orderId: orderIdIn(refund.metadata), providerPaymentId: idOf(refund.payment_intent) }),
    refundId: refund.id,
    amountMinor: fromStripeAmount(refund.amount, refund.currency),
    currency: refund.currency,
  };
}

function effectOf(event: Stripe.Event): PaymentEffect {
  switch (event.type) {
    case 'checkout.session.completed': {
      const session = event.data.object;
      // `unpaid` here means a delayed method (bank debit…) still settling: async_payment_succeeded or _failed follows.
      return session.payment_status === 'paid' || session.payment_status === 'no_payment_required' ? paidEffect(session) : { kind: 'ignored' };
    }
    case 'checkout.session.async_payment_succeeded':
      return paidEffect(event.data.object);
    case 'checkout.session.async_payment_failed':
      return { kind: 'failed', ref: sessionReference(event.data.object), reason: 'async_payment_failed' };
    case 'checkout.session.expired':
      return { kind: 'expired', ref: sessionReference(event.data.object) };
    case 'charge.refunded':
      return chargeRefundedEffect(event.data.object);
    case 'refund.created':
    case 'refund.updated':
      return refundEffect(event.data.object);
    case 'charge.dispute.created': {
      const dispute = event.data.object;
      // A dispute carries no metadata of the payment: the PaymentIntent finds the order.
      return { kind: 'disputed', ref: reference({ providerPaymentId: idOf(dispute.payment_intent) }), disputeId: dispute.id, reason: dispute.reason };
    }
    default:
      return { kind: 'ignored' };
  }
}

function rejected(reason: string): WebhookVerificationError {
  return new WebhookVerificationError(`Stripe webhook rejected: ${reason}`);
}

function signatureHeaderOf(headers: WebhookHeaders): string {
  const values = Object.entries(headers)
    .filter(([name, value]) => name.toLowerCase() === SIGNATURE_HEADER && value !== undefined)
    .flatMap(([, value]) => (Array.isArray(value) ? value : [value as string]));
  if (values.length === 0) throw rejected('missing stripe-signature header');
  if (values.length > 1) throw rejected('more than one stripe-signature header');
  const [value] = values as [string];
  if (!value.trim()) throw rejected('empty stripe-signature header');
  return value;
}

/**
 * The SDK checks only that a timestamp is not too old (and skips it when `t` is not a number):
 * here it must be one integer, within the tolerance either way.
 */
function checkTimestamp(header: string, toleranceSeconds: number): void {
  const stamps = header
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.startsWith('t='))
    .map((item) => item.slice(2));
  const [stamp] = stamps;
  if (stamps.length !== 1 || !stamp || !/^\d{1,12}$/.test(stamp)) throw rejected('malformed stripe-signature header');
  if (Math.abs(Math.floor(Date.now() / 1000) - Number(stamp)) > toleranceSeconds) {
    throw rejected('stripe-signature timestamp outside the tolerance');
  }
}

function scrub(message: string, secrets: string[]): string {
  const masked = secrets.reduce((text, secret) => text.split(secret).join('[redacted]'), message);
  return masked.replace(KEY_PATTERN, '[redacted]');
}

function isEvent(value: unknown): value is Stripe.Event {
  if (typeof value !== 'object' || value === null) return false;
  const { id, type, data } = value as Record<string, unknown>;
  const object = (data as { object?: unknown } | null | undefined)?.object;
  return typeof id === 'string' && typeof type === 'string' && typeof object === 'object' && object !== null;
}

export function createStripeProvider(settings: StripeSettings): PaymentProvider {
  if (!settings.secretKey) throw new Error('Stripe needs a secret key');
  if (!settings.webhookSecret) throw new Error('Stripe needs a webhook signing secret');
  const toleranceSeconds = settings.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  // The SDK reads a tolerance of 0 as "do not check the timestamp".
  if (!Number.isInteger(toleranceSeconds) || toleranceSeconds <= 0) throw new Error('the webhook tolerance must be a positive number of seconds');
  const secrets = [settings.secretKey, settings.webhookSecret];
  const stripe = new Stripe(settings.secretKey, {
    maxNetworkRetries: MAX_NETWORK_RETRIES,
    timeout: settings.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...connectionOf(settings.apiUrl),
  });

  function providerError(operation: string, error: unknown): unknown {
    if (!(error instanceof Stripe.errors.StripeError)) return error;
    const status = error.statusCode;
    // The SDK makes a StripeAPIError of every 5xx and 409 (a request racing another with its key).
    const unavailable =
      error instanceof Stripe.errors.StripeConnectionError ||
      error instanceof Stripe.errors.StripeAPIError ||
      error instanceof Stripe.errors.StripeRateLimitError;
    // A connection failure has no Stripe code: its socket error (ECONNREFUSED, ETIMEDOUT…) says where it broke.
    const detailCode = (error.detail as { code?: unknown } | undefined)?.code;
    const code = error.code ?? (error instanceof Stripe.errors.StripeIdempotencyError ? 'idempotency_error' : undefined);
    const what = [status, code ?? (typeof detailCode === 'string' ? detailCode : undefined)].filter(Boolean).join(' ');
    const message = `Stripe ${operation} failed${what ? ` (${what})` : ''}: ${scrub(error.message, secrets)}`;
    return new PaymentProviderError(unavailable ? 'unavailable' : 'rejected', 'stripe', message, code);
  }

  return {
    name: 'stripe',

    async createCheckout(request: CheckoutRequest): Promise<CheckoutSession> {
      const metadata: Record<string, string> = { internalOrderId: request.orderId, userId: request.userId };
      if (request.courseId) metadata.courseId = request.courseId;
      let session: Stripe.Checkout.Session;
      try {
        session = await stripe.checkout.sessions.create(
          {
            mode: 'payment',
            // API version 2026-09-30.endive (stripe@23) replaced payment_method_types with this filter.
            allowed_payment_method_types: ['card'],
            line_items: [
              {
                price_data: {
                  currency: request.currency,
                  product_data: { name: request.description },
                  unit_amount: toStripeAmount(request.amountMinor, request.currency),
                },
                quantity: 1,
              },
            ],
            success_url: withSessionIdPlaceholder(settings.successUrl),
            cancel_url: settings.cancelUrl,
            client_reference_id: request.orderId,
            ...(request.customerEmail ? { customer_email: request.customerEmail } : {}),
            metadata,
            // Copied by Stripe onto the charge, so refund and dispute events can name the order too.
            payment_intent_data: { metadata },
          },
          // One order, one session: a retried call gets the session the first one made.
          { idempotencyKey: `checkout:${request.orderId}` },
        );
      } catch (error) {
        throw providerError('checkout', error);
      }
      if (!session.url) throw new PaymentProviderError('rejected', 'stripe', `Stripe checkout session ${session.id} came back without a payment page URL`);
      return { providerSessionId: session.id, url: session.url };
    },

    async parseAndVerifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedEvent> {
      const header = signatureHeaderOf(headers);
      checkTimestamp(header, toleranceSeconds);
      let event: Stripe.Event;
      try {
        event = await stripe.webhooks.constructEventAsync(rawBody, header, settings.webhookSecret, toleranceSeconds);
      } catch (error) {
        const reason =
          error instanceof Stripe.errors.StripeSignatureVerificationError
            ? (error.message.split(/\.\s|\n/)[0] ?? '').trim()
            : error instanceof SyntaxError
              ? 'the body is not JSON'
              : 'the body is not a Stripe webhook event';
        throw rejected(scrub(reason, secrets));
      }
      if (!isEvent(event)) throw rejected('the body is not a Stripe event');
      return { eventId: event.id, type: event.type, effect: effectOf(event), payload: event };
    },

    async refund(request: RefundRequest): Promise<RefundResult> {
      let refund: Stripe.Refund;
      try {
        refund = await stripe.refunds.create(
          {
            payment_intent: request.providerPaymentId,
            amount: toStripeAmount(request.amountMinor, request.currency),
            metadata: { internalOrderId: request.orderId },
          },
          { idempotencyKey: `refund:${request.refundRequestId}` },
        );
      } catch (error) {
        throw providerError('refund', error);
      }
      const status = refund.status === 'succeeded' ? 'succeeded' : refund.status === 'failed' || refund.status === 'canceled' ? 'failed' : 'pending';
      return { providerRefundId: refund.id, status };
    },
  };
}
