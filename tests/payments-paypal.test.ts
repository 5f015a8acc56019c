import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { startFakePayPal, type FakePayPal } from './helpers/fake-paypal.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin } from './helpers/payments.js';

/** Parley configured for PayPal, the official SDK reaching a local server that speaks PayPal's REST API. */
const CLIENT_ID = `client-${randomUUID()}`;
const CLIENT_SECRET = `secret-${randomUUID()}`;
const WEBHOOK_ID = `WH-${randomUUID()}`;

let fake: FakePayPal;
let t: TestApp;
let admin: Pair;
beforeAll(async () => {
  fake = await startFakePayPal({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, webhookId: WEBHOOK_ID });
  t = await buildTestApp({
    env: {
      PAYMENT_PROVIDER: 'paypal',
      PAYPAL_CLIENT_ID: CLIENT_ID,
      PAYPAL_CLIENT_SECRET: CLIENT_SECRET,
      PAYPAL_WEBHOOK_ID: WEBHOOK_ID,
      PAYPAL_API_URL: fake.url,
    },
  });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});
beforeEach(async () => {
  await truncateAll(t);
  admin = await registerAdmin(t);
});

const db = () => t.container.db;
const count = async (sql: string, parameters: unknown[] = []) => Number((await db().query<Array<{ n: string }>>(sql, parameters))[0]!.n);
const deliver = (webhook: { body: string; headers: Record<string, string> }) =>
  t.app.inject({ method: 'POST', url: '/webhooks/paypal', headers: { 'content-type': 'application/json', ...webhook.headers }, payload: webhook.body });
const paypalOrderOf = async (orderId: string) =>
  (await db().query<Array<{ id: string }>>(`SELECT provider_session_id AS id FROM orders WHERE id = $1`, [orderId]))[0]!.id;
const paymentNotices = (userId: string) => count(`SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND type = 'payment_success'`, [userId]);

describe('PayPal course checkout', () => {
  it('captures an approved order when PayPal says so, once, whatever PayPal sends next', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin, { price: { amount: 2500, currency: 'eur' } });
    const started = await checkout(t.app, buyer, course.id);
    expect(started.json()).toMatchObject({ provider: 'paypal' });
    const { orderId } = started.json<{ orderId: string }>();
    const paypalOrder = await paypalOrderOf(orderId);
    expect(fake.orders.get(paypalOrder)).toMatchObject({
      purchase_units: [expect.objectContaining({ custom_id: orderId, amount: expect.objectContaining({ value: '25.00', currency_code: 'EUR' }) })],
    });

    fake.approve(paypalOrder);
    expect((await deliver(fake.orderApprovedEvent(paypalOrder))).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
    // PayPal then reports the capture: the same payment, no second effect
    expect((await deliver(fake.captureCompletedEvent(paypalOrder))).statusCode).toBe(200);
    await eventually(
      () => count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'processed'`),
      (n) => n === 2,
    );
    expect(await paymentNotices(buyer.user.id)).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM enrollments WHERE user_id = $1`, [buyer.user.id])).toBe(1);
  });

  it('refunds through PayPal; the refund event finalises the order', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin, { price: { amount: 2500, currency: 'usd' } });
    const { orderId } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string }>();
    const paypalOrder = await paypalOrderOf(orderId);
    fake.approve(paypalOrder);
    await deliver(fake.orderApprovedEvent(paypalOrder));
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );

    const refund = await injectAs(t.app, admin, {
      method: 'POST',
      url: `/admin/orders/${orderId}/refund`,
      headers: { 'idempotency-key': randomUUID() },
      payload: { amount: 1000 },
    });
    expect(refund.statusCode).toBe(202);
    const captureId = (await db().query<Array<{ id: string }>>(`SELECT provider_payment_id AS id FROM orders WHERE id = $1`, [orderId]))[0]!.id;
    expect(fake.refundsOf(captureId)).toHaveLength(1);
    expect((await deliver(fake.captureRefundedEvent(captureId))).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'partially_refunded',
    );
    expect((await order(t.app, buyer, orderId)).refunded.amount).toBe(1000);
  });

  it('refuses a webhook PayPal does not vouch for (400, nothing stored), and answers 503 while PayPal cannot be asked', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const { orderId } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string }>();
    const paypalOrder = await paypalOrderOf(orderId);
    fake.approve(paypalOrder);
    const approved = fake.orderApprovedEvent(paypalOrder);

    const tampered = await deliver({ ...approved, body: approved.body.replace(paypalOrder, paypalOrder.replace(/.$/, 'X')) });
    expect(tampered.statusCode).toBe(400);
    expect(tampered.json().error.code).toBe('invalid_signature');
    const { 'paypal-transmission-sig': _signature, ...unsigned } = approved.headers;
    expect((await deliver({ ...approved, headers: unsigned })).statusCode).toBe(400);

    fake.failNext('/v1/notifications/verify-webhook-signature', 503, 1);
    const down = await deliver(approved);
    expect(down.statusCode).toBe(503);
    expect(down.json().error.code).toBe('payment_provider_unavailable');
    expect(down.body).not.toContain(CLIENT_SECRET);
    expect(await count(`SELECT count(*) AS n FROM payment_webhook_events`)).toBe(0);

    // PayPal retries later: the same delivery is then stored and applied
    expect((await deliver(approved)).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
  });
});

describe('PayPal donations', () => {
  const donate = (caller: Pair, body: Record<string, unknown>) =>
    injectAs(t.app, caller, { method: 'POST', url: '/donations/create', headers: { 'idempotency-key': randomUUID() }, payload: body });
  const confirm = (caller: Pair, id: string) => injectAs(t.app, caller, { method: 'POST', url: '/donations/confirm', payload: { id } });

  it('creates a PayPal order the donor approves, then confirm captures it once; PayPal’s own events change nothing more', async () => {
    const donor = await register(t.app);
    const created = await donate(donor, { sponsorType: 'analysis', targetIdentifier: 'pronunciation', amountUsd: 7.5, message: 'Keep going' });
    expect(created.statusCode).toBe(201);
    const donation = created.json<{ id: string; orderId: string; url: string; approveUrl: string }>();
    expect(created.json()).toMatchObject({ status: 'pending', provider: 'paypal', amount: { amount: 750, currency: 'usd' } });
    expect(donation.approveUrl).toBe(donation.url);
    expect(fake.orders.has(donation.orderId)).toBe(true);

    const early = await confirm(donor, donation.id);
    expect(early.statusCode).toBe(409);
    expect(early.json().error).toMatchObject({ code: 'donation_not_confirmable', details: { providerCode: 'ORDER_NOT_APPROVED' } });

    fake.approve(donation.orderId);
    const confirmed = await confirm(donor, donation.id);
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json()).toMatchObject({ status: 'completed', completedAt: expect.any(String) });
    expect((await confirm(donor, donation.id)).json().status).toBe('completed');

    for (const webhook of [fake.orderApprovedEvent(donation.orderId), fake.captureCompletedEvent(donation.orderId)])
      expect((await deliver(webhook)).statusCode).toBe(200);
    await eventually(
      () => count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'processed'`),
      (n) => n === 2,
    );
    expect(await paymentNotices(donor.user.id)).toBe(1);
    expect(await db().query(`SELECT status, payment_provider_capture_id IS NOT NULL AS captured FROM sponsorships`)).toEqual([
      { status: 'completed', captured: true },
    ]);
    const stranger = await register(t.app);
    expect((await confirm(stranger, donation.id)).statusCode).toBe(404);
  });
});
