import type { Infra } from '../../infra/bundle.js';
import type { AuditService } from '../audit/index.js';
import type { AuthService } from '../auth/index.js';
import type { CallsService } from '../calls/index.js';
import { defineModule } from '../kit.js';
import type { NotificationsService } from '../notifications/index.js';
import type { ReportsService } from '../reports/index.js';
import type { UsersModuleService } from '../users/index.js';
import { adminJobsRoutes } from './jobs-routes.js';
import { adminRoutes } from './routes.js';
import { AdminService } from './service.js';

export type { AdminService } from './service.js';

export interface AdminModuleDeps {
  infra: Infra;
  users: UsersModuleService;
  auth: AuthService;
  reports: ReportsService;
  notifications: NotificationsService;
  calls: CallsService;
  audit: AuditService;
}

/** Moderation and administration: dashboard numbers, user search, bans, roles, report decisions. */
export const adminModule = defineModule({
  name: 'admin',
  entities: [],
  tags: [{ name: 'admin', description: 'Moderation and administration (admins only)' }],
  create: ({ infra, users, auth, reports, notifications, calls, audit }: AdminModuleDeps) => {
    const admin = new AdminService({
      db: infra.db,
      accounts: users.accounts,
      profiles: users.profiles,
      auth,
      reports,
      notifications,
      events: infra.events,
      calls,
      bus: infra.realtime,
      audit,
      logger: infra.logger,
    });
    return {
      service: admin,
      http: async (app) => {
        await app.register(adminRoutes, { admin, clock: infra.clock });
        await app.register(adminJobsRoutes, { jobs: infra.jobs });
      },
    };
  },
});
