import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  PaymentProviderError,
  WebhookVerificationError,
  type CheckoutRequest,
  type PaymentProvider,
  type VerifiedEvent,
  type WebhookHeaders,
} from '../src/infra/payments/provider.js';
import { createStripeProvider, type StripeSettings } from '../src/infra/payments/stripe.js';
import { signStripeEvent, signStripePayload, startFakeStripe, type FakeStripe } from './helpers/fake-stripe.js';

const SECRET_KEY = `sk_test_${randomBytes(24).toString('hex')}`;
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64url')}`;
const SUCCESS_URL = 'https://parley.test/payments/success';
const CANCEL_URL = 'https://parley.test/payments/cancel';

let fake: FakeStripe;
let stripe: PaymentProvider;

beforeAll(async () => {
  fake = await startFakeStripe({ secretKey: SECRET_KEY });
  stripe = provider();
});

afterEach(() => {
  vi.restoreAllMocks();
  fake.setRefundStatus('succeeded');
});

afterAll(async () => {
  await fake.close();
});

function provider(overrides: Partial<StripeSettings> = {}): PaymentProvider {
  return createStripeProvider({
    secretKey: SECRET_KEY,
    webhookSecret: WEBHOOK_SECRET,
    successUrl: SUCCESS_URL,
    cancelUrl: CANCEL_URL,
    apiUrl: fake.url,
    ...overrides,
  });
}

function checkoutRequest(overrides: Partial<CheckoutRequest> = {}): CheckoutRequest {
  return {
    orderId: randomUUID(),
    userId: randomUUID(),
    courseId: randomUUID(),
    description: 'Spanish B1: conversation club',
    amountMinor: 4900,
    currency: 'usd',
    customerEmail: 'ana@example.com',
    ...overrides,
  };
}

/** An order checked out and paid on Stripe's page: what the tests of later events start from. */
async function paidOrder(overrides: Partial<CheckoutRequest> = {}) {
  const request = checkoutRequest(overrides);
  const checkout = await stripe.createCheckout(request);
  const completed = fake.pay(checkout.providerSessionId);
  return { request, checkout, completed, paymentIntentId: completed.data.object.payment_intent as string };
}

function keysIn(text: string): string[] {
  return [SECRET_KEY, WEBHOOK_SECRET, /\bsk_(test|live)_/.exec(text)?.[0], /\bwhsec_/.exec(text)?.[0]].filter(
    (secret): secret is string => secret !== undefined && text.includes(secret),
  );
}

/** The rejection of `call`, checked to be a PaymentProviderError that names no key. */
async function providerFailure(call: Promise<unknown>): Promise<PaymentProviderError> {
  const error = await call.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(PaymentProviderError);
  const failure = error as PaymentProviderError;
  expect(failure.provider).toBe('stripe');
  expect(keysIn(`${failure.message} ${String(failure)} ${JSON.stringify(failure)}`)).toEqual([]);
  return failure;
}

/** The rejection of a webhook, checked to be a WebhookVerificationError that names no secret. */
async function webhookFailure(call: Promise<unknown>): Promise<WebhookVerificationError> {
  const error = await call.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(WebhookVerificationError);
  expect(keysIn(`${(error as Error).message} ${String(error)}`)).toEqual([]);
  return error as WebhookVerificationError;
}

function deliver(event: object, { secret = WEBHOOK_SECRET, timestamp }: { secret?: string; timestamp?: number } = {}): Promise<VerifiedEvent> {
  const { body, header } = signStripeEvent(event, secret, timestamp);
  return stripe.parseAndVerifyWebhook(Buffer.from(body), { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header });
}

/** The SDK backs off 0.5-1 s before a retry: the wait is recorded and cut to nothing, so tests stay fast. */
function backOffWithoutWaiting(): number[] {
  const delays: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
    delays.push(delay ?? 0);
    return realSetTimeout(callback, 0, ...args);
  }) as typeof setTimeout);
  return delays;
}

function requestsWithKey(key: string) {
  return fake.requests.filter((request) => request.idempotencyKey === key);
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

describe('Stripe settings', () => {
  it('refuses settings it could not honour', () => {
    expect(() => provider({ apiUrl: `${fake.url}/v1` })).toThrow(/no path/);
    expect(() => provider({ apiUrl: 'ftp://127.0.0.1:21' })).toThrow(/http or https/);
    // The SDK would read 0 as "skip the timestamp check".
    expect(() => provider({ toleranceSeconds: 0 })).toThrow(/tolerance/);
    expect(() => provider({ secretKey: '' })).toThrow(/secret key/);
    expect(() => provider({ webhookSecret: '' })).toThrow(/signing secret/);
  });
});

describe('Stripe checkout', () => {
  it('creates a card Checkout Session as module 08 describes: one line item, the session id placeholder, the order in metadata', async () => {
    const request = checkoutRequest();

    const checkout = await stripe.createCheckout(request);

    expect(checkout.providerSessionId).toMatch(/^cs_test_/);
    const created = fake.sessions.find((entry) => entry.id === checkout.providerSessionId)!;
    expect(checkout.url).toBe(created.session.url);
    expect(checkout.url).toBe(`https://checkout.stripe.com/c/pay/${checkout.providerSessionId}`);
    const metadata = { internalOrderId: request.orderId, userId: request.userId, courseId: request.courseId };
    // Form values as they travelled: every leaf is a string.
    expect(created.params).toEqual({
      mode: 'payment',
      allowed_payment_method_types: ['card'],
      line_items: [{ price_data: { currency: 'usd', product_data: { name: request.description }, unit_amount: '4900' }, quantity: '1' }],
      success_url: `${SUCCESS_URL}?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: CANCEL_URL,
      client_reference_id: request.orderId,
      customer_email: 'ana@example.com',
      metadata,
      payment_intent_data: { metadata },
    });
    expect(created.idempotencyKey).toBe(`checkout:${request.orderId}`);
    expect(created.session).toMatchObject({ amount_total: 4900, currency: 'usd', status: 'open', payment_status: 'unpaid', metadata });
  });

  it('appends the placeholder with & to a success URL that has a query, and leaves out what a donation does not have', async () => {
    const donation = provider({ successUrl: 'https://parley.test/thanks?source=app' });
    const request = checkoutRequest({ courseId: undefined, customerEmail: undefined, amountMinor: 500, currency: 'eur', description: 'Donation' });

    const checkout = await donation.createCheckout(request);

    const { params } = fake.sessions.find((entry) => entry.id === checkout.providerSessionId)!;
    expect(params.success_url).toBe('https://parley.test/thanks?source=app&session_id={CHECKOUT_SESSION_ID}');
    expect(params.metadata).toEqual({ internalOrderId: request.orderId, userId: request.userId });
    expect(params).not.toHaveProperty('customer_email');
    expect(params.line_items).toEqual([{ price_data: { currency: 'eur', product_data: { name: 'Donation' }, unit_amount: '500' }, quantity: '1' }]);
  });

  it('makes one session per order: a repeated createCheckout gets the first session back', async () => {
    const request = checkoutRequest();

    const first = await stripe.createCheckout(request);
    const again = await stripe.createCheckout(request);

    expect(again).toEqual(first);
    expect(fake.sessions.filter((entry) => entry.session.client_reference_id === request.orderId)).toHaveLength(1);
    expect(requestsWithKey(`checkout:${request.orderId}`).map((sent) => sent.replayed)).toEqual([false, true]);
  });

  it('refuses, for good, to reuse an order id for a different checkout', async () => {
    const request = checkoutRequest();
    await stripe.createCheckout(request);

    const failure = await providerFailure(stripe.createCheckout({ ...request, amountMinor: 5900 }));

    expect(failure.kind).toBe('rejected');
    expect(failure.providerCode).toBe('idempotency_error');
    expect(fake.sessions.filter((entry) => entry.session.client_reference_id === request.orderId)).toHaveLength(1);
  });
});

describe('Stripe webhook events', () => {
  it('maps a paid checkout.session.completed to paid, with the order, session, PaymentIntent and amount', async () => {
    const { request, checkout, completed, paymentIntentId } = await paidOrder();

    const verified = await deliver(completed);

    expect(paymentIntentId).toMatch(/^pi_/);
    expect(verified).toEqual({
      eventId: completed.id,
      type: 'checkout.session.completed',
      effect: {
        kind: 'paid',
        ref: { orderId: request.orderId, providerSessionId: checkout.providerSessionId },
        providerPaymentId: paymentIntentId,
        amountMinor: 4900,
        currency: 'usd',
      },
      payload: JSON.parse(JSON.stringify(completed)),
    });
    expect(completed).toMatchObject({ object: 'event', livemode: false, api_version: expect.any(String), created: expect.any(Number) });
  });

  it('finds the order by client_reference_id when the session has no internalOrderId, and reads an expanded PaymentIntent', async () => {
    const { request, completed, paymentIntentId } = await paidOrder();
    const session = completed.data.object;
    session.metadata = {};
    session.payment_intent = { id: paymentIntentId, object: 'payment_intent' } as Stripe.PaymentIntent;

    const { effect } = await deliver(completed);

    expect(effect).toMatchObject({ kind: 'paid', ref: { orderId: request.orderId }, providerPaymentId: paymentIntentId });
  });

  it('ignores a completed checkout whose delayed payment is still settling, then maps its outcome to paid or failed', async () => {
    const settling = await stripe.createCheckout(checkoutRequest());
    const declined = checkoutRequest();
    const declinedCheckout = await stripe.createCheckout(declined);

    const pending = fake.pay(settling.providerSessionId, { delayed: true });
    expect(pending.data.object.payment_status).toBe('unpaid');
    expect((await deliver(pending)).effect).toEqual({ kind: 'ignored' });

    const succeeded = await deliver(fake.settleDelayedPayment(settling.providerSessionId, 'succeeded'));
    expect(succeeded.type).toBe('checkout.session.async_payment_succeeded');
    expect(succeeded.effect).toMatchObject({ kind: 'paid', ref: { providerSessionId: settling.providerSessionId }, amountMinor: 4900 });

    fake.pay(declinedCheckout.providerSessionId, { delayed: true });
    const failed = await deliver(fake.settleDelayedPayment(declinedCheckout.providerSessionId, 'failed'));
    expect(failed.type).toBe('checkout.session.async_payment_failed');
    expect(failed.effect).toEqual({
      kind: 'failed',
      ref: { orderId: declined.orderId, providerSessionId: declinedCheckout.providerSessionId },
      reason: 'async_payment_failed',
    });
  });

  it('maps checkout.session.expired to expired', async () => {
    const request = checkoutRequest();
    const checkout = await stripe.createCheckout(request);

    const verified = await deliver(fake.expiredEvent(checkout.providerSessionId));

    expect(verified.effect).toEqual({ kind: 'expired', ref: { orderId: request.orderId, providerSessionId: checkout.providerSessionId } });
  });

  it('maps charge.refunded to refunded with the running total, finding the order by the metadata Stripe copied onto the charge', async () => {
    const { request, paymentIntentId } = await paidOrder();

    const first = fake.refundEvents(paymentIntentId, 1000);
    const second = fake.refundEvents(paymentIntentId, 500);

    expect(first.chargeRefunded.data.object).not.toHaveProperty('refunds');
    expect((await deliver(first.chargeRefunded)).effect).toEqual({
      kind: 'refunded',
      ref: { orderId: request.orderId, providerPaymentId: paymentIntentId },
      amountMinor: 1000,
      totalRefundedMinor: 1000,
      currency: 'usd',
    });
    // Without the refund list the charge tells only the running total, and names no refund (refund.created does).
    const total = (await deliver(second.chargeRefunded)).effect;
    expect(total).toMatchObject({ amountMinor: 1500, totalRefundedMinor: 1500 });
    expect(total).not.toHaveProperty('refundId');
  });

  it('takes the newest refund of the list when the charge carries one', async () => {
    const { paymentIntentId } = await paidOrder();
    fake.refundEvents(paymentIntentId, 1000);

    const { refund, chargeRefunded } = fake.refundEvents(paymentIntentId, 500, { withRefundList: true });

    expect(chargeRefunded.data.object.refunds?.data).toHaveLength(2);
    expect((await deliver(chargeRefunded)).effect).toMatchObject({ kind: 'refunded', refundId: refund.id, amountMinor: 500, totalRefundedMinor: 1500 });
  });

  it('maps a succeeded refund.created to refunded by its own id and amount, with no total', async () => {
    const { paymentIntentId } = await paidOrder();

    const { refund, refundCreated } = fake.refundEvents(paymentIntentId, 700);

    expect((await deliver(refundCreated)).effect).toEqual({
      kind: 'refunded',
      // Made in the Dashboard: no metadata, the PaymentIntent finds the order.
      ref: { providerPaymentId: paymentIntentId },
      refundId: refund.id,
      amountMinor: 700,
      currency: 'usd',
    });
  });

  it('acts on refund.created and refund.updated only once the refund succeeded', async () => {
    const { request, paymentIntentId } = await paidOrder();
    fake.setRefundStatus('pending');
    const { providerRefundId } = await stripe.refund({
      orderId: request.orderId,
      refundRequestId: randomUUID(),
      providerPaymentId: paymentIntentId,
      amountMinor: 4900,
      currency: 'usd',
    });
    const { refund, refundCreated } = fake.refundEventsFor(providerRefundId);

    expect(refundCreated.request?.idempotency_key).toMatch(/^refund:/);
    expect((await deliver(refundCreated)).effect).toEqual({ kind: 'ignored' });
    expect((await deliver(fake.event('refund.updated', { ...refund, status: 'requires_action' }))).effect).toEqual({ kind: 'ignored' });
    const succeeded = await deliver(fake.event('refund.updated', { ...refund, status: 'succeeded' }));
    expect(succeeded.effect).toEqual({
      kind: 'refunded',
      ref: { orderId: request.orderId, providerPaymentId: paymentIntentId },
      refundId: providerRefundId,
      amountMinor: 4900,
      currency: 'usd',
    });
  });

  it('maps charge.dispute.created to disputed, found by the PaymentIntent', async () => {
    const { paymentIntentId } = await paidOrder();
    const disputed = fake.disputeEvent(paymentIntentId, 'product_not_received');

    const { effect } = await deliver(disputed);

    expect(effect).toEqual({
      kind: 'disputed',
      ref: { providerPaymentId: paymentIntentId },
      disputeId: disputed.data.object.id,
      reason: 'product_not_received',
    });
    expect(disputed.data.object.id).toMatch(/^dp_/);
  });

  it('verifies and acknowledges an event type Parley does not act on, as ignored', async () => {
    const customerCreated = fake.event('customer.created', { id: 'cus_TestCustomer01', object: 'customer', email: 'ana@example.com', metadata: {} });

    const verified = await deliver(customerCreated);

    expect(verified).toMatchObject({ eventId: customerCreated.id, type: 'customer.created', effect: { kind: 'ignored' } });
  });
});

describe('Stripe webhook signatures', () => {
  async function signedCompletion() {
    const { completed } = await paidOrder();
    return signStripeEvent(completed, WEBHOOK_SECRET);
  }

  const verify = (body: string | Buffer, headers: WebhookHeaders) => stripe.parseAndVerifyWebhook(Buffer.from(body), headers);

  it('accepts a timestamp inside the tolerance, either way', async () => {
    const { completed } = await paidOrder();

    await expect(deliver(completed, { timestamp: nowSeconds() - 240 })).resolves.toMatchObject({ eventId: completed.id });
    await expect(deliver(completed, { timestamp: nowSeconds() + 240 })).resolves.toMatchObject({ eventId: completed.id });
  });

  it('refuses a missing, empty or repeated stripe-signature header', async () => {
    const { body, header } = await signedCompletion();

    expect((await webhookFailure(verify(body, {}))).message).toMatch(/missing/);
    expect((await webhookFailure(verify(body, { 'stripe-signature': '' }))).message).toMatch(/empty/);
    expect((await webhookFailure(verify(body, { 'stripe-signature': [header, header] }))).message).toMatch(/more than one/);
    // Node joins a repeated header with ", ": two timestamps, refused too.
    await webhookFailure(verify(body, { 'stripe-signature': `${header}, ${header}` }));
  });

  it('refuses a signature made with another secret', async () => {
    const { completed } = await paidOrder();

    const failure = await webhookFailure(deliver(completed, { secret: `whsec_${randomBytes(24).toString('base64url')}` }));

    expect(failure.message).toMatch(/no signatures found matching/i);
  });

  it('refuses a body changed by one byte, or re-serialised with other spacing', async () => {
    const { body, header } = await signedCompletion();
    const tampered = Buffer.from(body);
    const digit = body.indexOf('"amount_total": 4900') + '"amount_total": '.length;
    tampered[digit] = '5'.charCodeAt(0);

    expect((await webhookFailure(verify(tampered, { 'stripe-signature': header }))).message).toMatch(/no signatures found matching/i);
    expect((await webhookFailure(verify(JSON.stringify(JSON.parse(body)), { 'stripe-signature': header }))).message).toMatch(/no signatures found matching/i);
    await expect(verify(body, { 'stripe-signature': header })).resolves.toMatchObject({ type: 'checkout.session.completed' });
  });

  it('refuses a stale timestamp and one too far in the future', async () => {
    const { completed } = await paidOrder();

    expect((await webhookFailure(deliver(completed, { timestamp: nowSeconds() - 360 }))).message).toMatch(/tolerance/);
    expect((await webhookFailure(deliver(completed, { timestamp: nowSeconds() + 360 }))).message).toMatch(/tolerance/);
  });

  it('applies a tolerance it is given', async () => {
    const { completed } = await paidOrder();
    const strict = provider({ toleranceSeconds: 60 });
    const { body, header } = signStripeEvent(completed, WEBHOOK_SECRET, nowSeconds() - 120);

    expect((await webhookFailure(strict.parseAndVerifyWebhook(Buffer.from(body), { 'stripe-signature': header }))).message).toMatch(/tolerance/);
    await expect(verify(body, { 'stripe-signature': header })).resolves.toMatchObject({ eventId: completed.id });
  });

  it('refuses a malformed header and a signature under the v0 scheme only', async () => {
    const { body, header } = await signedCompletion();
    const signature = /v1=([0-9a-f]+)/.exec(header)![1]!;
    const timestamp = /t=(\d+)/.exec(header)![1]!;

    for (const malformed of [`t=abc,v1=${signature}`, `v1=${signature}`, 'not a signature']) {
      expect((await webhookFailure(verify(body, { 'stripe-signature': malformed }))).message).toMatch(/malformed/);
    }
    // The right HMAC, labelled with the legacy scheme Stripe no longer verifies.
    expect((await webhookFailure(verify(body, { 'stripe-signature': `t=${timestamp},v0=${signature}` }))).message).toMatch(
      /no signatures found with expected scheme/i,
    );
  });

  it('refuses a correctly signed body that is not a Stripe event', async () => {
    const notJson = '{"id": "evt_1", "object": "event"';
    expect((await webhookFailure(verify(notJson, { 'stripe-signature': signStripePayload(notJson, WEBHOOK_SECRET) }))).message).toMatch(/not JSON/);
    for (const payload of ['[1, 2, 3]', '{"id": "evt_1", "type": "checkout.session.completed"}']) {
      const header = signStripePayload(payload, WEBHOOK_SECRET);
      expect((await webhookFailure(verify(payload, { 'stripe-signature': header }))).message).toMatch(/not a Stripe event/);
    }
  });
});

describe('Stripe refunds', () => {
  it('refunds a payment in full, keyed by the refund request and tagged with the order', async () => {
    const { request, paymentIntentId } = await paidOrder();
    const refundRequestId = randomUUID();

    const result = await stripe.refund({ orderId: request.orderId, refundRequestId, providerPaymentId: paymentIntentId, amountMinor: 4900, currency: 'usd' });

    expect(result).toEqual({ providerRefundId: expect.stringMatching(/^re_/), status: 'succeeded' });
    expect(fake.refundsOf(paymentIntentId)).toEqual([
      expect.objectContaining({ id: result.providerRefundId, amount: 4900, status: 'succeeded', metadata: { internalOrderId: request.orderId } }),
    ]);
    expect(requestsWithKey(`refund:${refundRequestId}`)).toHaveLength(1);
  });

  it('refunds in parts, and a retried refund request refunds once', async () => {
    const { request, paymentIntentId } = await paidOrder();
    const part = (refundRequestId: string, amountMinor: number) =>
      stripe.refund({ orderId: request.orderId, refundRequestId, providerPaymentId: paymentIntentId, amountMinor, currency: 'usd' });
    const firstRequest = randomUUID();

    const first = await part(firstRequest, 1000);
    const retried = await part(firstRequest, 1000);
    const second = await part(randomUUID(), 500);

    expect(retried).toEqual(first);
    expect(second.providerRefundId).not.toBe(first.providerRefundId);
    expect(fake.refundsOf(paymentIntentId).map((refund) => refund.amount)).toEqual([1000, 500]);
    expect(requestsWithKey(`refund:${firstRequest}`).map((sent) => sent.replayed)).toEqual([false, true]);
  });

  it('is refused, for good, past what is left to refund', async () => {
    const { request, paymentIntentId } = await paidOrder();
    const refund = (amountMinor: number) =>
      stripe.refund({ orderId: request.orderId, refundRequestId: randomUUID(), providerPaymentId: paymentIntentId, amountMinor, currency: 'usd' });
    await refund(4000);

    const over = await providerFailure(refund(1000));
    expect(over).toMatchObject({ kind: 'rejected', providerCode: undefined });
    expect(over.message).toMatch(/greater than unrefunded amount/);

    await refund(900);
    expect(await providerFailure(refund(100))).toMatchObject({ kind: 'rejected', providerCode: 'charge_already_refunded' });
    expect(fake.refundsOf(paymentIntentId).map((made) => made.amount)).toEqual([4000, 900]);
  });

  it('is refused for a PaymentIntent Stripe does not know', async () => {
    const failure = await providerFailure(
      stripe.refund({
        orderId: randomUUID(),
        refundRequestId: randomUUID(),
        providerPaymentId: 'pi_3Unknown000000000000000',
        amountMinor: 100,
        currency: 'usd',
      }),
    );

    expect(failure).toMatchObject({ kind: 'rejected', providerCode: 'resource_missing' });
  });

  it.each([
    ['pending', 'pending'],
    ['requires_action', 'pending'],
    ['failed', 'failed'],
    ['canceled', 'failed'],
  ] as const)('reports a refund Stripe answers %s as %s', async (stripeStatus, status) => {
    const { request, paymentIntentId } = await paidOrder();
    fake.setRefundStatus(stripeStatus);

    const result = await stripe.refund({
      orderId: request.orderId,
      refundRequestId: randomUUID(),
      providerPaymentId: paymentIntentId,
      amountMinor: 4900,
      currency: 'usd',
    });

    expect(result.status).toBe(status);
  });
});

describe('Stripe failures', () => {
  it('retries once after a 500, with the same idempotency key, and gets one session', async () => {
    const delays = backOffWithoutWaiting();
    const request = checkoutRequest();
    fake.failNext(500);

    const checkout = await stripe.createCheckout(request);

    expect(requestsWithKey(`checkout:${request.orderId}`).map((sent) => sent.status)).toEqual([500, 200]);
    expect(fake.sessions.filter((entry) => entry.session.client_reference_id === request.orderId).map((entry) => entry.id)).toEqual([
      checkout.providerSessionId,
    ]);
    expect(delays.some((delay) => delay >= 500)).toBe(true);
  });

  it('reports unavailable when the retry fails too', async () => {
    backOffWithoutWaiting();
    const request = checkoutRequest();
    fake.failNext(503, 2);

    const failure = await providerFailure(stripe.createCheckout(request));

    expect(failure.kind).toBe('unavailable');
    expect(requestsWithKey(`checkout:${request.orderId}`)).toHaveLength(2);
  });

  it('reports a 429 as unavailable, without retrying at once', async () => {
    const request = checkoutRequest();
    fake.failNext(429);

    const failure = await providerFailure(stripe.createCheckout(request));

    expect(failure).toMatchObject({ kind: 'unavailable', providerCode: 'rate_limit' });
    expect(requestsWithKey(`checkout:${request.orderId}`)).toHaveLength(1);
  });

  it('reports a 400 as rejected with Stripe code, without retrying', async () => {
    const request = checkoutRequest({ amountMinor: 49.5 });

    const failure = await providerFailure(stripe.createCheckout(request));

    expect(failure).toMatchObject({ kind: 'rejected', providerCode: 'parameter_invalid_integer' });
    expect(requestsWithKey(`checkout:${request.orderId}`)).toHaveLength(1);
  });

  it('reports a card error as rejected with its code', async () => {
    fake.failNext(402);

    const failure = await providerFailure(stripe.createCheckout(checkoutRequest()));

    expect(failure).toMatchObject({ kind: 'rejected', providerCode: 'card_declined' });
  });

  it('reports a wrong API key as rejected, naming neither key', async () => {
    const wrongKey = `sk_test_${randomBytes(24).toString('hex')}`;

    const failure = await providerFailure(provider({ secretKey: wrongKey }).createCheckout(checkoutRequest()));

    expect(failure.kind).toBe('rejected');
    expect(failure.message).toMatch(/401/);
    expect(failure.message).not.toContain(wrongKey.slice(8, 20));
    expect(failure.message).not.toContain(wrongKey.slice(-4));
  });

  it('reports unavailable when Stripe cannot be reached', async () => {
    backOffWithoutWaiting();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const failure = await providerFailure(provider({ apiUrl: `http://127.0.0.1:${port}` }).createCheckout(checkoutRequest()));

    expect(failure.kind).toBe('unavailable');
    expect(failure.message).toMatch(/ECONNREFUSED/);
  });

  it('gives up on an answer that does not come within the timeout', async () => {
    backOffWithoutWaiting();
    fake.stallNext(2);

    const failure = await providerFailure(provider({ timeoutMs: 50 }).createCheckout(checkoutRequest()));

    expect(failure.kind).toBe('unavailable');
    expect(failure.message).toMatch(/timeout/);
  });
});
