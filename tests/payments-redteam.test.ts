import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { startFakePayPal, type FakePayPal } from './helpers/fake-paypal.js';
import { signStripeEvent, startFakeStripe, type FakeStripe } from './helpers/fake-stripe.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin, signLocalEvent } from './helpers/payments.js';

/**
 * Red-team cases of the payments module: each one a defect found and fixed. One app takes the
 * local provider's checkouts and also has Stripe and PayPal configured (donations pick them),
 * the official SDKs pointed at local servers that speak their APIs.
 */
const STRIPE_SECRET_KEY = `sk_test_${randomBytes(24).toString('hex')}`;
const STRIPE_WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64url')}`;
const PAYPAL_CLIENT_ID = `client-${randomUUID()}`;
const PAYPAL_CLIENT_SECRET = `secret-${randomUUID()}`;
const PAYPAL_WEBHOOK_ID = `WH-${randomUUID()}`;

/**
 * Stands between the Stripe SDK and the fake: while `beforeRefundAnswer` is set, the answer to
 * a refund is held until it has run, as when Stripe's webhook about a refund reaches Parley
 * before the API call that made the refund has its answer.
 */
interface StripeRelay {
  url: string;
  beforeRefundAnswer: ((refundId: string) => Promise<void>) | null;
  close(): Promise<void>;
}

async function startStripeRelay(target: string): Promise<StripeRelay> {
  const relay: StripeRelay = { url: '', beforeRefundAnswer: null, close: () => Promise.resolve() };
  const server: Server = createServer((incoming, outgoing) => {
    const sent: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => sent.push(chunk));
    incoming.on('end', () => {
      const upstream = httpRequest(new URL(incoming.url ?? '/', target), { method: incoming.method, headers: incoming.headers }, (answer) => {
        const received: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => received.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(received);
          const hold =
            relay.beforeRefundAnswer && incoming.method === 'POST' && incoming.url === '/v1/refunds' && answer.statusCode === 200
              ? relay.beforeRefundAnswer((JSON.parse(body.toString('utf8')) as { id: string }).id)
              : Promise.resolve();
          void hold.finally(() => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            outgoing.end(body);
          });
        });
      });
      upstream.end(Buffer.concat(sent));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  relay.close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  };
  return relay;
}

let stripe: FakeStripe;
let relay: StripeRelay;
let paypal: FakePayPal;
let t: TestApp;
let admin: Pair;
beforeAll(async () => {
  stripe = await startFakeStripe({ secretKey: STRIPE_SECRET_KEY });
  relay = await startStripeRelay(stripe.url);
  paypal = await startFakePayPal({ clientId: PAYPAL_CLIENT_ID, clientSecret: PAYPAL_CLIENT_SECRET, webhookId: PAYPAL_WEBHOOK_ID });
  t = await buildTestApp({
    env: {
      PAYMENT_PROVIDER: 'local',
      STRIPE_SECRET_KEY,
      STRIPE_WEBHOOK_SECRET,
      STRIPE_API_URL: relay.url,
      PAYPAL_CLIENT_ID,
      PAYPAL_CLIENT_SECRET,
      PAYPAL_WEBHOOK_ID,
      PAYPAL_API_URL: paypal.url,
    },
  });
});
afterAll(async () => {
  await t?.close();
  await relay?.close();
  await stripe?.close();
  await paypal?.close();
});
beforeEach(async () => {
  relay.beforeRefundAnswer = null;
  await truncateAll(t);
  admin = await registerAdmin(t);
});

const db = () => t.container.db;
const rows = <T>(sql: string, parameters: unknown[] = []) => db().query<T[]>(sql, parameters);
const pathOf = (url: string) => new URL(url).pathname;
const onPage = (url: string, action: 'complete' | 'cancel') =>
  t.app.inject({ method: 'POST', url: `${pathOf(url)}/${action}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
const enroll = (caller: Pair, courseId: string) => injectAs(t.app, caller, { method: 'POST', url: `/courses/${courseId}/enroll` });
const donate = (caller: Pair, body: Record<string, unknown>) =>
  injectAs(t.app, caller, { method: 'POST', url: '/donations/create', headers: { 'idempotency-key': randomUUID() }, payload: body });
const refund = (orderId: string, body: Record<string, unknown>) =>
  injectAs(t.app, admin, { method: 'POST', url: `/admin/orders/${orderId}/refund`, headers: { 'idempotency-key': randomUUID() }, payload: body });
const deliverStripe = (event: object) => {
  const { body, header } = signStripeEvent(event, STRIPE_WEBHOOK_SECRET);
  return t.app.inject({ method: 'POST', url: '/webhooks/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': header }, payload: body });
};
const orderRow = async (where: string, value: string) =>
  (
    await rows<{ id: string; status: string; refundedMinor: number; amountMinor: number }>(
      `SELECT id, status, refunded_minor AS "refundedMinor", amount_minor AS "amountMinor" FROM orders WHERE ${where} = $1`,
      [value],
    )
  )[0]!;

/** A donation paid through Stripe: the Parley order and the PaymentIntent. */
async function stripeDonation(donor: Pair, body: Record<string, unknown>): Promise<{ orderId: string; sessionId: string; paymentIntentId: string }> {
  const created = await donate(donor, { sponsorType: 'language', targetIdentifier: 'is', provider: 'stripe', ...body });
  expect(created.statusCode, created.body).toBe(201);
  const sessionId = created.json<{ orderId: string }>().orderId;
  const completed = stripe.pay(sessionId);
  expect((await deliverStripe(completed)).statusCode).toBe(200);
  const paid = await eventually(
    () => orderRow('provider_session_id', sessionId),
    (row) => row.status === 'paid',
  );
  return { orderId: paid.id, sessionId, paymentIntentId: completed.data.object.payment_intent as string };
}

describe('money that the provider and Parley count differently', () => {
  it('refuses with 400 a donation whose amount rounds to nothing, instead of failing with 500', async () => {
    const donor = await register(t.app);
    for (const body of [
      { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 1e-7, currency: 'JPY' },
      { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 1e-9 },
    ]) {
      const res = await donate(donor, body);
      expect({ body, status: res.statusCode, code: res.json().error?.code }).toEqual({ body, status: 400, code: 'validation_failed' });
    }
    expect((await donate(donor, { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 0.01 })).json().amount).toEqual({ amount: 1, currency: 'usd' });
    expect((await rows<{ n: string }>(`SELECT count(*) AS n FROM orders`))[0]!.n).toBe('1');
  });

  it('asks PayPal for a TWD donation in PayPal’s whole dollars, not in Parley’s cents', async () => {
    const donor = await register(t.app);
    const created = await donate(donor, { sponsorType: 'language', targetIdentifier: 'zh-TW', amountUsd: 150, currency: 'TWD', provider: 'paypal' });
    expect(created.statusCode, created.body).toBe(201);
    const donation = created.json<{ id: string; orderId: string; amount: { amount: number; currency: string } }>();
    // Parley counts TWD in cents (ISO 4217), PayPal takes TWD without decimals
    expect(donation.amount).toEqual({ amount: 15000, currency: 'twd' });
    expect(paypal.orders.get(donation.orderId)?.purchase_units[0]?.amount).toMatchObject({ currency_code: 'TWD', value: '150' });

    // what PayPal captured comes back as the same 150 dollars
    paypal.approve(donation.orderId);
    const confirmed = await injectAs(t.app, donor, { method: 'POST', url: '/donations/confirm', payload: { id: donation.id } });
    expect(confirmed.json()).toMatchObject({ status: 'completed', amount: { amount: 15000, currency: 'twd' } });
  });

  it('asks Stripe for an ISK donation in Stripe’s two-decimal units, and reads its refunds back in krónur', async () => {
    const donor = await register(t.app);
    const { orderId, sessionId, paymentIntentId } = await stripeDonation(donor, { amountUsd: 5000, currency: 'ISK' });
    const session = stripe.sessions.find((entry) => entry.id === sessionId)!;
    // Stripe: "ISK will remain a two-decimal currency in the Stripe API, and an ISK amount of 100 will continue to represent 1 króna"
    expect(session.params.line_items).toMatchObject([{ price_data: { currency: 'isk', unit_amount: '500000' } }]);
    expect((await orderRow('id', orderId)).amountMinor).toBe(5000);

    const asked = await refund(orderId, { amount: 1000 });
    expect(asked.statusCode, asked.body).toBe(202);
    const [made] = stripe.refundsOf(paymentIntentId);
    expect(made?.amount).toBe(100000);
    const events = stripe.refundEventsFor(made!.id);
    for (const event of [events.chargeRefunded, events.refundCreated]) expect((await deliverStripe(event)).statusCode).toBe(200);
    const refunded = await eventually(
      () => orderRow('id', orderId),
      (row) => row.status === 'partially_refunded',
    );
    expect(refunded.refundedMinor).toBe(1000);
  });
});

describe('refunds', () => {
  it('counts a refund once when the provider’s refund event is applied before its answer to the refund call', async () => {
    const donor = await register(t.app);
    const { orderId } = await stripeDonation(donor, { amountUsd: 50 });
    relay.beforeRefundAnswer = async (refundId) => {
      const { refundCreated } = stripe.refundEventsFor(refundId);
      expect((await deliverStripe(refundCreated)).statusCode).toBe(200);
      await eventually(
        () => orderRow('id', orderId),
        (row) => row.refundedMinor === 1000,
      );
    };
    const first = await refund(orderId, { amount: 1000 });
    expect(first.statusCode, first.body).toBe(202);
    relay.beforeRefundAnswer = null;

    const refunds = await rows<{ status: string; amountMinor: number; requestedBy: string | null }>(
      `SELECT status, amount_minor AS "amountMinor", requested_by AS "requestedBy" FROM order_refunds WHERE order_id = $1`,
      [orderId],
    );
    expect(refunds).toEqual([{ status: 'succeeded', amountMinor: 1000, requestedBy: admin.user.id }]);
    // the rest of the payment can still be refunded: the first refund is not counted twice
    const rest = await refund(orderId, {});
    expect(rest.statusCode, rest.body).toBe(202);
    expect(rest.json().refund.amount).toEqual({ amount: 4000, currency: 'usd' });
  });
});

describe('donations', () => {
  it('fails the donation with its order when the provider’s checkout could not be opened, instead of leaving it pending', async () => {
    const donor = await register(t.app);
    stripe.failNext(500, 2);
    const down = await donate(donor, { sponsorType: 'language', targetIdentifier: 'es', amountUsd: 5, provider: 'stripe' });
    expect(down.statusCode, down.body).toBe(503);
    const states = await rows<{ order: string; donation: string }>(
      `SELECT o.status AS order, s.status AS donation FROM sponsorships s JOIN orders o ON o.id = s.order_id WHERE s.user_id = $1`,
      [donor.user.id],
    );
    expect(states).toEqual([{ order: 'failed', donation: 'failed' }]);
  });
});

describe('enrollment', () => {
  it('keeps the course for a buyer who paid two checkouts of it when one of them is refunded', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin, { price: { amount: 2000, currency: 'usd' } });
    const first = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    // the price changes while the first checkout is open: the next checkout is a new order, the first page stays payable
    expect(
      (await injectAs(t.app, admin, { method: 'PATCH', url: `/courses/${course.id}`, payload: { price: { amount: 2500, currency: 'usd' } } })).statusCode,
    ).toBe(200);
    const second = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    expect(second.orderId).not.toBe(first.orderId);

    expect((await onPage(second.url, 'complete')).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, second.orderId),
      (o) => o.status === 'paid',
    );
    expect((await onPage(first.url, 'complete')).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, first.orderId),
      (o) => o.status === 'paid',
    );

    // the order the enrollment came with is refunded; the other one still pays for the course
    expect((await refund(second.orderId, {})).statusCode).toBe(202);
    await eventually(
      () => order(t.app, buyer, second.orderId),
      (o) => o.status === 'refunded',
    );
    const still = await enroll(buyer, course.id);
    expect(still.statusCode, still.body).toBe(200);
    expect(still.json().orderId).toBe(first.orderId);

    // refunding that one too takes the course away
    expect((await refund(first.orderId, {})).statusCode).toBe(202);
    await eventually(
      () => order(t.app, buyer, first.orderId),
      (o) => o.status === 'refunded',
    );
    expect((await enroll(buyer, course.id)).statusCode).toBe(202);
  });
});

describe('the webhook inbox', () => {
  it('stores and applies a verified event whose text holds a NUL character instead of answering 500 to every delivery', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const { orderId, url } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    const sessionId = pathOf(url).split('/').pop()!;
    const { body, signature } = signLocalEvent({
      id: `evt_${sessionId}_completed`,
      object: 'event',
      type: 'checkout.session.completed',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: sessionId,
          order_id: orderId,
          payment_id: 'lpi_nul',
          amount_total: 1999,
          currency: 'usd',
          payment_status: 'paid',
          customer_details: { name: 'Ana\u0000Buyer' },
        },
      },
    });
    const delivered = await t.app.inject({
      method: 'POST',
      url: '/webhooks/local',
      headers: { 'content-type': 'application/json', 'parley-signature': signature },
      payload: body,
    });
    expect(delivered.statusCode, delivered.body).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
  });
});
