import { renderMail } from '../../infra/mail-templates.js';
import { formatAmount } from '../../shared/money.js';
import type { NotificationsService } from '../notifications/index.js';
import type { AccountsService } from '../users/index.js';
import type { OrderKind } from './entities.js';

interface About {
  userId: string;
  orderId: string;
  orderKind: OrderKind;
  courseId: string | null;
  description: string;
  currency: string;
}

/** What an applied payment event tells people; recorded with the event, so a retry tells the same. */
export type Notice =
  | (About & { kind: 'paid'; amountMinor: number; paidAt: string })
  | (About & { kind: 'refunded'; refundedTotalMinor: number; amountMinor: number; full: boolean })
  | (About & { kind: 'disputed'; disputeId: string; amountMinor: number });

const ADMIN_PAGE = 100;

/** Sends the notices of payment events through the notifications module, each once (its dedupe key). */
export class PaymentNotifier {
  constructor(private readonly dependencies: { notifications: NotificationsService; accounts: AccountsService }) {}

  async send(notice: Notice): Promise<void> {
    const { notifications } = this.dependencies;
    const data = {
      screen: notice.orderKind === 'course' ? 'course' : 'donation',
      orderId: notice.orderId,
      ...(notice.courseId ? { courseId: notice.courseId } : {}),
    };
    switch (notice.kind) {
      case 'paid':
        await notifications.notify(notice.userId, 'payment_success', {
          title: notice.orderKind === 'course' ? 'Payment received: you are enrolled' : 'Thank you for your donation',
          body:
            notice.orderKind === 'course'
              ? `${formatAmount(notice.amountMinor, notice.currency)} for ${notice.description}. The course is yours.`
              : `${formatAmount(notice.amountMinor, notice.currency)}: ${notice.description}.`,
          data,
          dedupeKey: `order:${notice.orderId}:paid`,
          email: renderMail('payment-receipt', {
            description: notice.description,
            amountMinor: notice.amountMinor,
            currency: notice.currency,
            orderId: notice.orderId,
            paidAt: new Date(notice.paidAt),
          }),
        });
        return;
      case 'refunded':
        await notifications.notify(notice.userId, 'system', {
          title: 'Refund issued',
          body: `${formatAmount(notice.amountMinor, notice.currency)} of ${notice.description} was refunded${notice.full && notice.orderKind === 'course' ? '; the course is no longer in your library' : ''}.`,
          data,
          dedupeKey: `refund:${notice.orderId}:${notice.refundedTotalMinor}`,
          channels: ['in_app', 'push', 'email'],
        });
        return;
      case 'disputed':
        for await (const adminId of this.admins()) {
          await notifications.notify(adminId, 'system', {
            title: 'A payment is disputed',
            body: `The buyer of ${notice.description} (${formatAmount(notice.amountMinor, notice.currency)}) opened a dispute.`,
            data: { screen: 'admin/orders', orderId: notice.orderId },
            dedupeKey: `dispute:${notice.orderId}:${notice.disputeId}`,
            channels: ['in_app', 'push', 'email'],
          });
        }
        return;
    }
  }

  private async *admins(): AsyncGenerator<string> {
    let afterId: string | null = null;
    for (;;) {
      const page = await this.dependencies.accounts.recipients({ kind: 'role', role: 'admin' }, afterId, ADMIN_PAGE);
      yield* page;
      if (page.length < ADMIN_PAGE) return;
      afterId = page[page.length - 1]!;
    }
  }
}
