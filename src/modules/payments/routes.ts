import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { created, errorResponses, idParamsSchema } from '../../shared/responses.js';
import {
  checkoutBodySchema,
  checkoutSchema,
  confirmDonationBodySchema,
  createDonationBodySchema,
  createdDonationSchema,
  donationSchema,
  orderSchema,
  ordersAdminPageSchema,
  ordersAdminQuerySchema,
  refundBodySchema,
  refundSchema,
  webhookEventSchema,
  webhookEventsQuerySchema,
} from './schemas.js';
import type { PaymentsService } from './service.js';

export const paymentsRoutes: FastifyPluginAsyncZod<{ payments: PaymentsService }> = async (app, { payments }) => {
  const tags = ['payments'];
  const signedIn = { auth: 'user' } as const;

  app.post(
    '/payments/create-checkout-session',
    {
      config: { ...signedIn, idempotent: 'required' },
      schema: {
        tags,
        summary: 'Buy a course: open a checkout',
        description:
          'Writes a pending order, then opens the checkout of the configured provider and answers where to pay. The order becomes `paid` (and the buyer enrolled) only when the provider’s signed webhook says so, never by the success page. A pending checkout of the same course is answered again instead of a second one. Requires `Idempotency-Key`.',
        body: checkoutBodySchema,
        response: { 201: checkoutSchema, ...errorResponses(400, 401, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { userId, email } = caller(request);
      return created(reply, await payments.createCheckout({ userId, email }, request.body.courseId));
    },
  );

  app.get(
    '/payments/orders',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My orders, newest first',
        querystring: pageQuerySchema,
        response: { 200: pageSchema(orderSchema), ...errorResponses(400, 401) },
      },
    },
    async (request) => payments.listMyOrders(caller(request).userId, request.query.limit, request.query.cursor),
  );

  app.get(
    '/payments/orders/:id',
    {
      config: signedIn,
      schema: { tags, summary: 'One of my orders', params: idParamsSchema, response: { 200: orderSchema, ...errorResponses(400, 401, 404) } },
    },
    async (request) => payments.getMyOrder(caller(request).userId, request.params.id),
  );

  app.post(
    '/donations/create',
    {
      config: { ...signedIn, idempotent: 'required' },
      schema: {
        tags: ['donations'],
        summary: 'Start a donation',
        description:
          'Records the sponsorship (document 000) and its order, opens the provider’s page and answers where to pay. `orderId` is the provider’s order (PayPal order id for PayPal’s JS SDK buttons). Requires `Idempotency-Key`.',
        body: createDonationBodySchema,
        response: { 201: createdDonationSchema, ...errorResponses(400, 401, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { userId, email } = caller(request);
      const { amountMinor, currency, sponsorType, targetIdentifier, message, anonymous, provider } = request.body;
      const donation = await payments.createDonation({ userId, email }, { sponsorType, targetIdentifier, amountMinor, currency, message, anonymous, provider });
      return created(reply, { ...donation, ...(donation.provider === 'paypal' ? { approveUrl: donation.url } : {}) });
    },
  );

  app.post(
    '/donations/confirm',
    {
      config: signedIn,
      schema: {
        tags: ['donations'],
        summary: 'Confirm a donation after the donor approved it',
        description: 'PayPal: captures the approved payment (safe to call again). Stripe and local confirm by webhook: the status is answered as it is.',
        body: confirmDonationBodySchema,
        response: { 200: donationSchema, ...errorResponses(400, 401, 404, 409, 503) },
      },
    },
    async (request) => payments.confirmDonation(caller(request).userId, request.body.id),
  );

  app.get(
    '/donations/status/:id',
    {
      config: signedIn,
      schema: {
        tags: ['donations'],
        summary: 'One of my donations',
        params: idParamsSchema,
        response: { 200: donationSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => payments.donationStatus(caller(request).userId, request.params.id),
  );

  const adminOnly = { auth: 'admin' } as const;
  const adminTags = ['admin'];

  app.get(
    '/admin/orders',
    {
      config: adminOnly,
      schema: {
        tags: adminTags,
        summary: 'Orders, newest first, with totals',
        querystring: ordersAdminQuerySchema,
        response: { 200: ordersAdminPageSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return payments.listOrders(filter, limit, cursor);
    },
  );

  app.post(
    '/admin/orders/:id/refund',
    {
      config: { ...adminOnly, idempotent: true },
      schema: {
        tags: adminTags,
        summary: 'Refund an order, fully or partly',
        description:
          'Asks the provider for the refund (202); the provider’s refund event then updates the order (refunded amount, status, and the enrollment revoked on a full refund).',
        params: idParamsSchema,
        body: refundBodySchema,
        response: { 202: refundSchema, ...errorResponses(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => reply.status(202).send(await payments.refund(caller(request).userId, request.params.id, request.body.amount)),
  );

  app.get(
    '/admin/webhooks',
    {
      config: adminOnly,
      schema: {
        tags: adminTags,
        summary: 'Provider events of the inbox, by status (default: failed, with their error)',
        querystring: webhookEventsQuerySchema,
        response: { 200: pageSchema(webhookEventSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => payments.listWebhookEvents(request.query.status, request.query.limit, request.query.cursor),
  );

  app.post(
    '/admin/webhooks/:id/retry',
    {
      config: adminOnly,
      schema: {
        tags: adminTags,
        summary: 'Apply a failed provider event again',
        params: idParamsSchema,
        response: { 202: webhookEventSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => reply.status(202).send(await payments.retryWebhookEvent(request.params.id)),
  );
};
