import { randomBytes } from 'node:crypto';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { Logger } from '../../infra/logger.js';
import { PaymentProviderError, type PaymentProvider, type PaymentProviderName } from '../../infra/payments/provider.js';
import { isUniqueViolation } from '../../infra/sql.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { LmsService, Money } from '../lms/index.js';
import type { OrderKind, OrderStatus, SponsorshipStatus, WebhookStatus } from './entities.js';
import type { WebhookInbox } from './inbox.js';
import type { OrderFilter, OrderRecord, OrderTotals, PaymentsRepository, RefundRecord, SponsorshipRecord, WebhookEventRecord } from './repository.js';

/** A pending checkout is handed out again for this long; Stripe's own sessions last 24 h. */
const CHECKOUT_REUSE_MS = 23 * 3600_000;
/** A pending order still without its provider session after this long was abandoned by a crash. */
const UNOPENED_AFTER_MS = 60_000;

export interface OrderView {
  id: string;
  receiptId: string;
  userId: string;
  kind: OrderKind;
  courseId: string | null;
  description: string;
  provider: string;
  amount: Money;
  refunded: Money;
  status: OrderStatus;
  /** Where to pay while the order is pending. */
  checkoutUrl: string | null;
  paidAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface CheckoutView {
  orderId: string;
  url: string;
  provider: PaymentProviderName;
}

export interface DonationInput {
  sponsorType: string;
  targetIdentifier: string;
  amountMinor: number;
  currency: string;
  message?: string | undefined;
  anonymous?: boolean | undefined;
  provider?: PaymentProviderName | undefined;
}

export interface DonationView {
  id: string;
  status: SponsorshipStatus;
  provider: string;
  /** The provider's order: the PayPal order id (for PayPal's JS SDK buttons), the Stripe Checkout Session id. */
  orderId: string | null;
  sponsorType: string;
  targetIdentifier: string;
  amount: Money;
  message: string | null;
  anonymous: boolean;
  createdAt: Date;
  completedAt: Date | null;
}

export interface RefundView {
  id: string;
  amount: Money;
  status: RefundRecord['status'];
  providerRefundId: string | null;
  createdAt: Date;
}

export interface WebhookEventView {
  id: string;
  provider: string;
  eventId: string;
  type: string;
  status: WebhookStatus;
  attempts: number;
  lastError: string | null;
  orderId: string | null;
  receivedAt: Date;
  processedAt: Date | null;
}

export interface PaymentsDependencies {
  repository: PaymentsRepository;
  providers: ReadonlyMap<PaymentProviderName, PaymentProvider>;
  /** Who takes new checkouts and donations; null: payments are off (production without a provider). */
  activeProvider: PaymentProviderName | null;
  inbox: WebhookInbox;
  lms: LmsService;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

export const orderView = (order: OrderRecord): OrderView => ({
  id: order.id,
  receiptId: order.receiptId,
  userId: order.userId,
  kind: order.kind,
  courseId: order.courseId,
  description: order.description,
  provider: order.provider,
  amount: { amount: order.amountMinor, currency: order.currency },
  refunded: { amount: order.refundedMinor, currency: order.currency },
  status: order.status,
  checkoutUrl: order.status === 'pending' ? order.checkoutUrl : null,
  paidAt: order.paidAt,
  createdAt: order.createdAt,
  updatedAt: order.updatedAt,
});

const donationView = (sponsorship: SponsorshipRecord): DonationView => ({
  id: sponsorship.id,
  status: sponsorship.status,
  provider: sponsorship.paymentProvider,
  orderId: sponsorship.paymentProviderOrderId,
  sponsorType: sponsorship.sponsorType,
  targetIdentifier: sponsorship.targetIdentifier,
  amount: { amount: sponsorship.amountMinor, currency: sponsorship.currency },
  message: sponsorship.message,
  anonymous: sponsorship.anonymous,
  createdAt: sponsorship.createdAt,
  completedAt: sponsorship.completedAt,
});

const refundView = (refund: RefundRecord, currency: string): RefundView => ({
  id: refund.id,
  amount: { amount: refund.amountMinor, currency },
  status: refund.status,
  providerRefundId: refund.providerRefundId,
  createdAt: refund.createdAt,
});

const eventView = (event: WebhookEventRecord): WebhookEventView => ({
  id: event.id,
  provider: event.provider,
  eventId: event.eventId,
  type: event.type,
  status: event.status,
  attempts: event.attempts,
  lastError: event.lastError,
  orderId: event.orderId,
  receivedAt: event.receivedAt,
  processedAt: event.processedAt,
});

/** Maps a provider's failure to what the caller is told; nothing secret is in the message. */
function providerFailure(error: unknown): unknown {
  if (!(error instanceof PaymentProviderError)) return error;
  if (error.kind === 'unavailable') {
    return new AppError('payment_provider_unavailable', `The payment provider (${error.provider}) could not be reached; retry later`);
  }
  return new AppError(
    'payment_rejected',
    `The payment provider (${error.provider}) refused the request`,
    error.providerCode ? { providerCode: error.providerCode } : undefined,
  );
}

/** Course checkouts, donations, orders and refunds; provider events reach orders through the inbox. */
export class PaymentsService {
  constructor(private readonly dependencies: PaymentsDependencies) {}

  get activeProvider(): PaymentProviderName | null {
    return this.dependencies.activeProvider;
  }

  private provider(name: PaymentProviderName | null | undefined): PaymentProvider {
    const chosen = name ?? this.dependencies.activeProvider;
    if (!chosen) throw new AppError('payments_unavailable', 'Payments are not configured on this server');
    const provider = this.dependencies.providers.get(chosen);
    if (!provider) throw new AppError('provider_not_configured', `The ${chosen} provider is not configured on this server`);
    return provider;
  }

  private newOrder(
    userId: string,
    kind: OrderKind,
    provider: PaymentProviderName,
    item: { courseId: string | null; description: string; amountMinor: number; currency: string },
  ) {
    const now = this.dependencies.clock.now();
    const day = now.toISOString().slice(0, 10).replaceAll('-', '');
    const order: OrderRecord = {
      id: this.dependencies.ids.uuid(),
      receiptId: `PR-${day}-${randomBytes(5).toString('hex').toUpperCase()}`,
      userId,
      kind,
      ...item,
      provider,
      providerSessionId: null,
      providerPaymentId: null,
      checkoutUrl: null,
      status: 'pending',
      refundedMinor: 0,
      paidAt: null,
      expiredAt: null,
      failedAt: null,
      failureReason: null,
      disputedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    return order;
  }

  /** Opens the provider's checkout for a pending order written before; a failure fails the order. */
  private async open(provider: PaymentProvider, order: OrderRecord, customerEmail: string | undefined): Promise<CheckoutView & { providerSessionId: string }> {
    try {
      const session = await provider.createCheckout({
        orderId: order.id,
        userId: order.userId,
        ...(order.courseId ? { courseId: order.courseId } : {}),
        description: order.description,
        amountMinor: order.amountMinor,
        currency: order.currency,
        ...(customerEmail ? { customerEmail } : {}),
      });
      await this.dependencies.repository.setCheckout(order.id, session.providerSessionId, session.url, this.dependencies.clock.now());
      return { orderId: order.id, url: session.url, provider: provider.name, providerSessionId: session.providerSessionId };
    } catch (error) {
      const reason = error instanceof PaymentProviderError ? `checkout not opened: ${error.kind}` : 'checkout not opened';
      await this.dependencies.repository.failUnopenedOrder(order.id, reason, this.dependencies.clock.now()).catch((failure: unknown) => {
        this.dependencies.logger.error({ err: failure, orderId: order.id }, 'could not mark an unopened order failed');
      });
      throw providerFailure(error);
    }
  }

  // --- course checkout

  /**
   * The checkout of a paid course: the order is written pending first, then the provider's
   * session opened and saved. A pending checkout of the same course is handed out again
   * rather than a second one opened.
   */
  async createCheckout(buyer: { userId: string; email: string }, courseId: string): Promise<CheckoutView> {
    const { lms, repository, clock } = this.dependencies;
    const provider = this.provider(null);
    const course = await lms.courseForSale(courseId);
    if (!course) throw new NotFoundError('Course');
    if (course.priceMinor === 0) throw new AppError('course_free', 'This course is free: enroll with POST /courses/{id}/enroll');
    if (await lms.isEnrolled(buyer.userId, courseId)) throw new AppError('already_enrolled', 'You are already enrolled in this course');

    const pending = await repository.pendingCourseOrder(buyer.userId, courseId);
    if (pending) {
      const age = clock.now().getTime() - pending.createdAt.getTime();
      const sameTerms = pending.provider === provider.name && pending.amountMinor === course.priceMinor && pending.currency === course.currency;
      if (pending.checkoutUrl && sameTerms && age < CHECKOUT_REUSE_MS) return { orderId: pending.id, url: pending.checkoutUrl, provider: provider.name };
      if (!pending.providerSessionId && age < UNOPENED_AFTER_MS)
        throw new AppError('checkout_in_progress', 'A checkout of this course is being opened; retry in a moment', undefined, { 'retry-after': '1' });
      await repository.expirePendingOrder(pending.id, clock.now());
    }

    const order = this.newOrder(buyer.userId, 'course', provider.name, {
      courseId,
      description: course.title.slice(0, 200),
      amountMinor: course.priceMinor,
      currency: course.currency,
    });
    try {
      await repository.insertOrder(order);
    } catch (error) {
      if (!isUniqueViolation(error, 'orders_one_pending_checkout_idx')) throw error;
      // a concurrent request of the same buyer won: its checkout, once it has one
      const winner = await repository.pendingCourseOrder(buyer.userId, courseId);
      if (winner?.checkoutUrl) return { orderId: winner.id, url: winner.checkoutUrl, provider: provider.name };
      throw new AppError('checkout_in_progress', 'A checkout of this course is being opened; retry in a moment', undefined, { 'retry-after': '1' });
    }
    const { providerSessionId: _sessionId, ...checkout } = await this.open(provider, order, buyer.email);
    return checkout;
  }

  async listMyOrders(userId: string, limit: number, cursor?: string) {
    return toPage(await this.dependencies.repository.listOrders({ userId }, limit, decodeCursor(cursor)), limit, orderView);
  }

  /** The caller's own order; another user's is not found. */
  async getMyOrder(userId: string, orderId: string): Promise<OrderView> {
    const order = await this.dependencies.repository.findOrder(orderId);
    if (!order || order.userId !== userId) throw new NotFoundError('Order');
    return orderView(order);
  }

  // --- donations

  async createDonation(donor: { userId: string; email: string }, input: DonationInput): Promise<DonationView & { url: string }> {
    const { repository, ids, clock } = this.dependencies;
    const provider = this.provider(input.provider);
    const order = this.newOrder(donor.userId, 'donation', provider.name, {
      courseId: null,
      description: `Donation to ${input.sponsorType} ${input.targetIdentifier}`.slice(0, 200),
      amountMinor: input.amountMinor,
      currency: input.currency,
    });
    const sponsorship: SponsorshipRecord = {
      id: ids.uuid(),
      userId: donor.userId,
      orderId: order.id,
      sponsorType: input.sponsorType,
      targetIdentifier: input.targetIdentifier,
      amountMinor: input.amountMinor,
      currency: input.currency,
      paymentProvider: provider.name,
      paymentProviderOrderId: null,
      paymentProviderCaptureId: null,
      message: input.message ?? null,
      anonymous: input.anonymous ?? false,
      status: 'pending',
      createdAt: clock.now(),
      completedAt: null,
    };
    await repository.transaction(async (manager) => {
      await repository.insertOrder(order, manager);
      await repository.insertSponsorship(manager, sponsorship);
    });
    const checkout = await this.open(provider, order, donor.email);
    return { ...donationView({ ...sponsorship, paymentProviderOrderId: checkout.providerSessionId }), url: checkout.url };
  }

  private async myDonation(userId: string, id: string): Promise<SponsorshipRecord> {
    const sponsorship = await this.dependencies.repository.findSponsorship(id);
    if (!sponsorship || sponsorship.userId !== userId) throw new NotFoundError('Donation');
    return sponsorship;
  }

  async donationStatus(userId: string, id: string): Promise<DonationView> {
    return donationView(await this.myDonation(userId, id));
  }

  /**
   * After the donor approved a PayPal payment: captures it (idempotent at PayPal) and records
   * the capture. Providers that confirm by webhook only (Stripe, local) answer the status as it is.
   */
  async confirmDonation(userId: string, id: string): Promise<DonationView> {
    const sponsorship = await this.myDonation(userId, id);
    const provider = this.dependencies.providers.get(sponsorship.paymentProvider as PaymentProviderName);
    if (sponsorship.status !== 'pending' || !provider?.capture) return donationView(sponsorship);
    if (!sponsorship.paymentProviderOrderId) throw new AppError('donation_not_confirmable', 'This donation has no payment to confirm');
    const capture = await provider.capture(sponsorship.paymentProviderOrderId, sponsorship.orderId).catch((error: unknown) => {
      if (error instanceof PaymentProviderError && error.kind === 'rejected') {
        throw new AppError(
          'donation_not_confirmable',
          'The payment is not approved yet: approve it on the provider page first',
          error.providerCode ? { providerCode: error.providerCode } : undefined,
        );
      }
      throw providerFailure(error);
    });
    if (capture.status !== 'pending') {
      await this.dependencies.inbox.applyNow(
        sponsorship.orderId,
        capture.status === 'paid'
          ? { kind: 'paid', ref: { orderId: sponsorship.orderId }, providerPaymentId: capture.providerPaymentId }
          : { kind: 'failed', ref: { orderId: sponsorship.orderId }, reason: 'capture declined' },
      );
    }
    return donationView(await this.myDonation(userId, id));
  }

  // --- admin

  async listOrders(filter: OrderFilter, limit: number, cursor?: string): Promise<{ items: OrderView[]; nextCursor: string | null; totals: OrderTotals[] }> {
    const [rows, totals] = await Promise.all([
      this.dependencies.repository.listOrders(filter, limit, decodeCursor(cursor)),
      this.dependencies.repository.orderTotals(filter),
    ]);
    return { ...toPage(rows, limit, orderView), totals };
  }

  /**
   * Asks the provider to refund all that is left, or `amountMinor` of it. The provider's refund
   * event finalises the order (status, refunded amount, enrollment). A request the provider
   * could not be reached for stays `requested` and is sent again, under the same idempotency
   * key, by the next request of the same amount, so a retry never refunds twice.
   */
  async refund(adminId: string, orderId: string, amountMinor?: number): Promise<{ refund: RefundView; order: OrderView }> {
    const { repository, clock, ids } = this.dependencies;
    const { refund, order } = await repository.transaction(async (manager) => {
      const locked = await repository.lockOrder(manager, orderId);
      if (!locked) throw new NotFoundError('Order');
      if (!locked.providerPaymentId || !['paid', 'partially_refunded', 'disputed'].includes(locked.status)) {
        throw new AppError('order_not_refundable', `An order that is ${locked.status} cannot be refunded`);
      }
      const rows = await repository.refunds(manager, orderId);
      const succeeded = rows.filter((row) => row.status === 'succeeded').reduce((sum, row) => sum + row.amountMinor, 0);
      const inFlight = rows.filter((row) => row.status === 'requested' || row.status === 'submitted');
      const remaining = locked.amountMinor - Math.max(locked.refundedMinor, succeeded) - inFlight.reduce((sum, row) => sum + row.amountMinor, 0);
      const unsent = inFlight.find((row) => row.status === 'requested' && (amountMinor === undefined || row.amountMinor === amountMinor));
      if (unsent) return { refund: unsent, order: locked };
      const amount = amountMinor ?? remaining;
      if (amount <= 0 || amount > remaining) {
        throw new AppError('refund_exceeds_payment', `At most ${Math.max(remaining, 0)} (minor units) of this order can still be refunded`, {
          refundableMinor: Math.max(remaining, 0),
        });
      }
      const now = clock.now();
      const created: RefundRecord = {
        id: ids.uuid(),
        orderId,
        provider: locked.provider,
        providerRefundId: null,
        amountMinor: amount,
        status: 'requested',
        requestedBy: adminId,
        error: null,
        createdAt: now,
        updatedAt: now,
      };
      await repository.insertRefund(manager, created);
      return { refund: created, order: locked };
    });
    const provider = this.dependencies.providers.get(order.provider as PaymentProviderName);
    if (!provider) throw new AppError('order_not_refundable', `The ${order.provider} provider of this order is not configured any more`);
    try {
      const answer = await provider.refund({
        orderId,
        refundRequestId: refund.id,
        providerPaymentId: order.providerPaymentId!,
        amountMinor: refund.amountMinor,
        currency: order.currency,
      });
      const status = answer.status === 'failed' ? 'failed' : 'submitted';
      await repository.recordRefundAnswer(
        refund.id,
        { status, providerRefundId: answer.providerRefundId, error: answer.status === 'failed' ? 'refused by the provider' : null },
        clock.now(),
      );
      if (status === 'failed') throw new AppError('payment_rejected', 'The payment provider refused the refund');
      return {
        refund: refundView({ ...refund, status, providerRefundId: answer.providerRefundId }, order.currency),
        order: orderView((await repository.findOrder(orderId))!),
      };
    } catch (error) {
      if (error instanceof PaymentProviderError) {
        const rejected = error.kind === 'rejected';
        await repository.recordRefundAnswer(
          refund.id,
          { status: rejected ? 'failed' : 'requested', providerRefundId: null, error: `${error.kind}${error.providerCode ? `: ${error.providerCode}` : ''}` },
          clock.now(),
        );
      }
      throw providerFailure(error);
    }
  }

  async listWebhookEvents(status: WebhookStatus, limit: number, cursor?: string) {
    const rows = await this.dependencies.repository.listEvents(status, limit, decodeCursor(cursor));
    return toPage(
      rows.map((row) => ({ ...row, createdAt: row.receivedAt })),
      limit,
      eventView,
    );
  }

  async retryWebhookEvent(id: string): Promise<WebhookEventView> {
    return eventView(await this.dependencies.inbox.retry(id));
  }
}
