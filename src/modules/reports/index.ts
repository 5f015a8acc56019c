import type { Infra } from '../../infra/bundle.js';
import type { AuditService } from '../audit/index.js';
import type { CallsService } from '../calls/index.js';
import { defineModule } from '../kit.js';
import type { UsersModuleService } from '../users/index.js';
import { Report } from './entities.js';
import { reportsRoutes } from './routes.js';
import { reportSchema } from './schemas.js';
import { ReportsService } from './service.js';

export type { ReportStatus, ReportView, ReportsService } from './service.js';
export { reportSchema };

/** Reports of users by users, with automatic flagging for review. */
export const reportsModule = defineModule({
  name: 'reports',
  entities: [Report],
  tags: [{ name: 'safety', description: 'Reports' }],
  create: ({ infra, users, calls, audit }: { infra: Infra; users: UsersModuleService; calls: CallsService; audit: AuditService }) => {
    const reports = new ReportsService({
      db: infra.db,
      accounts: users.accounts,
      calls,
      audit,
      clock: infra.clock,
      ids: infra.ids,
      logger: infra.logger,
      events: infra.events,
    });
    return { service: reports, http: async (app) => app.register(reportsRoutes, { reports }) };
  },
});
