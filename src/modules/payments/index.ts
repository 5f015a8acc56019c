import type { Infra } from '../../infra/bundle.js';
import type { PaymentProvider, PaymentProviderName } from '../../infra/payments/provider.js';
import { defineModule } from '../kit.js';
import type { LmsService } from '../lms/index.js';
import type { NotificationsService } from '../notifications/index.js';
import type { UsersModuleService } from '../users/index.js';
import { LocalCheckoutSession, Order, OrderRefund, PaymentWebhookEvent, Sponsorship } from './entities.js';
import { WebhookInbox } from './inbox.js';
import { paymentJobs } from './jobs.js';
import { paymentPageRoutes } from './local-page.js';
import { LocalPaymentProvider } from './local-provider.js';
import { PaymentNotifier } from './notices.js';
import { PaymentsRepository } from './repository.js';
import { paymentsRoutes } from './routes.js';
import { PaymentsService } from './service.js';
import { webhookRoutes } from './webhook-routes.js';

export type { PaymentsService } from './service.js';
export { LOCAL_SIGNATURE_HEADER } from './local-provider.js';

export interface PaymentsSettings {
  /** Who takes new checkouts and donations; null: payments are off. */
  activeProvider: PaymentProviderName | null;
  /** Where providers send the buyer back. */
  successUrl: string;
  cancelUrl: string;
  /** Public base URL of this server (the local provider's page). */
  appUrl: string;
  /** Signs the local provider's webhooks; null: no local provider (production). */
  localSecret: string | null;
  /** How long a worker holds the events it took (see InboxDependencies.leaseMs). */
  eventLeaseMs: number;
}

export interface PaymentsModuleDeps {
  infra: Infra;
  lms: LmsService;
  notifications: NotificationsService;
  users: UsersModuleService;
  /** The configured real providers (Stripe, PayPal); the local one is the module's own. */
  providers: PaymentProvider[];
  settings: PaymentsSettings;
}

/** Course checkouts and donations through Stripe, PayPal or the local provider; signed webhooks applied exactly once. */
export const paymentsModule = defineModule({
  name: 'payments',
  entities: [Order, OrderRefund, PaymentWebhookEvent, Sponsorship, LocalCheckoutSession],
  tags: [
    { name: 'payments', description: 'Course checkout and orders' },
    { name: 'donations', description: 'Donations (sponsorships)' },
    { name: 'webhooks', description: 'Signed events of the payment providers' },
  ],
  create: ({ infra, lms, notifications, users, providers: configured, settings }: PaymentsModuleDeps) => {
    const repository = new PaymentsRepository(infra.db);
    const providers = new Map<PaymentProviderName, PaymentProvider>(configured.map((provider) => [provider.name, provider]));
    const local = settings.localSecret
      ? new LocalPaymentProvider({
          repository,
          secret: settings.localSecret,
          appUrl: settings.appUrl,
          clock: infra.clock,
          // the local provider's webhooks reach the inbox as an HTTP provider's would, minus the network
          deliver: (rawBody, headers) => inbox.receive('local', rawBody, headers),
        })
      : null;
    if (local) providers.set('local', local);
    const inbox = new WebhookInbox({
      leaseMs: settings.eventLeaseMs,
      repository,
      providers,
      lms,
      notifier: new PaymentNotifier({ notifications, accounts: users.accounts }),
      jobs: infra.jobs,
      redis: infra.redis,
      clock: infra.clock,
      ids: infra.ids,
      logger: infra.logger,
    });
    const payments = new PaymentsService({
      repository,
      providers,
      activeProvider: settings.activeProvider,
      inbox,
      lms,
      clock: infra.clock,
      ids: infra.ids,
      logger: infra.logger,
    });
    return {
      service: payments,
      http: async (app) => {
        await app.register(paymentsRoutes, { payments });
        await app.register(webhookRoutes, { inbox });
        await app.register(paymentPageRoutes, { local, successUrl: settings.successUrl, cancelUrl: settings.cancelUrl });
      },
      jobs: paymentJobs(inbox, local),
    };
  },
});
