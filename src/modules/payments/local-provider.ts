import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../infra/clock.js';
import {
  PaymentProviderError,
  WebhookVerificationError,
  type CheckoutRequest,
  type CheckoutSession,
  type PaymentEffect,
  type PaymentProvider,
  type RefundRequest,
  type RefundResult,
  type VerifiedEvent,
  type WebhookHeaders,
} from '../../infra/payments/provider.js';
import type { LocalSessionRecord, PaymentsRepository } from './repository.js';

export const LOCAL_SIGNATURE_HEADER = 'parley-signature';
/** Signed webhooks older or newer than this are refused (as Stripe's default tolerance). */
const TOLERANCE_SECONDS = 300;
/** An open local checkout expires after this long, as a Stripe Checkout Session does. */
export const LOCAL_SESSION_TTL_MS = 24 * 3600_000;

interface LocalEvent {
  id: string;
  object: 'event';
  type: 'checkout.session.completed' | 'checkout.session.expired' | 'charge.refunded';
  created: number;
  data: { object: Record<string, unknown> };
}

export interface LocalProviderDependencies {
  repository: PaymentsRepository;
  /** Signs the provider's webhooks; generated at first start (see loadGeneratedSecret). */
  secret: string;
  /** Public base URL of this server: the hosted page lives there. */
  appUrl: string;
  clock: Clock;
  /** Hands a signed webhook to the inbox, as an HTTP provider's POST would. */
  deliver: (rawBody: Buffer, headers: WebhookHeaders) => Promise<unknown>;
}

const randomId = (prefix: string) => `${prefix}_${randomBytes(18).toString('base64url')}`;

/**
 * The provider of `npm start` with nothing configured: a page of this server completes or
 * cancels the checkout, then a webhook signed like Stripe's (`t=…,v1=HMAC-SHA256`) goes
 * through the same inbox as the real providers' do. It takes no money: production refuses it.
 */
export class LocalPaymentProvider implements PaymentProvider {
  readonly name = 'local' as const;

  constructor(private readonly dependencies: LocalProviderDependencies) {}

  async createCheckout(request: CheckoutRequest): Promise<CheckoutSession> {
    const now = this.dependencies.clock.now();
    const id = randomId('lcs');
    await this.dependencies.repository.insertLocalSession({
      id,
      orderId: request.orderId,
      description: request.description,
      amountMinor: request.amountMinor,
      currency: request.currency,
      status: 'open',
      paymentId: null,
      refundedMinor: 0,
      refundIds: [],
      createdAt: now,
      expiresAt: new Date(now.getTime() + LOCAL_SESSION_TTL_MS),
    });
    return { providerSessionId: id, url: new URL(`/pay/local/${id}`, this.dependencies.appUrl).toString() };
  }

  async parseAndVerifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedEvent> {
    const header = headers[LOCAL_SIGNATURE_HEADER];
    if (typeof header !== 'string' || !header) throw new WebhookVerificationError(`missing ${LOCAL_SIGNATURE_HEADER} header`);
    const parts = new Map(header.split(',').map((part) => part.split('=', 2) as [string, string]));
    const timestamp = Number(parts.get('t'));
    const signature = parts.get('v1') ?? '';
    if (!Number.isInteger(timestamp) || !/^[0-9a-f]{64}$/.test(signature)) throw new WebhookVerificationError('malformed signature header');
    const expected = this.signature(timestamp, rawBody);
    if (!timingSafeEqual(Buffer.from(signature, 'hex'), expected)) throw new WebhookVerificationError('signature does not match');
    if (Math.abs(this.dependencies.clock.now().getTime() / 1000 - timestamp) > TOLERANCE_SECONDS)
      throw new WebhookVerificationError('timestamp outside the tolerance');
    let event: LocalEvent;
    try {
      event = JSON.parse(rawBody.toString('utf8')) as LocalEvent;
    } catch {
      throw new WebhookVerificationError('body is not JSON');
    }
    if (typeof event?.id !== 'string' || typeof event.type !== 'string' || typeof event.data?.object !== 'object')
      throw new WebhookVerificationError('not an event');
    return { eventId: event.id, type: event.type, effect: effectOf(event), payload: event };
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    const providerRefundId = `lre_${request.refundRequestId}`;
    const refunded = await this.dependencies.repository.refundLocalPayment(request.providerPaymentId, providerRefundId, request.amountMinor);
    if (!refunded) throw new PaymentProviderError('rejected', 'local', 'The refund exceeds what is left of the payment', 'amount_too_large');
    if (refunded.applied) {
      await this.emit({
        id: `evt_${providerRefundId}`,
        type: 'charge.refunded',
        object: {
          object: 'charge',
          order_id: refunded.session.orderId,
          payment_id: request.providerPaymentId,
          amount: refunded.session.amountMinor,
          amount_refunded: refunded.session.refundedMinor,
          currency: refunded.session.currency,
          refund: { id: providerRefundId, amount: request.amountMinor },
        },
      });
    }
    return { providerRefundId, status: 'succeeded' };
  }

  // --- the hosted page's actions

  async session(id: string): Promise<LocalSessionRecord | null> {
    return this.dependencies.repository.findLocalSession(id);
  }

  /** The buyer paid: the session completes once, and its webhook goes to the inbox. */
  async complete(id: string): Promise<LocalSessionRecord | null> {
    const session = await this.dependencies.repository.closeLocalSession(id, 'completed', randomId('lpi'), this.dependencies.clock.now());
    if (session) await this.emitClosed(session);
    return session;
  }

  /** The buyer gave up: the session closes as an expired Stripe session would, so a new checkout may start. */
  async cancel(id: string): Promise<LocalSessionRecord | null> {
    const session = await this.dependencies.repository.closeLocalSession(id, 'cancelled', null, this.dependencies.clock.now());
    if (session) await this.emitClosed(session);
    return session;
  }

  /** Expires the open sessions past their end and sends their events; returns how many. */
  async expireDue(limit: number): Promise<number> {
    const expired = await this.dependencies.repository.expireLocalSessions(this.dependencies.clock.now(), limit);
    for (const session of expired) await this.emitClosed(session);
    return expired.length;
  }

  /** Sends again the events of sessions closed in the last two days that never reached the inbox (their process died in between). */
  async redeliverMissing(limit: number): Promise<number> {
    const since = new Date(this.dependencies.clock.now().getTime() - 2 * LOCAL_SESSION_TTL_MS);
    const missing = await this.dependencies.repository.localSessionsWithoutEvent(since, limit);
    for (const session of missing) await this.emitClosed(session);
    return missing.length;
  }

  /** The event id is the session's and its final status: sending it again is one event. */
  private emitClosed(session: LocalSessionRecord): Promise<unknown> {
    const completed = session.status === 'completed';
    return this.emit({
      id: `evt_${session.id}_${session.status}`,
      type: completed ? 'checkout.session.completed' : 'checkout.session.expired',
      object: {
        id: session.id,
        object: 'checkout.session',
        order_id: session.orderId,
        payment_id: session.paymentId,
        amount_total: session.amountMinor,
        currency: session.currency,
        status: completed ? 'complete' : 'expired',
        payment_status: completed ? 'paid' : 'unpaid',
      },
    });
  }

  private emit(event: { id: string; type: LocalEvent['type']; object: Record<string, unknown> }): Promise<unknown> {
    const created = Math.floor(this.dependencies.clock.now().getTime() / 1000);
    const body: LocalEvent = { id: event.id, object: 'event', type: event.type, created, data: { object: event.object } };
    const rawBody = Buffer.from(JSON.stringify(body));
    return this.dependencies.deliver(rawBody, { [LOCAL_SIGNATURE_HEADER]: this.signatureHeader(rawBody, created), 'content-type': 'application/json' });
  }

  /** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs. */
  signatureHeader(rawBody: Buffer, timestamp: number): string {
    return `t=${timestamp},v1=${this.signature(timestamp, rawBody).toString('hex')}`;
  }

  private signature(timestamp: number, rawBody: Buffer): Buffer {
    return createHmac('sha256', this.dependencies.secret).update(`${timestamp}.`).update(rawBody).digest();
  }
}

function effectOf(event: LocalEvent): PaymentEffect {
  const object = event.data.object;
  const text = (name: string) => (typeof object[name] === 'string' ? object[name] : undefined);
  const integer = (value: unknown) => (Number.isSafeInteger(value) ? (value as number) : undefined);
  const orderId = text('order_id');
  switch (event.type) {
    case 'checkout.session.completed': {
      const providerPaymentId = text('payment_id');
      return {
        kind: 'paid',
        ref: { ...(orderId ? { orderId } : {}), ...(text('id') ? { providerSessionId: text('id')! } : {}) },
        ...(providerPaymentId ? { providerPaymentId } : {}),
      };
    }
    case 'checkout.session.expired':
      return { kind: 'expired', ref: { ...(orderId ? { orderId } : {}), ...(text('id') ? { providerSessionId: text('id')! } : {}) } };
    case 'charge.refunded': {
      const refund = (object.refund ?? {}) as Record<string, unknown>;
      const amountMinor = integer(refund.amount);
      if (typeof refund.id !== 'string' || amountMinor === undefined) throw new WebhookVerificationError('a refund event without its refund');
      const total = integer(object.amount_refunded);
      return {
        kind: 'refunded',
        ref: { ...(orderId ? { orderId } : {}), ...(text('payment_id') ? { providerPaymentId: text('payment_id')! } : {}) },
        refundId: refund.id,
        amountMinor,
        ...(total !== undefined ? { totalRefundedMinor: total } : {}),
      };
    }
    default:
      return { kind: 'ignored' };
  }
}
