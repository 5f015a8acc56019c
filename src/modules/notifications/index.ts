import type { Infra } from '../../infra/bundle.js';
import type { JobDefinition } from '../../infra/jobs.js';
import type { PushSender } from '../../infra/push.js';
import { defineModule } from '../kit.js';
import type { AuthService } from '../auth/index.js';
import type { UsersModuleService } from '../users/index.js';
import { DeviceToken, Notification, NotificationBroadcast, NotificationDelivery, NotificationPreference } from './entities.js';
import { notificationJobs } from './jobs.js';
import { mailPreviewRoutes } from './mail-preview.js';
import { subscribeToEvents } from './reactions.js';
import { NotificationsRepository } from './repository.js';
import { notificationsRoutes } from './routes.js';
import { deliveryCountsSchema } from './schemas.js';
import { NotificationsService, type NotificationsSettings } from './service.js';

export type { NotificationsService, NotifyPayload } from './service.js';
export type { NotificationType } from './entities.js';
export { deliveryCountsSchema };

export interface NotificationsModuleDeps {
  infra: Infra;
  users: UsersModuleService;
  /** Which device a signed-in session is on: a push token belongs to the caller's own device. */
  sessions: Pick<AuthService, 'sessionDevice'>;
  push: PushSender;
  settings: NotificationsSettings & { mailPreview: boolean };
}

/** What users are told: the inbox, push through FCM, e-mail, preferences and quiet hours, admin broadcasts. */
export const notificationsModule = defineModule({
  name: 'notifications',
  entities: [DeviceToken, Notification, NotificationPreference, NotificationDelivery, NotificationBroadcast],
  tags: [{ name: 'notifications', description: 'Inbox, push devices and notification preferences' }],
  create: ({ infra, users, sessions, push, settings }: NotificationsModuleDeps) => {
    const notifications = new NotificationsService(
      {
        repository: new NotificationsRepository(infra.db),
        accounts: users.accounts,
        sessions,
        jobs: infra.jobs,
        push,
        mailer: infra.mailer,
        clock: infra.clock,
        ids: infra.ids,
        logger: infra.logger,
      },
      settings,
    );
    const reactionJobs = subscribeToEvents(infra.events, {
      notifications,
      accounts: users.accounts,
      profiles: users.profiles,
      jobs: infra.jobs,
      logger: infra.logger,
    });
    return {
      service: notifications,
      http: async (app) => {
        await app.register(notificationsRoutes, { notifications });
        if (settings.mailPreview) await app.register(mailPreviewRoutes);
      },
      jobs: [...notificationJobs(notifications), ...(reactionJobs as Array<JobDefinition<never>>)],
      close: () => push.close(),
    };
  },
});
