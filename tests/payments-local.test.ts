import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin, signLocalEvent } from './helpers/payments.js';

let t: TestApp;
let admin: Pair;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());
beforeEach(async () => {
  await truncateAll(t);
  admin = await registerAdmin(t);
});

const db = () => t.container.db;
const pathOf = (url: string) => new URL(url).pathname;
const payOnPage = (url: string) =>
  t.app.inject({ method: 'POST', url: `${pathOf(url)}/complete`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
const enroll = (caller: Pair, courseId: string) => injectAs(t.app, caller, { method: 'POST', url: `/courses/${courseId}/enroll` });
const count = async (sql: string, parameters: unknown[] = []) => Number((await db().query<Array<{ n: string }>>(sql, parameters))[0]!.n);
const postLocalWebhook = (body: string, headers: Record<string, string>) =>
  t.app.inject({ method: 'POST', url: '/webhooks/local', headers: { 'content-type': 'application/json', ...headers }, payload: body });

async function paidCourse(buyer: Pair, price = 1999): Promise<{ courseId: string; orderId: string }> {
  const course = await createCourse(t.app, admin, { price: { amount: price, currency: 'usd' } });
  const started = await checkout(t.app, buyer, course.id);
  expect(started.statusCode).toBe(201);
  const { orderId, url } = started.json<{ orderId: string; url: string }>();
  expect((await payOnPage(url)).statusCode).toBe(200);
  await eventually(
    () => order(t.app, buyer, orderId),
    (o) => o.status === 'paid',
  );
  return { courseId: course.id, orderId };
}

describe('the course catalogue', () => {
  it('lets admins create, change and delete courses, and shows students only the published ones', async () => {
    const student = await register(t.app);
    expect(
      (await injectAs(t.app, student, { method: 'POST', url: '/courses', payload: { title: 'x', level: 'beginner', price: { amount: 0, currency: 'usd' } } }))
        .statusCode,
    ).toBe(403);

    const draft = await createCourse(t.app, admin, { title: 'Draft', published: false });
    const live = await createCourse(t.app, admin, { title: 'Small talk', level: 'intermediate', price: { amount: 1500, currency: 'EUR' } });
    expect((await t.app.inject({ method: 'GET', url: `/courses/${draft.id}` })).statusCode).toBe(404);
    expect((await injectAs(t.app, admin, { method: 'GET', url: `/courses/${draft.id}` })).json()).toMatchObject({ published: false });

    const listed = await t.app.inject({ method: 'GET', url: '/courses' });
    expect(listed.json<{ items: Array<{ id: string }> }>().items.map((course) => course.id)).toEqual([live.id]);
    expect(listed.json().items[0]).toMatchObject({ title: 'Small talk', level: 'intermediate', price: { amount: 1500, currency: 'eur' }, free: false });
    expect((await t.app.inject({ method: 'GET', url: '/courses?level=beginner' })).json().items).toEqual([]);

    const changed = await injectAs(t.app, admin, {
      method: 'PATCH',
      url: `/courses/${draft.id}`,
      payload: { published: true, price: { amount: 0, currency: 'usd' } },
    });
    expect(changed.json()).toMatchObject({ published: true, free: true });
    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/courses/${draft.id}`, payload: {} })).statusCode).toBe(400);
    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/courses/${randomUUID()}`, payload: { title: 'x' } })).statusCode).toBe(404);

    expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/courses/${live.id}` })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: `/courses/${live.id}` })).statusCode).toBe(404);
    expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/courses/${live.id}` })).statusCode).toBe(404);
    expect(
      (await injectAs(t.app, admin, { method: 'POST', url: '/courses', payload: { title: 'x', level: 'beginner', price: { amount: 100, currency: 'xyz' } } }))
        .statusCode,
    ).toBe(400);
  });

  it('pages the catalogue newest first with a cursor', async () => {
    const ids = [];
    for (let index = 0; index < 5; index += 1) ids.push((await createCourse(t.app, admin, { title: `Course ${index}` })).id);
    const first = (await t.app.inject({ method: 'GET', url: '/courses?limit=3' })).json<{ items: Array<{ id: string }>; nextCursor: string }>();
    const second = (await t.app.inject({ method: 'GET', url: `/courses?limit=3&cursor=${first.nextCursor}` })).json<{
      items: Array<{ id: string }>;
      nextCursor: null;
    }>();
    expect([...first.items, ...second.items].map((course) => course.id)).toEqual(ids.reverse());
    expect(second.nextCursor).toBeNull();
  });

  it('enrolls in a free course at once (once), and opens the checkout of a paid one', async () => {
    const student = await register(t.app);
    const free = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const paid = await createCourse(t.app, admin, { price: { amount: 2500, currency: 'usd' } });
    expect((await enroll(student, free.id)).statusCode).toBe(201);
    expect((await enroll(student, free.id)).statusCode).toBe(200);
    expect(await count(`SELECT count(*) AS n FROM enrollments WHERE user_id = $1`, [student.user.id])).toBe(1);
    const checkoutOpened = await enroll(student, paid.id);
    expect(checkoutOpened.statusCode).toBe(202);
    expect(checkoutOpened.json()).toMatchObject({ provider: 'local', url: expect.stringContaining('/pay/local/lcs_') });
    const { orderId, url } = checkoutOpened.json<{ orderId: string; url: string }>();
    expect(await order(t.app, student, orderId)).toMatchObject({ status: 'pending', amount: { amount: 2500, currency: 'usd' } });
    // asked again, the same checkout; paid, the student is enrolled
    expect((await enroll(student, paid.id)).json().orderId).toBe(orderId);
    expect((await payOnPage(url)).statusCode).toBe(200);
    await eventually(
      () => order(t.app, student, orderId),
      (o) => o.status === 'paid',
    );
    expect((await enroll(student, paid.id)).json()).toMatchObject({ courseId: paid.id, orderId });
    expect((await enroll(student, randomUUID())).statusCode).toBe(404);
  });
});

describe('checkout with the local provider', () => {
  it('pays through the hosted page; only the signed webhook marks the order paid, enrolls and tells the buyer', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin, { title: 'Job interviews', price: { amount: 4900, currency: 'usd' } });
    const started = await checkout(t.app, buyer, course.id);
    expect(started.statusCode).toBe(201);
    const { orderId, url, provider } = started.json<{ orderId: string; url: string; provider: string }>();
    expect(provider).toBe('local');
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'pending', amount: { amount: 4900, currency: 'usd' }, checkoutUrl: url });

    const page = await t.app.inject({ method: 'GET', url: pathOf(url) });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Job interviews');
    expect(page.body).toContain('$49.00');

    // the success page the provider sends the buyer to changes nothing
    expect((await t.app.inject({ method: 'GET', url: '/pay/result?status=success&session_id=x' })).statusCode).toBe(200);
    expect((await order(t.app, buyer, orderId)).status).toBe('pending');

    const paid = await payOnPage(url);
    expect(paid.statusCode).toBe(200);
    expect(paid.body).toContain('Payment complete');
    const done = await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
    expect(done.paidAt).not.toBeNull();
    expect((await enroll(buyer, course.id)).statusCode).toBe(200);
    const notices = await eventually(
      async () =>
        (await injectAs(t.app, buyer, { method: 'GET', url: '/notifications' })).json<{ items: Array<{ type: string; data: Record<string, string> }> }>().items,
      (items) => items.some((item) => item.type === 'payment_success'),
    );
    expect(notices.filter((item) => item.type === 'payment_success')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ orderId, courseId: course.id }) }),
    ]);

    // the page cannot be paid twice, and a paid course is not sold again
    expect((await payOnPage(url)).statusCode).toBe(409);
    expect(await count(`SELECT count(*) AS n FROM payment_webhook_events`)).toBe(1);
    const again = await checkout(t.app, buyer, course.id);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('already_enrolled');
  });

  it('requires an Idempotency-Key, replays it, and hands out the pending checkout again instead of a second order', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const missing = await checkout(t.app, buyer, course.id, null);
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('idempotency_key_required');

    const key = randomUUID();
    const first = await checkout(t.app, buyer, course.id, key);
    const replay = await checkout(t.app, buyer, course.id, key);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(first.json());
    const otherCourse = await createCourse(t.app, admin);
    expect((await checkout(t.app, buyer, otherCourse.id, key)).statusCode).toBe(422);

    const secondKey = await checkout(t.app, buyer, course.id);
    expect(secondKey.statusCode).toBe(201);
    expect(secondKey.json().orderId).toBe(first.json().orderId);

    const concurrent = await Promise.all(Array.from({ length: 6 }, () => checkout(t.app, buyer, otherCourse.id)));
    expect(concurrent.every((res) => [201, 409].includes(res.statusCode))).toBe(true);
    expect(new Set(concurrent.filter((res) => res.statusCode === 201).map((res) => res.json().orderId)).size).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM orders WHERE user_id = $1 AND status = 'pending'`, [buyer.user.id])).toBe(2);
  });

  it('answers 404 for a course that does not exist, is unpublished or deleted, 409 for a free one, and hides other users’ orders', async () => {
    const buyer = await register(t.app);
    const draft = await createCourse(t.app, admin, { published: false });
    const deleted = await createCourse(t.app, admin);
    await injectAs(t.app, admin, { method: 'DELETE', url: `/courses/${deleted.id}` });
    for (const courseId of [randomUUID(), draft.id, deleted.id]) expect((await checkout(t.app, buyer, courseId)).statusCode).toBe(404);
    const free = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    expect((await checkout(t.app, buyer, free.id)).json().error.code).toBe('course_free');

    const course = await createCourse(t.app, admin);
    const { orderId } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string }>();
    const stranger = await register(t.app);
    expect((await injectAs(t.app, stranger, { method: 'GET', url: `/payments/orders/${orderId}` })).statusCode).toBe(404);
    expect((await injectAs(t.app, stranger, { method: 'GET', url: '/payments/orders' })).json().items).toEqual([]);
    expect((await injectAs(t.app, buyer, { method: 'GET', url: '/payments/orders' })).json().items).toEqual([expect.objectContaining({ id: orderId })]);
    expect((await t.app.inject({ method: 'GET', url: `/payments/orders/${orderId}` })).statusCode).toBe(401);
  });

  it('expires the order when the buyer cancels on the page, and a new checkout then opens a new order', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const first = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    const cancelled = await t.app.inject({
      method: 'POST',
      url: `${pathOf(first.url)}/cancel`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: '',
    });
    expect(cancelled.statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, first.orderId),
      (o) => o.status === 'expired',
    );
    const second = (await checkout(t.app, buyer, course.id)).json<{ orderId: string }>();
    expect(second.orderId).not.toBe(first.orderId);
  });
});

describe('the webhook endpoint', () => {
  it('refuses every unauthentic delivery with 400 invalid_signature and stores nothing', async () => {
    const event = { id: `evt_${randomUUID()}`, object: 'event', type: 'checkout.session.completed', created: 1, data: { object: { order_id: randomUUID() } } };
    const { body, signature } = signLocalEvent(event);
    const stale = signLocalEvent(event, { timestamp: Math.floor(Date.now() / 1000) - 400 });
    const future = signLocalEvent(event, { timestamp: Math.floor(Date.now() / 1000) + 400 });
    const otherSecret = signLocalEvent(event, { secret: 'not-the-secret-of-this-server-000000000' });
    const cases: Array<[string, string, Record<string, string>]> = [
      ['no signature', body, {}],
      ['empty signature', body, { 'parley-signature': '' }],
      ['malformed signature', body, { 'parley-signature': 't=abc,v1=zz' }],
      ['another secret', body, { 'parley-signature': otherSecret.signature }],
      ['a body changed by one byte', body.replace('"event"', '"evenT"'), { 'parley-signature': signature }],
      ['a re-serialised body', JSON.stringify(JSON.parse(body), null, 2), { 'parley-signature': signature }],
      ['a stale timestamp', stale.body, { 'parley-signature': stale.signature }],
      ['a future timestamp', future.body, { 'parley-signature': future.signature }],
    ];
    for (const [name, payload, headers] of cases) {
      const res = await postLocalWebhook(payload, headers);
      expect({ name, status: res.statusCode, code: res.json().error?.code }).toEqual({ name, status: 400, code: 'invalid_signature' });
    }
    const longId = signLocalEvent({ ...event, id: `evt_${'x'.repeat(300)}` });
    expect((await postLocalWebhook(longId.body, { 'parley-signature': longId.signature })).statusCode).toBe(400);
    expect(await count(`SELECT count(*) AS n FROM payment_webhook_events`)).toBe(0);
    // Stripe is not configured here: its endpoint says so
    expect((await t.app.inject({ method: 'POST', url: '/webhooks/stripe', payload: body, headers: { 'content-type': 'application/json' } })).statusCode).toBe(
      404,
    );
  });

  it('applies an event delivered many times at once exactly once', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const { orderId, url } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    const sessionId = pathOf(url).split('/').pop()!;
    const { body, signature } = signLocalEvent({
      id: `evt_${sessionId}_completed`,
      object: 'event',
      type: 'checkout.session.completed',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: sessionId, order_id: orderId, payment_id: 'lpi_test', amount_total: 1999, currency: 'usd', payment_status: 'paid' } },
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => postLocalWebhook(body, { 'parley-signature': signature })));
    expect(answers.map((res) => res.statusCode)).toEqual(Array(10).fill(200));
    expect(answers.filter((res) => res.json().duplicate === false)).toHaveLength(1);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
    expect(await count(`SELECT count(*) AS n FROM payment_webhook_events`)).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM enrollments WHERE user_id = $1`, [buyer.user.id])).toBe(1);
    await eventually(
      () => count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'processed'`),
      (n) => n === 1,
    );
    expect(await count(`SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND type = 'payment_success'`, [buyer.user.id])).toBe(1);
  });

  it('keeps an event for an order it cannot find, reports it to admins, and applies it on an admin retry', async () => {
    const eventId = `evt_${randomUUID()}`;
    const { body, signature } = signLocalEvent({
      id: eventId,
      object: 'event',
      type: 'checkout.session.expired',
      created: 1,
      data: { object: { id: 'lcs_unknown', order_id: randomUUID() } },
    });
    expect((await postLocalWebhook(body, { 'parley-signature': signature })).statusCode).toBe(200);
    const failed = await eventually(
      async () =>
        (await injectAs(t.app, admin, { method: 'GET', url: '/admin/webhooks' })).json<{
          items: Array<{ id: string; eventId: string; lastError: string; attempts: number }>;
        }>().items,
      (items) => items.length === 1,
      20_000,
    );
    expect(failed[0]).toMatchObject({ eventId, attempts: 3, lastError: expect.stringContaining('No local order matches') });
    const student = await register(t.app);
    expect((await injectAs(t.app, student, { method: 'GET', url: '/admin/webhooks' })).statusCode).toBe(403);
    const retried = await injectAs(t.app, admin, { method: 'POST', url: `/admin/webhooks/${failed[0]!.id}/retry` });
    expect(retried.statusCode).toBe(202);
    expect(retried.json()).toMatchObject({ status: 'received', attempts: 0 });
    expect((await injectAs(t.app, admin, { method: 'POST', url: `/admin/webhooks/${randomUUID()}/retry` })).statusCode).toBe(404);
  });
});

describe('refunds', () => {
  it('refunds partly, then the rest; the provider’s events finalise the order and a full refund revokes the course', async () => {
    const buyer = await register(t.app);
    const { courseId, orderId } = await paidCourse(buyer, 3000);
    const refund = (body: Record<string, unknown>, key = randomUUID()) =>
      injectAs(t.app, admin, { method: 'POST', url: `/admin/orders/${orderId}/refund`, headers: { 'idempotency-key': key }, payload: body });

    const tooMuch = await refund({ amount: 3001 });
    expect(tooMuch.statusCode).toBe(422);
    expect(tooMuch.json().error).toMatchObject({ code: 'refund_exceeds_payment', details: { refundableMinor: 3000 } });

    const key = randomUUID();
    const partial = await refund({ amount: 1000 }, key);
    expect(partial.statusCode).toBe(202);
    expect(partial.json().refund).toMatchObject({ amount: { amount: 1000, currency: 'usd' }, status: 'submitted' });
    expect((await refund({ amount: 1000 }, key)).headers['idempotent-replayed']).toBe('true');
    const partly = await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'partially_refunded',
    );
    expect(partly.refunded.amount).toBe(1000);
    expect((await enroll(buyer, courseId)).statusCode).toBe(200);

    expect((await refund({})).statusCode).toBe(202);
    const whole = await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'refunded',
    );
    expect(whole.refunded.amount).toBe(3000);
    // the course is no longer theirs: enrolling opens a new checkout
    expect((await enroll(buyer, courseId)).statusCode).toBe(202);
    expect((await refund({})).json().error.code).toBe('order_not_refundable');

    const listed = await injectAs(t.app, admin, { method: 'GET', url: `/admin/orders?status=refunded&userId=${buyer.user.id}` });
    expect(listed.json()).toMatchObject({
      items: [expect.objectContaining({ id: orderId })],
      totals: [{ currency: 'usd', orders: 1, amountMinor: 3000, refundedMinor: 3000 }],
    });
    const notices = await eventually(
      () => count(`SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND title = 'Refund issued'`, [buyer.user.id]),
      (n) => n === 2,
    );
    expect(notices).toBe(2);
  });

  it('refuses to refund an unpaid order or one that does not exist', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const { orderId } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string }>();
    expect((await injectAs(t.app, admin, { method: 'POST', url: `/admin/orders/${orderId}/refund`, payload: {} })).json().error.code).toBe(
      'order_not_refundable',
    );
    expect((await injectAs(t.app, admin, { method: 'POST', url: `/admin/orders/${randomUUID()}/refund`, payload: {} })).statusCode).toBe(404);
    expect((await injectAs(t.app, buyer, { method: 'POST', url: `/admin/orders/${orderId}/refund`, payload: {} })).statusCode).toBe(403);
  });

  it('ends in the provider’s final state when the refund event arrives before the payment’s', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin, { price: { amount: 2000, currency: 'usd' } });
    const { orderId, url } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    const sessionId = pathOf(url).split('/').pop()!;
    const now = Math.floor(Date.now() / 1000);
    const refunded = signLocalEvent({
      id: `evt_${randomUUID()}`,
      object: 'event',
      type: 'charge.refunded',
      created: now,
      data: {
        object: {
          object: 'charge',
          order_id: orderId,
          payment_id: 'lpi_x',
          amount: 2000,
          amount_refunded: 2000,
          currency: 'usd',
          refund: { id: 'lre_x', amount: 2000 },
        },
      },
    });
    const completed = signLocalEvent({
      id: `evt_${sessionId}_completed`,
      object: 'event',
      type: 'checkout.session.completed',
      created: now,
      data: { object: { id: sessionId, order_id: orderId, payment_id: 'lpi_x', amount_total: 2000, currency: 'usd', payment_status: 'paid' } },
    });
    expect((await postLocalWebhook(refunded.body, { 'parley-signature': refunded.signature })).statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'refunded',
    );
    expect((await postLocalWebhook(completed.body, { 'parley-signature': completed.signature })).statusCode).toBe(200);
    await eventually(
      () => count(`SELECT count(*) AS n FROM payment_webhook_events WHERE status = 'processed'`),
      (n) => n === 2,
    );
    expect(await order(t.app, buyer, orderId)).toMatchObject({ status: 'refunded', refunded: { amount: 2000 } });
    expect(await count(`SELECT count(*) AS n FROM enrollments WHERE user_id = $1 AND revoked_at IS NULL`, [buyer.user.id])).toBe(0);
  });
});

describe('donations', () => {
  const donate = (caller: Pair, body: Record<string, unknown>, key: string | null = randomUUID()) =>
    injectAs(t.app, caller, { method: 'POST', url: '/donations/create', headers: key === null ? {} : { 'idempotency-key': key }, payload: body });

  it('creates a sponsorship, pays it on the page, and reports it completed only to its donor', async () => {
    const donor = await register(t.app);
    expect((await donate(donor, { sponsorType: 'language', targetIdentifier: 'es', amountUsd: 5 }, null)).json().error.code).toBe('idempotency_key_required');
    const created = await donate(donor, { sponsorType: 'language', targetIdentifier: 'es', amountUsd: 12.5, message: 'Gracias', anonymous: true });
    expect(created.statusCode).toBe(201);
    const donation = created.json<{ id: string; orderId: string; url: string }>();
    expect(created.json()).toMatchObject({
      status: 'pending',
      provider: 'local',
      amount: { amount: 1250, currency: 'usd' },
      anonymous: true,
      message: 'Gracias',
    });
    expect(donation.orderId).toMatch(/^lcs_/);
    expect(created.json()).not.toHaveProperty('approveUrl');

    const status = () => injectAs(t.app, donor, { method: 'GET', url: `/donations/status/${donation.id}` });
    expect((await status()).json().status).toBe('pending');
    // confirming is a no-op for a provider that confirms by webhook
    expect((await injectAs(t.app, donor, { method: 'POST', url: '/donations/confirm', payload: { id: donation.id } })).json().status).toBe('pending');
    expect((await payOnPage(donation.url)).statusCode).toBe(200);
    const completed = await eventually(
      async () => (await status()).json<{ status: string; completedAt: string | null }>(),
      (body) => body.status === 'completed',
    );
    expect(completed.completedAt).not.toBeNull();

    const stranger = await register(t.app);
    expect((await injectAs(t.app, stranger, { method: 'GET', url: `/donations/status/${donation.id}` })).statusCode).toBe(404);
    expect((await injectAs(t.app, stranger, { method: 'POST', url: '/donations/confirm', payload: { id: donation.id } })).statusCode).toBe(404);
  });

  it('keeps the Idempotency-Key rules: a replay answers the first donation, another body is 422, two at once make one', async () => {
    const donor = await register(t.app);
    const body = { sponsorType: 'language', targetIdentifier: 'fr', amountUsd: 3 };
    const key = randomUUID();
    const [first, second] = await Promise.all([donate(donor, body, key), donate(donor, body, key)]);
    const statuses = [first.statusCode, second.statusCode].sort();
    expect(statuses[0]).toBe(201);
    expect([201, 409]).toContain(statuses[1]);
    const replay = await donate(donor, body, key);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().id).toBe((first.statusCode === 201 && !first.headers['idempotent-replayed'] ? first : second).json().id);
    expect((await donate(donor, { ...body, amountUsd: 4 }, key)).json().error.code).toBe('idempotency_key_reused');
    expect(await count(`SELECT count(*) AS n FROM sponsorships`)).toBe(1);
  });

  it('takes amounts in the currency’s own decimals and refuses what cannot be charged', async () => {
    const donor = await register(t.app);
    expect((await donate(donor, { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 500, currency: 'JPY' })).json().amount).toEqual({
      amount: 500,
      currency: 'jpy',
    });
    for (const body of [
      { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 1.005 },
      { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 10.5, currency: 'JPY' },
      { sponsorType: 'issue', targetIdentifier: '42', amountUsd: -1 },
      { sponsorType: 'Bad Type', targetIdentifier: '42', amountUsd: 1 },
      { sponsorType: 'issue', targetIdentifier: '42', amountUsd: 1, provider: 'stripe' },
    ]) {
      const res = await donate(donor, body);
      expect([400].includes(res.statusCode), `${JSON.stringify(body)} -> ${res.statusCode} ${res.body}`).toBe(true);
    }
    expect(await count(`SELECT count(*) AS n FROM sponsorships`)).toBe(1);
  });
});
