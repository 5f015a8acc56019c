import { z } from 'zod';
import { PAYMENT_PROVIDERS } from '../../infra/payments/provider.js';
import { isoDateTime } from '../../shared/http-schemas.js';
import { CURRENCIES, minorUnitDigits } from '../../shared/money.js';
import { pageQuerySchema } from '../../shared/pagination.js';
import { moneySchema } from '../lms/index.js';
import { ORDER_KINDS, ORDER_STATUSES, REFUND_STATUSES, SPONSORSHIP_STATUSES, WEBHOOK_STATUSES } from './entities.js';

export const checkoutBodySchema = z.strictObject({ courseId: z.uuid() });

export const checkoutSchema = z
  .object({
    orderId: z.uuid().describe("Parley's order: follow it with GET /payments/orders/{id}"),
    url: z.url().describe("The provider's page where the buyer pays"),
    provider: z.enum(PAYMENT_PROVIDERS),
  })
  .meta({ id: 'Checkout' });

export const orderSchema = z
  .object({
    id: z.uuid(),
    receiptId: z.string().describe('What the buyer quotes to support'),
    userId: z.uuid(),
    kind: z.enum(ORDER_KINDS),
    courseId: z.uuid().nullable(),
    description: z.string(),
    provider: z.string(),
    amount: moneySchema,
    refunded: moneySchema,
    status: z.enum(ORDER_STATUSES).describe('Changed only by verified provider events, never by the success page'),
    checkoutUrl: z.string().nullable().describe('Where to pay while the order is pending'),
    paidAt: z.date().nullable(),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'Order' });

/** Document 000's amounts are in major units (dollars): at most the currency's decimals, turned into minor units. */
const majorAmount = z.number().positive().max(1_000_000).describe('In major units (dollars): 5 or 12.5 for USD, 500 for JPY');

export const createDonationBodySchema = z
  .strictObject({
    sponsorType: z
      .string()
      .trim()
      .regex(/^[a-z][a-z0-9_-]{0,39}$/, 'lower-case letters, digits, _ and -, starting with a letter')
      .describe('What is sponsored, e.g. language, analysis, issue'),
    targetIdentifier: z.string().trim().min(1).max(200).describe('Which one, e.g. a language code or an issue number'),
    amountUsd: majorAmount,
    currency: z
      .string()
      .regex(/^[A-Za-z]{3}$/)
      .refine((code) => CURRENCIES.has(code.toUpperCase()), 'not an ISO 4217 currency')
      .transform((code) => code.toLowerCase())
      .default('usd'),
    message: z.string().trim().max(500).optional(),
    anonymous: z.boolean().default(false).describe('Shown as anonymous wherever donors are listed; the donation still belongs to your account'),
    provider: z.enum(PAYMENT_PROVIDERS).optional().describe('Default: the server’s PAYMENT_PROVIDER'),
  })
  .transform((body, ctx) => {
    const digits = minorUnitDigits(body.currency);
    const amountMinor = Math.round(body.amountUsd * 10 ** digits);
    if (Math.abs(amountMinor - body.amountUsd * 10 ** digits) > 1e-6) {
      ctx.addIssue({ code: 'custom', path: ['amountUsd'], message: `at most ${digits} decimals in ${body.currency.toUpperCase()}` });
      return z.NEVER;
    }
    // a positive amount can still be less than the smallest unit (1e-7 yen): no provider takes nothing
    if (amountMinor < 1) {
      ctx.addIssue({ code: 'custom', path: ['amountUsd'], message: `less than the smallest amount of ${body.currency.toUpperCase()}` });
      return z.NEVER;
    }
    return { ...body, amountMinor };
  });

export const donationSchema = z
  .object({
    id: z.uuid(),
    status: z.enum(SPONSORSHIP_STATUSES),
    provider: z.string(),
    orderId: z.string().nullable().describe("The provider's order: the PayPal order id (for PayPal's JS SDK buttons), the Stripe Checkout Session id"),
    sponsorType: z.string(),
    targetIdentifier: z.string(),
    amount: moneySchema,
    message: z.string().nullable(),
    anonymous: z.boolean(),
    createdAt: z.date(),
    completedAt: z.date().nullable(),
  })
  .meta({ id: 'Donation' });

export const createdDonationSchema = donationSchema
  .extend({
    url: z.url().describe("The provider's page where the donor pays"),
    approveUrl: z.url().optional().describe('PayPal only: the same page, under the name PayPal uses'),
  })
  .meta({ id: 'CreatedDonation' });

export const confirmDonationBodySchema = z.strictObject({ id: z.uuid() });

export const ordersAdminQuerySchema = pageQuerySchema.extend({
  status: z.enum(ORDER_STATUSES).optional(),
  kind: z.enum(ORDER_KINDS).optional(),
  userId: z.uuid().optional(),
  from: isoDateTime.optional().describe('Created at or after'),
  to: isoDateTime.optional().describe('Created before'),
});

export const ordersAdminPageSchema = z.object({
  items: z.array(orderSchema),
  nextCursor: z.string().nullable(),
  totals: z
    .array(z.object({ currency: z.string(), orders: z.number().int(), amountMinor: z.number().int(), refundedMinor: z.number().int() }))
    .describe('Over every order the filter matches (all pages), per currency'),
});

export const refundBodySchema = z.strictObject({
  amount: z.number().int().positive().optional().describe('Minor units; default: all that is left'),
});

export const refundSchema = z
  .object({
    refund: z.object({
      id: z.uuid(),
      amount: moneySchema,
      status: z.enum(REFUND_STATUSES).describe('`submitted`: the provider took it; its event then refunds the order'),
      providerRefundId: z.string().nullable(),
      createdAt: z.date(),
    }),
    order: orderSchema,
  })
  .meta({ id: 'RefundRequest' });

export const webhookEventSchema = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    eventId: z.string(),
    type: z.string(),
    status: z.enum(WEBHOOK_STATUSES),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    orderId: z.uuid().nullable(),
    receivedAt: z.date(),
    processedAt: z.date().nullable(),
  })
  .meta({ id: 'WebhookEvent' });

export const webhookEventsQuerySchema = pageQuerySchema.extend({ status: z.enum(WEBHOOK_STATUSES).default('failed') });

export const webhookAcceptedSchema = z.object({ received: z.literal(true), duplicate: z.boolean() });
