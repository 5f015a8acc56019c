import { randomBytes, randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { signStripeEvent, startFakeStripe, type FakeStripe } from './helpers/fake-stripe.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin } from './helpers/payments.js';

/** Parley configured for Stripe, the official SDK pointed at a local server that speaks Stripe's API. */
const SECRET_KEY = `sk_test_${randomBytes(24).toString('hex')}`;
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64url')}`;

let fake: FakeStripe;
let t: TestApp;
/** A second instance on the same database, Redis and job queue, as behind a load balancer. */
let other: TestApp;
let admin: Pair;
beforeAll(async () => {
  fake = await startFakeStripe({ secretKey: SECRET_KEY });
  const env = {
    STRIPE_SECRET_KEY: SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_URL: fake.url,
    STRIPE_SUCCESS_URL: 'https://app.parley.test/paid',
    STRIPE_CANCEL_URL: 'https://app.parley.test/cancelled',
  };
  t = await buildTestApp({ env });
  other = await buildTestApp({ env });
});
afterAll(async () => {
  await other?.close();
  await t?.close();
  await fake?.close();
});
beforeEach(async () => {
  await truncateAll(t);
  admin = await registerAdmin(t);
});

const db = () => t.container.db;
const count = async (sql: string, parameters: unknown[] = []) => Number((await db().query<Array<{ n: string }>>(sql, parameters))[0]!.n);
const deliver = (app: TestApp, event: object, url = '/webhooks/stripe', secret = WEBHOOK_SECRET) => {
  const { body, header } = signStripeEvent(event, secret);
  return app.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', 'stripe-signature': header }, payload: body });
};
const processedEvents = () => count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'processed'`);

/** A buyer with a Stripe checkout of a new course. */
async function startCheckout(price = 4900) {
  const buyer = await register(t.app);
  const course = await createCourse(t.app, admin, { title: 'Business English', price: { amount: price, currency: 'usd' } });
  const res = await checkout(t.app, buyer, course.id);
  expect(res.statusCode).toBe(201);
  const { orderId, url } = res.json<{ orderId: string; url: string }>();
  const session = fake.sessions.find((created) => created.session.url === url)!;
  return { buyer, course, orderId, session: session.session };
}

async function paid() {
  const started = await startCheckout();
  const completed = fake.pay(started.session.id);
  expect((await deliver(t, completed)).statusCode).toBe(200);
  await eventually(
    () => order(t.app, started.buyer, started.orderId),
    (o) => o.status === 'paid',
  );
  return { ...started, paymentIntentId: completed.data.object.payment_intent as string };
}

describe('Stripe Checkout', () => {
  it('opens a Checkout Session as module 08 describes, and only the signed webhook pays the order', async () => {
    const { buyer, course, orderId, session } = await startCheckout();
    const created = fake.sessions.find((entry) => entry.session.id === session.id)!;
    expect(created.params).toMatchObject({
      mode: 'payment',
      line_items: [{ price_data: { currency: 'usd', product_data: { name: 'Business English' }, unit_amount: '4900' }, quantity: '1' }],
      success_url: 'https://app.parley.test/paid?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.parley.test/cancelled',
      metadata: { internalOrderId: orderId, userId: buyer.user.id, courseId: course.id },
    });
    expect(created.idempotencyKey).toBe(`checkout:${orderId}`);
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'pending', provider: 'stripe' });

    // module 08's path and /webhooks/stripe are one handler
    expect((await deliver(t, fake.pay(session.id), '/payments/webhook')).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
    expect((await injectAs(t.app, buyer, { method: 'POST', url: `/courses/${course.id}/enroll` })).statusCode).toBe(200);
  });

  it('applies one event delivered 10 times at once across two instances exactly once', async () => {
    const { buyer, orderId, session } = await startCheckout();
    const completed = fake.pay(session.id);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, index) => deliver(index % 2 ? other : t, completed)));
    expect(answers.map((res) => res.statusCode)).toEqual(Array(10).fill(200));
    expect(answers.filter((res) => !res.json<{ duplicate: boolean }>().duplicate)).toHaveLength(1);
    await eventually(processedEvents, (n) => n === 1);
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'paid' });
    expect(await count(`SELECT count(*) AS n FROM payment_webhook_events`)).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM enrollments WHERE user_id = $1`, [buyer.user.id])).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND type = 'payment_success'`, [buyer.user.id])).toBe(1);
    // a delivery days later, once Redis forgot it, is still one event: the unique row holds
    await t.container.redis.client.flushdb();
    expect((await deliver(other, completed)).json()).toEqual({ received: true, duplicate: true });
  });

  it('refuses bad signatures with 400, stores nothing, and names no secret', async () => {
    const { session } = await startCheckout();
    const completed = fake.pay(session.id);
    const { body, header } = signStripeEvent(completed, WEBHOOK_SECRET);
    const stale = signStripeEvent(completed, WEBHOOK_SECRET, Math.floor(Date.now() / 1000) - 400);
    const cases: Array<[string, string, Record<string, string | string[]>]> = [
      ['no signature', body, {}],
      [
        'another secret',
        signStripeEvent(completed, `whsec_${randomBytes(24).toString('base64url')}`).body,
        { 'stripe-signature': signStripeEvent(completed, `whsec_${randomBytes(24).toString('base64url')}`).header },
      ],
      ['a body changed by one byte', body.replace('"paid"', '"pAid"'), { 'stripe-signature': header }],
      ['a re-serialised body', JSON.stringify(JSON.parse(body)), { 'stripe-signature': header }],
      ['a stale timestamp', stale.body, { 'stripe-signature': stale.header }],
    ];
    for (const [name, payload, headers] of cases) {
      const res = await t.app.inject({ method: 'POST', url: '/webhooks/stripe', headers: { 'content-type': 'application/json', ...headers }, payload });
      expect({ name, status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({
        name,
        status: 400,
        code: 'invalid_signature',
      });
      expect(res.body).not.toContain(WEBHOOK_SECRET);
    }
    expect(await count(`SELECT count(*) AS n FROM payment_webhook_events`)).toBe(0);
  });

  it('marks an abandoned checkout expired, and a new checkout then opens a new session', async () => {
    const { buyer, course, orderId, session } = await startCheckout();
    expect((await deliver(t, fake.expiredEvent(session.id))).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'expired',
    );
    const again = await checkout(t.app, buyer, course.id);
    expect(again.statusCode).toBe(201);
    expect(again.json<{ orderId: string }>().orderId).not.toBe(orderId);
  });

  it('answers 503 when Stripe is down, fails the order it could not open, and opens a new one on the retry', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    // the SDK tries twice (maxNetworkRetries 1, safe under the order's idempotency key)
    fake.failNext(500, 2);
    const down = await checkout(t.app, buyer, course.id);
    expect(down.statusCode).toBe(503);
    expect(down.json().error.code).toBe('payment_provider_unavailable');
    expect(down.body).not.toContain(SECRET_KEY);
    expect(await db().query(`SELECT status FROM orders WHERE user_id = $1`, [buyer.user.id])).toEqual([{ status: 'failed' }]);
    fake.failNext(400, 1, { type: 'invalid_request_error', message: 'Invalid currency', code: 'parameter_invalid_empty' });
    expect((await checkout(t.app, buyer, course.id)).json().error).toMatchObject({
      code: 'payment_rejected',
      details: { providerCode: 'parameter_invalid_empty' },
    });
    const back = await checkout(t.app, buyer, course.id);
    expect(back.statusCode).toBe(201);
  });
});

describe('Stripe refunds and disputes', () => {
  const refund = (orderId: string, body: Record<string, unknown>) =>
    injectAs(t.app, admin, { method: 'POST', url: `/admin/orders/${orderId}/refund`, headers: { 'idempotency-key': randomUUID() }, payload: body });

  it('refunds partly then fully through Stripe; both events of each refund count it once, and the full refund revokes the course', async () => {
    const { buyer, course, orderId, paymentIntentId } = await paid();
    const partial = await refund(orderId, { amount: 1900 });
    expect(partial.statusCode).toBe(202);
    const refundId = partial.json<{ refund: { providerRefundId: string } }>().refund.providerRefundId;
    expect(fake.refundsOf(paymentIntentId)).toEqual([expect.objectContaining({ id: refundId, amount: 1900 })]);
    // Stripe's refund changes nothing until its events arrive
    expect((await order(t.app, buyer, orderId)).status).toBe('paid');
    const firstEvents = fake.refundEventsFor(refundId);
    for (const event of [firstEvents.chargeRefunded, firstEvents.refundCreated] as Stripe.Event[]) expect((await deliver(t, event)).statusCode).toBe(200);
    await eventually(processedEvents, (n) => n === 3);
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'partially_refunded', refunded: { amount: 1900 } });

    const rest = await refund(orderId, {});
    expect(rest.json()).toMatchObject({ refund: { amount: { amount: 3000 }, status: 'submitted' } });
    const secondEvents = fake.refundEventsFor(rest.json<{ refund: { providerRefundId: string } }>().refund.providerRefundId);
    // the refund.created first this time: the order of delivery does not matter
    for (const event of [secondEvents.refundCreated, secondEvents.chargeRefunded] as Stripe.Event[]) expect((await deliver(other, event)).statusCode).toBe(200);
    await eventually(processedEvents, (n) => n === 5);
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'refunded', refunded: { amount: 4900 } });
    // the course is no longer theirs: enrolling opens a new checkout
    expect((await injectAs(t.app, buyer, { method: 'POST', url: `/courses/${course.id}/enroll` })).statusCode).toBe(202);
    expect(await count(`SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND title = 'Refund issued'`, [buyer.user.id])).toBe(2);
  });

  it('records a refund made in the Stripe Dashboard, and refuses to refund more than is left', async () => {
    const { buyer, orderId, paymentIntentId } = await paid();
    const dashboard = fake.refundEvents(paymentIntentId, 4000);
    expect((await deliver(t, dashboard.chargeRefunded)).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'partially_refunded',
    );
    const tooMuch = await refund(orderId, { amount: 1000 });
    expect(tooMuch.statusCode).toBe(422);
    expect(tooMuch.json().error).toMatchObject({ code: 'refund_exceeds_payment', details: { refundableMinor: 900 } });
  });

  it('marks a disputed payment and tells the admins', async () => {
    const { orderId, paymentIntentId, buyer } = await paid();
    expect((await deliver(t, fake.disputeEvent(paymentIntentId, 'fraudulent'))).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'disputed',
    );
    const notices = await eventually(
      async () =>
        (await injectAs(t.app, admin, { method: 'GET', url: '/notifications' })).json<{ items: Array<{ title: string; data: Record<string, string> }> }>()
          .items,
      (items) => items.some((item) => item.title === 'A payment is disputed'),
    );
    expect(notices.find((item) => item.title === 'A payment is disputed')?.data).toMatchObject({ orderId });
    const disputed = await injectAs(t.app, admin, { method: 'GET', url: '/admin/orders?status=disputed' });
    expect(disputed.json().items).toEqual([expect.objectContaining({ id: orderId })]);
  });

  it('ends refunded when the refund’s events arrive before the payment’s', async () => {
    const { buyer, orderId, session } = await startCheckout();
    const completed = fake.pay(session.id);
    const paymentIntentId = completed.data.object.payment_intent as string;
    const dashboard = fake.refundEvents(paymentIntentId, 4900);
    expect((await deliver(t, dashboard.chargeRefunded)).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'refunded',
    );
    expect((await deliver(t, completed)).statusCode).toBe(200);
    await eventually(processedEvents, (n) => n === 2);
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'refunded', refunded: { amount: 4900 } });
    expect(await count(`SELECT count(*) AS n FROM enrollments WHERE user_id = $1 AND revoked_at IS NULL`, [buyer.user.id])).toBe(0);
  });
});
