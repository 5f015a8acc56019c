import type { PaymentEffect } from '../../infra/payments/provider.js';
import type { OrderStatus, SponsorshipStatus } from './entities.js';
import type { OrderRecord } from './repository.js';

type OrderFacts = Pick<OrderRecord, 'amountMinor' | 'refundedMinor' | 'paidAt' | 'expiredAt' | 'failedAt' | 'disputedAt'>;

/**
 * The status the facts add up to, whatever order the events came in: a dispute outranks
 * everything, money taken outranks an expiry or a failure (the provider's final word is that
 * it was paid), and refunds say how much of it went back.
 */
export function deriveStatus(order: OrderFacts): OrderStatus {
  if (order.disputedAt) return 'disputed';
  if (order.paidAt || order.refundedMinor > 0) {
    if (order.refundedMinor >= order.amountMinor) return 'refunded';
    return order.refundedMinor > 0 ? 'partially_refunded' : 'paid';
  }
  if (order.failedAt) return 'failed';
  if (order.expiredAt) return 'expired';
  return 'pending';
}

/** Whether the buyer should have the course now: paid for and not wholly refunded. */
export function grantsAccess(order: OrderFacts): boolean {
  return Boolean(order.paidAt || order.refundedMinor > 0) && order.refundedMinor < order.amountMinor;
}

export function sponsorshipStatus(status: OrderStatus): SponsorshipStatus {
  switch (status) {
    case 'paid':
    case 'partially_refunded':
    case 'disputed':
      return 'completed';
    case 'refunded':
      return 'refunded';
    case 'failed':
      return 'failed';
    case 'expired':
      return 'expired';
    case 'pending':
      return 'pending';
  }
}

/**
 * The order with one effect's facts added. Each fact is set once (the first time wins) or
 * only grows (the refunded amount), so applying an effect again changes nothing.
 */
export function withEffect(order: OrderRecord, effect: PaymentEffect, refundedBySucceededRows: number, now: Date): OrderRecord {
  const next = { ...order };
  switch (effect.kind) {
    case 'paid':
      next.paidAt ??= now;
      next.providerPaymentId ??= effect.providerPaymentId ?? null;
      break;
    case 'expired':
      next.expiredAt ??= now;
      break;
    case 'failed':
      if (!next.failedAt) {
        next.failedAt = now;
        next.failureReason = effect.reason?.slice(0, 200) ?? 'declined';
      }
      break;
    case 'refunded':
      next.refundedMinor = Math.min(order.amountMinor, Math.max(order.refundedMinor, effect.totalRefundedMinor ?? 0, refundedBySucceededRows));
      next.providerPaymentId ??= effect.ref.providerPaymentId ?? null;
      break;
    case 'disputed':
      next.disputedAt ??= now;
      break;
    case 'approved':
    case 'ignored':
      break;
  }
  next.status = deriveStatus(next);
  return next;
}
