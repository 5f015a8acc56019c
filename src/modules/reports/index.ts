import type { Infra } from '../../infra/bundle.js';
import type { AuditService } from '../audit/index.js';
import type { CallsService } from '../calls/index.js';
import { defineModule } from '../kit.js';
import type { UsersService } from '../users/index.js';
import { Report } from './entities.js';
import { reportsRoutes, reportSchema } from './routes.js';
import { ReportsService } from './service.js';

export type { ReportStatus, ReportView, ReportsService } from './service.js';
export { reportSchema };

/** Reports of users by users, with automatic flagging for review. */
export const reportsModule = defineModule({
  name: 'reports',
  entities: [Report],
  tags: [{ name: 'safety', description: 'Reports' }],
  create: ({ infra, users, calls, audit }: { infra: Infra; users: UsersService; calls: CallsService; audit: AuditService }) => {
    const reports = new ReportsService(infra.db, users, calls, audit, infra.clock, infra.ids, infra.logger);
    return { service: reports, http: async (app) => app.register(reportsRoutes, { reports }) };
  },
});
