import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayPalProvider, type PayPalSettings } from '../src/infra/payments/paypal.js';
import { PaymentProviderError, WebhookVerificationError, type CaptureResult, type PaymentProvider } from '../src/infra/payments/provider.js';
import { startFakePayPal, type FakePayPal, type SignedWebhook } from './helpers/fake-paypal.js';

const CLIENT_ID = `AbPaRlEy-${randomBytes(8).toString('hex')}`;
const CLIENT_SECRET = `EPsecret-${randomBytes(16).toString('hex')}`;
const WEBHOOK_ID = `${randomBytes(8).toString('hex').toUpperCase()}WH`;
const RETURN_URL = 'https://parley.test/payments/paypal/return';
const CANCEL_URL = 'https://parley.test/payments/paypal/cancel';
const VERIFY_PATH = '/v1/notifications/verify-webhook-signature';

let fake: FakePayPal;
let paypal: PaymentProvider;

beforeAll(async () => {
  fake = await startFakePayPal({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, webhookId: WEBHOOK_ID });
  paypal = provider();
});

afterAll(async () => {
  await fake.close();
});

function provider(overrides: Partial<PayPalSettings> = {}): PaymentProvider {
  return createPayPalProvider({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    mode: 'sandbox',
    webhookId: WEBHOOK_ID,
    returnUrl: RETURN_URL,
    cancelUrl: CANCEL_URL,
    apiUrl: fake.url,
    ...overrides,
  });
}

let orderCount = 0;
function newOrderId(): string {
  orderCount += 1;
  return `ord_${orderCount}_${randomBytes(4).toString('hex')}`;
}

/** No secret of ours may be in an error: not the client secret, not its Basic form, not an access token PayPal handed out. */
function expectNoSecrets(error: Error, clientSecret = CLIENT_SECRET): void {
  const basic = Buffer.from(`${CLIENT_ID}:${clientSecret}`).toString('base64');
  const everything = [error.message, String(error), error.stack ?? '', JSON.stringify(error)].join('\n');
  for (const secret of [clientSecret, basic, ...fake.issuedTokens]) expect(everything).not.toContain(secret);
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(Error);
  expectNoSecrets(error as Error);
  return error as Error;
}

async function providerFailure(promise: Promise<unknown>): Promise<PaymentProviderError> {
  const error = await failure(promise);
  expect(error).toBeInstanceOf(PaymentProviderError);
  expect((error as PaymentProviderError).provider).toBe('paypal');
  return error as PaymentProviderError;
}

async function verificationFailure(promise: Promise<unknown>): Promise<WebhookVerificationError> {
  const error = await failure(promise);
  expect(error).toBeInstanceOf(WebhookVerificationError);
  return error;
}

function requestsTo(method: string, path: string) {
  return fake.requests.filter((request) => request.method === method && request.path === path);
}

const verifyCalls = (): number => requestsTo('POST', VERIFY_PATH).length;

function deliver(webhook: SignedWebhook, using = paypal) {
  return using.parseAndVerifyWebhook(Buffer.from(webhook.body, 'utf8'), webhook.headers);
}

async function checkout(overrides: { amountMinor?: number; currency?: string; description?: string } = {}) {
  const orderId = newOrderId();
  const session = await paypal.createCheckout({
    orderId,
    userId: 'user-1',
    description: overrides.description ?? 'Cours de français — niveau B1',
    amountMinor: overrides.amountMinor ?? 1999,
    currency: overrides.currency ?? 'usd',
  });
  return { orderId, session };
}

async function paidOrder(
  overrides: { amountMinor?: number; currency?: string } = {},
): Promise<{ orderId: string; paypalOrderId: string; capture: CaptureResult }> {
  const { orderId, session } = await checkout(overrides);
  fake.approve(session.providerSessionId);
  const capture = await paypal.capture!(session.providerSessionId, orderId);
  return { orderId, paypalOrderId: session.providerSessionId, capture };
}

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('PayPal checkout (order creation)', () => {
  it('creates a CAPTURE order carrying the order id, the amount, the return and cancel URLs, and answers its payer-action link', async () => {
    const orderId = newOrderId();
    const branded = provider({ brandName: 'Parley' });
    const session = await branded.createCheckout({
      orderId,
      userId: 'user-1',
      courseId: 'course-9',
      description: 'Cours de français — niveau B1',
      amountMinor: 1999,
      currency: 'usd',
      customerEmail: 'ana@parley.test',
    });

    const [sent] = requestsTo('POST', '/v2/checkout/orders').filter((request) => request.headers['paypal-request-id'] === `checkout:${orderId}`);
    expect(sent!.headers.host).toBe('api-m.sandbox.paypal.com');
    expect(sent!.headers.authorization).toMatch(/^Bearer A21AA/);
    expect(JSON.parse(sent!.body)).toEqual({
      intent: 'CAPTURE',
      purchase_units: [
        { custom_id: orderId, invoice_id: orderId, description: 'Cours de français — niveau B1', amount: { currency_code: 'USD', value: '19.99' } },
      ],
      payment_source: {
        paypal: {
          email_address: 'ana@parley.test',
          experience_context: {
            brand_name: 'Parley',
            return_url: RETURN_URL,
            cancel_url: CANCEL_URL,
            user_action: 'PAY_NOW',
            shipping_preference: 'NO_SHIPPING',
          },
        },
      },
    });
    const order = fake.orders.get(session.providerSessionId)!;
    expect(order.status).toBe('PAYER_ACTION_REQUIRED');
    expect(order.purchase_units[0]).toMatchObject({ custom_id: orderId, invoice_id: orderId, amount: { currency_code: 'USD', value: '19.99' } });
    expect(session.url).toBe(order.links.find((link) => link.rel === 'payer-action')!.href);
    expect(session.url).toBe(`https://www.sandbox.paypal.com/checkoutnow?token=${session.providerSessionId}`);
  });

  it.each([
    [1999, 'usd', '19.99'],
    [5, 'eur', '0.05'],
    [100_000, 'gbp', '1000.00'],
    [1500, 'jpy', '1500'],
    [2500, 'huf', '2500'],
    // Parley counts TWD in cents (its ISO minor unit); PayPal takes whole dollars only
    [30_000, 'twd', '300'],
    [1000, 'krw', '1000'],
  ])('sends %i minor units of %s as %s', async (amountMinor, currency, value) => {
    const { session } = await checkout({ amountMinor, currency });
    // the fake refuses decimals for zero-decimal currencies and more than two otherwise, as PayPal does
    expect(fake.orders.get(session.providerSessionId)!.purchase_units[0]!.amount).toEqual({ currency_code: currency.toUpperCase(), value });
  });

  it('refuses an amount PayPal cannot take (cents of TWD) before asking PayPal', async () => {
    const ordersBefore = fake.orders.size;
    const refused = await checkout({ amountMinor: 30_050, currency: 'twd' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PaymentProviderError);
    expect(refused).toMatchObject({ kind: 'rejected', providerCode: 'DECIMAL_PRECISION' });
    expect(fake.orders.size).toBe(ordersBefore);
  });

  it('creates one PayPal order per Parley order, however often it is asked (PayPal-Request-Id)', async () => {
    const orderId = newOrderId();
    const request = { orderId, userId: 'user-1', description: 'Donation', amountMinor: 500, currency: 'eur' };
    const first = await paypal.createCheckout(request);
    const second = await paypal.createCheckout(request);

    expect(second).toEqual(first);
    const ordersForIt = [...fake.orders.values()].filter((order) => order.purchase_units[0]!.custom_id === orderId);
    expect(ordersForIt.map((order) => order.id)).toEqual([first.providerSessionId]);
  });

  it('cuts a description longer than PayPal takes (127 characters)', async () => {
    const { session } = await checkout({ description: 'é'.repeat(200) });
    expect(fake.orders.get(session.providerSessionId)!.purchase_units[0]!.description).toBe('é'.repeat(127));
  });

  it('refuses an amount that is not a positive integer of minor units before asking PayPal', async () => {
    const before = fake.requests.length;
    for (const amountMinor of [0, -100, 19.99]) {
      await expect(paypal.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor, currency: 'usd' })).rejects.toMatchObject({
        kind: 'rejected',
        providerCode: 'AMOUNT_NOT_SUPPORTED',
      });
    }
    expect(fake.requests.length).toBe(before);
  });

  it('keeps the live API host in live mode (only the connection is rerouted)', async () => {
    const orderId = newOrderId();
    await provider({ mode: 'live' }).createCheckout({ orderId, userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' });
    const [sent] = requestsTo('POST', '/v2/checkout/orders').filter((request) => request.headers['paypal-request-id'] === `checkout:${orderId}`);
    expect(sent!.headers.host).toBe('api-m.paypal.com');
  });
});

describe('PayPal capture', () => {
  it('captures an approved order: the capture id, paid, the amount in minor units', async () => {
    const { orderId, session } = await checkout({ amountMinor: 4250, currency: 'eur' });
    fake.approve(session.providerSessionId);

    const capture = await paypal.capture!(session.providerSessionId, orderId);

    const order = fake.orders.get(session.providerSessionId)!;
    const paypalCapture = order.purchase_units[0]!.payments!.captures[0]!;
    expect(order.status).toBe('COMPLETED');
    expect(capture).toEqual({ providerPaymentId: paypalCapture.id, status: 'paid', amountMinor: 4250, currency: 'eur' });
    const [sent] = requestsTo('POST', `/v2/checkout/orders/${session.providerSessionId}/capture`);
    expect(sent!.headers['paypal-request-id']).toBe(`capture:${orderId}`);
  });

  it('captures a zero-decimal currency in whole units', async () => {
    const { capture } = await paidOrder({ amountMinor: 1500, currency: 'jpy' });
    expect(capture).toMatchObject({ status: 'paid', amountMinor: 1500, currency: 'jpy' });
  });

  it('refuses to capture before the buyer approved (ORDER_NOT_APPROVED), and captures once approved', async () => {
    const { orderId, session } = await checkout();

    const error = await providerFailure(paypal.capture!(session.providerSessionId, orderId));
    expect(error.kind).toBe('rejected');
    expect(error.providerCode).toBe('ORDER_NOT_APPROVED');

    fake.approve(session.providerSessionId);
    await expect(paypal.capture!(session.providerSessionId, orderId)).resolves.toMatchObject({ status: 'paid' });
  });

  it('answers the same capture when asked twice, through the request id and after PayPal forgot it (ORDER_ALREADY_CAPTURED)', async () => {
    const { orderId, paypalOrderId, capture } = await paidOrder();

    await expect(paypal.capture!(paypalOrderId, orderId)).resolves.toEqual(capture);

    fake.forgetRequestIds();
    await expect(paypal.capture!(paypalOrderId, orderId)).resolves.toEqual(capture);
    expect(requestsTo('GET', `/v2/checkout/orders/${paypalOrderId}`)).toHaveLength(1);
    expect(fake.orders.get(paypalOrderId)!.purchase_units[0]!.payments!.captures).toHaveLength(1);
  });

  it('reports a capture PayPal holds for review as pending, and a declined one as failed', async () => {
    const pending = await checkout();
    fake.approve(pending.session.providerSessionId, { captureStatus: 'PENDING' });
    await expect(paypal.capture!(pending.session.providerSessionId, pending.orderId)).resolves.toMatchObject({ status: 'pending', amountMinor: 1999 });

    const declined = await checkout();
    fake.approve(declined.session.providerSessionId, { captureStatus: 'DECLINED' });
    await expect(paypal.capture!(declined.session.providerSessionId, declined.orderId)).resolves.toMatchObject({ status: 'failed' });
  });
});

describe('PayPal refunds', () => {
  it('refunds part of a capture, then the rest, each with its own request id', async () => {
    const { orderId, capture } = await paidOrder({ amountMinor: 1999 });

    const partial = await paypal.refund({ orderId, refundRequestId: 'rf-1', providerPaymentId: capture.providerPaymentId, amountMinor: 500, currency: 'usd' });
    const rest = await paypal.refund({ orderId, refundRequestId: 'rf-2', providerPaymentId: capture.providerPaymentId, amountMinor: 1499, currency: 'usd' });

    expect(partial.status).toBe('succeeded');
    expect(rest.status).toBe('succeeded');
    const refunds = fake.refundsOf(capture.providerPaymentId);
    expect(refunds.map((refund) => [refund.id, refund.amount.value])).toEqual([
      [partial.providerRefundId, '5.00'],
      [rest.providerRefundId, '14.99'],
    ]);
    expect(refunds[1]!.seller_payable_breakdown.total_refunded_amount).toEqual({ currency_code: 'USD', value: '19.99' });
    expect(refunds[0]).toMatchObject({ custom_id: orderId, invoice_id: orderId });
    const sent = requestsTo('POST', `/v2/payments/captures/${capture.providerPaymentId}/refund`);
    expect(sent.map((request) => request.headers['paypal-request-id'])).toEqual(['refund:rf-1', 'refund:rf-2']);
  });

  it('refunds once when a refund request is retried', async () => {
    const { orderId, capture } = await paidOrder();
    const request = { orderId, refundRequestId: 'rf-retried', providerPaymentId: capture.providerPaymentId, amountMinor: 700, currency: 'usd' };

    const first = await paypal.refund(request);
    const again = await paypal.refund(request);

    expect(again).toEqual(first);
    expect(fake.refundsOf(capture.providerPaymentId)).toHaveLength(1);
  });

  it('rejects refunding more than what is left (REFUND_AMOUNT_EXCEEDED)', async () => {
    const { orderId, capture } = await paidOrder({ amountMinor: 1000 });
    await paypal.refund({ orderId, refundRequestId: 'rf-a', providerPaymentId: capture.providerPaymentId, amountMinor: 600, currency: 'usd' });

    const error = await providerFailure(
      paypal.refund({ orderId, refundRequestId: 'rf-b', providerPaymentId: capture.providerPaymentId, amountMinor: 401, currency: 'usd' }),
    );

    expect(error.kind).toBe('rejected');
    expect(error.providerCode).toBe('REFUND_AMOUNT_EXCEEDED');
    expect(fake.refundsOf(capture.providerPaymentId)).toHaveLength(1);
  });
});

describe('PayPal webhooks: what each event means', () => {
  it('CHECKOUT.ORDER.APPROVED → approved, pointing at the order and the PayPal order', async () => {
    const { orderId, session } = await checkout();
    fake.approve(session.providerSessionId);
    const webhook = fake.orderApprovedEvent(session.providerSessionId);

    const event = await deliver(webhook);

    expect(event.type).toBe('CHECKOUT.ORDER.APPROVED');
    expect(event.eventId).toBe(JSON.parse(webhook.body).id);
    expect(event.eventId).toMatch(/^WH-/);
    expect(event.effect).toEqual({ kind: 'approved', ref: { orderId, providerSessionId: session.providerSessionId } });
    expect(event.payload).toEqual(JSON.parse(webhook.body));
  });

  it('PAYMENT.CAPTURE.COMPLETED → paid, with the capture id and the amount', async () => {
    const { orderId, paypalOrderId, capture } = await paidOrder({ amountMinor: 4999, currency: 'gbp' });

    const event = await deliver(fake.captureCompletedEvent(paypalOrderId));

    expect(event.type).toBe('PAYMENT.CAPTURE.COMPLETED');
    expect(event.effect).toEqual({
      kind: 'paid',
      ref: { orderId, providerSessionId: paypalOrderId, providerPaymentId: capture.providerPaymentId },
      providerPaymentId: capture.providerPaymentId,
      amountMinor: 4999,
      currency: 'gbp',
    });
  });

  it('PAYMENT.CAPTURE.DENIED → failed, with PayPal reason', async () => {
    const { orderId, paypalOrderId, capture } = await paidOrder();

    const event = await deliver(fake.captureDeniedEvent(paypalOrderId));

    expect(event.effect).toEqual({
      kind: 'failed',
      ref: { orderId, providerSessionId: paypalOrderId, providerPaymentId: capture.providerPaymentId },
      reason: 'DECLINED_BY_RISK_FRAUD_FILTERS',
    });
  });

  it('PAYMENT.CAPTURE.REFUNDED → refunded, for a refund made through the API and one made in the dashboard, with the running total', async () => {
    const { orderId, capture } = await paidOrder({ amountMinor: 2000 });
    const viaApi = await paypal.refund({
      orderId,
      refundRequestId: 'rf-hook',
      providerPaymentId: capture.providerPaymentId,
      amountMinor: 500,
      currency: 'usd',
    });

    const first = await deliver(fake.captureRefundedEvent(capture.providerPaymentId));
    expect(first.effect).toEqual({
      kind: 'refunded',
      ref: { orderId, providerPaymentId: capture.providerPaymentId },
      refundId: viaApi.providerRefundId,
      amountMinor: 500,
      totalRefundedMinor: 500,
      currency: 'usd',
    });

    const fromDashboard = await deliver(fake.captureRefundedEvent(capture.providerPaymentId, '3.25'));
    expect(fromDashboard.effect).toMatchObject({
      kind: 'refunded',
      ref: { providerPaymentId: capture.providerPaymentId },
      amountMinor: 325,
      totalRefundedMinor: 825,
    });
    expect(fromDashboard.effect).not.toMatchObject({ refundId: viaApi.providerRefundId });
  });

  it('CUSTOMER.DISPUTE.CREATED → disputed on the capture; ignored when no capture of ours is named', async () => {
    const { capture } = await paidOrder();
    const webhook = fake.disputeCreatedEvent(capture.providerPaymentId);

    const disputed = await deliver(webhook);
    expect(disputed.effect).toEqual({
      kind: 'disputed',
      ref: { providerPaymentId: capture.providerPaymentId },
      disputeId: JSON.parse(webhook.body).resource.dispute_id,
      reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
    });

    await expect(deliver(fake.disputeCreatedEvent())).resolves.toMatchObject({ type: 'CUSTOMER.DISPUTE.CREATED', effect: { kind: 'ignored' } });
  });

  it('any other event is verified and ignored', async () => {
    const before = verifyCalls();
    const event = await deliver(fake.webhookEvent('PAYMENT.CAPTURE.PENDING', 'capture', { id: 'CAPTURE123', status: 'PENDING' }, 'Payment pending'));
    expect(event).toMatchObject({ type: 'PAYMENT.CAPTURE.PENDING', effect: { kind: 'ignored' } });
    expect(verifyCalls()).toBe(before + 1);
  });

  it('sends PayPal the raw bytes, non-ASCII UTF-8 included', async () => {
    const body = JSON.stringify({ id: 'WH-UTF8', event_type: 'CHECKOUT.ORDER.COMPLETED', summary: 'Cours de français — 日本語', resource: {} });
    const webhook = fake.signedWebhook(body);

    await expect(deliver(webhook)).resolves.toMatchObject({ eventId: 'WH-UTF8', effect: { kind: 'ignored' } });

    const sent = requestsTo('POST', VERIFY_PATH).at(-1)!;
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.headers.authorization).toMatch(/^Bearer A21AA/);
    const { headers } = webhook;
    const fields = {
      auth_algo: headers['paypal-auth-algo'],
      cert_url: headers['paypal-cert-url'],
      transmission_id: headers['paypal-transmission-id'],
      transmission_sig: headers['paypal-transmission-sig'],
      transmission_time: headers['paypal-transmission-time'],
      webhook_id: WEBHOOK_ID,
    };
    expect(sent.body).toBe(`${JSON.stringify(fields).slice(0, -1)},"webhook_event":${body}}`);
  });
});

describe('PayPal webhooks: what is not authentic', () => {
  async function approvedWebhook(): Promise<SignedWebhook> {
    const { session } = await checkout();
    fake.approve(session.providerSessionId);
    return fake.orderApprovedEvent(session.providerSessionId);
  }

  it.each(['paypal-transmission-id', 'paypal-transmission-time', 'paypal-transmission-sig', 'paypal-cert-url', 'paypal-auth-algo'])(
    'refuses a delivery without %s, without asking PayPal',
    async (header) => {
      const webhook = await approvedWebhook();
      const before = verifyCalls();
      const headers: Record<string, string | string[] | undefined> = { ...webhook.headers };
      delete headers[header];

      const error = await verificationFailure(paypal.parseAndVerifyWebhook(Buffer.from(webhook.body), headers));
      expect(error.message).toContain(header);
      await verificationFailure(paypal.parseAndVerifyWebhook(Buffer.from(webhook.body), { ...webhook.headers, [header]: [webhook.headers[header]!, 'x'] }));
      expect(verifyCalls()).toBe(before);
    },
  );

  it('refuses what PayPal says is not for our webhook id (FAILURE)', async () => {
    const webhook = await approvedWebhook();
    const before = verifyCalls();
    await verificationFailure(deliver(webhook, provider({ webhookId: 'SOMEONEELSESWEBHOOK' })));
    expect(verifyCalls()).toBe(before + 1);
    // the same delivery, checked against the right id, is authentic
    await expect(deliver(webhook)).resolves.toMatchObject({ effect: { kind: 'approved' } });
  });

  it('refuses a body with one byte changed after signing', async () => {
    const webhook = await approvedWebhook();
    const tampered = Buffer.from(webhook.body, 'utf8');
    const at = tampered.indexOf('"value":"19.99"') + '"value":"19.'.length;
    tampered[at] = '8'.charCodeAt(0);
    expect(tampered.toString()).toContain('"value":"19.89"');

    await verificationFailure(paypal.parseAndVerifyWebhook(tampered, webhook.headers));
  });

  it('refuses a re-serialised body: PayPal verifies the bytes it sent, not their meaning', async () => {
    const webhook = await approvedWebhook();
    const reserialised = JSON.stringify(JSON.parse(webhook.body));
    const pretty = JSON.stringify(JSON.parse(webhook.body), null, 2);
    expect(reserialised).not.toBe(webhook.body);

    await verificationFailure(paypal.parseAndVerifyWebhook(Buffer.from(reserialised), webhook.headers));
    await verificationFailure(paypal.parseAndVerifyWebhook(Buffer.from(pretty), webhook.headers));
  });

  it('refuses the headers of one delivery with the body of another', async () => {
    const first = await approvedWebhook();
    const second = await approvedWebhook();
    await verificationFailure(paypal.parseAndVerifyWebhook(Buffer.from(second.body), first.headers));
  });

  it('refuses a stale or future transmission time before asking PayPal, though PayPal would vouch for the signature', async () => {
    const { session } = await checkout();
    fake.approve(session.providerSessionId);
    const stale = fake.orderApprovedEvent(session.providerSessionId, { transmissionTime: new Date(Date.now() - 10 * 60_000) });
    const future = fake.orderApprovedEvent(session.providerSessionId, { transmissionTime: new Date(Date.now() + 10 * 60_000) });
    const before = verifyCalls();

    await verificationFailure(deliver(stale));
    await verificationFailure(deliver(future));
    expect(verifyCalls()).toBe(before);

    const lenient = provider({ toleranceSeconds: 15 * 60 });
    await expect(deliver(stale, lenient)).resolves.toMatchObject({ effect: { kind: 'approved' } });
    await expect(deliver(future, lenient)).resolves.toMatchObject({ effect: { kind: 'approved' } });
  });

  it('refuses a body that is not a JSON object with id and event_type, without asking PayPal', async () => {
    const before = verifyCalls();
    for (const body of ['not json', '[1,2]', '{"event_type":"CHECKOUT.ORDER.APPROVED"}', '{"id":"WH-1"}', '"WH-1"']) {
      await verificationFailure(deliver(fake.signedWebhook(body)));
    }
    await verificationFailure(paypal.parseAndVerifyWebhook(Buffer.from([0x7b, 0xff, 0x7d]), fake.signedWebhook('{}').headers));
    expect(verifyCalls()).toBe(before);
  });

  it('refuses a delivery PayPal will not even check (400 on verification)', async () => {
    const webhook = await approvedWebhook();
    fake.failNext(`POST ${VERIFY_PATH}`, 400);
    await verificationFailure(deliver(webhook));
  });

  it.each([500, 503, 429])('is unavailable, not unauthentic, when PayPal verification answers %i; the redelivery verifies', async (status) => {
    const webhook = await approvedWebhook();
    fake.failNext(`POST ${VERIFY_PATH}`, status);

    const error = await providerFailure(deliver(webhook));
    expect(error.kind).toBe('unavailable');
    expect(error).not.toBeInstanceOf(WebhookVerificationError);

    await expect(deliver(webhook)).resolves.toMatchObject({ effect: { kind: 'approved' } });
  });

  it('is unavailable when PayPal cannot be reached at all', async () => {
    const webhook = await approvedWebhook();
    const unreachable = provider({ apiUrl: `http://127.0.0.1:${await closedPort()}` });

    const error = await providerFailure(deliver(webhook, unreachable));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toContain('ECONNREFUSED');
  });
});

describe('PayPal errors and credentials', () => {
  it('rejects for good when PayPal refuses the client credentials (401 on the token request)', async () => {
    const oldSecret = `${CLIENT_SECRET}-rotated`;
    const wrongSecret = provider({ clientSecret: oldSecret });

    const error = await providerFailure(
      wrongSecret.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' }),
    );

    expect(error.kind).toBe('rejected');
    expect(error.providerCode).toBe('invalid_client');
    expect(error.message).toContain('HTTP 401');
    expectNoSecrets(error, oldSecret);
  });

  it('is unavailable on a 503 when creating the order, and creates it on the next try', async () => {
    const orderId = newOrderId();
    const request = { orderId, userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' };
    fake.failNext('POST /v2/checkout/orders', 503);

    const error = await providerFailure(paypal.createCheckout(request));
    expect(error.kind).toBe('unavailable');
    expect(error.providerCode).toBe('SERVICE_UNAVAILABLE');

    await expect(paypal.createCheckout(request)).resolves.toMatchObject({ providerSessionId: expect.any(String) });
  });

  it('recovers from a failed token request (the SDK alone would keep the failure as its token for good)', async () => {
    const fresh = provider();
    fake.failNext('/v1/oauth2/token', 503);

    const error = await providerFailure(fresh.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' }));
    expect(error.kind).toBe('unavailable');

    await expect(fresh.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' })).resolves.toBeDefined();
  });

  it('fetches a new token once when PayPal stops accepting the cached one', async () => {
    const { orderId } = await checkout();
    const tokensBefore = fake.issuedTokens.length;
    fake.revokeTokens();

    await expect(paypal.createCheckout({ orderId, userId: 'u', description: 'x', amountMinor: 1999, currency: 'usd' })).resolves.toBeDefined();
    expect(fake.issuedTokens.length).toBe(tokensBefore + 1);
  });

  it('uses one token for many calls', async () => {
    const fresh = provider();
    const tokenRequests = () => requestsTo('POST', '/v1/oauth2/token').length;
    const before = tokenRequests();
    await fresh.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' });
    await fresh.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' });
    expect(tokenRequests()).toBe(before + 1);
  });

  it('is unavailable when PayPal does not answer in time', async () => {
    const impatient = provider({ timeoutMs: 200 });
    await impatient.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' }); // holds a token
    fake.stallNext('POST /v2/checkout/orders');

    const error = await providerFailure(impatient.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' }));
    expect(error.kind).toBe('unavailable');
  });

  it('speaks TLS to an https apiUrl, naming that host (SNI)', async () => {
    const received: Buffer[] = [];
    const sockets = new Set<Socket>();
    const tlsPeer: Server = createServer((socket) => {
      sockets.add(socket);
      socket.once('data', (chunk: Buffer) => {
        received.push(chunk);
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => tlsPeer.listen(0, '127.0.0.1', resolve));
    try {
      const overTls = provider({ apiUrl: `https://localhost:${(tlsPeer.address() as AddressInfo).port}` });
      const error = await providerFailure(overTls.createCheckout({ orderId: newOrderId(), userId: 'u', description: 'x', amountMinor: 100, currency: 'usd' }));
      expect(error.kind).toBe('unavailable');
      const hello = received[0]!;
      expect(hello[0]).toBe(0x16); // TLS handshake record
      expect(hello.includes(Buffer.from('localhost'))).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => tlsPeer.close(() => resolve()));
    }
  });
});
