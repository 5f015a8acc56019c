import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import { auditJobs } from './jobs.js';
import { auditRoutes } from './routes.js';
import { AuditService } from './service.js';

export type { ActivityEntry, ActivityType, AuditService } from './service.js';

/** The activity log: what happened to an account, written in the same transaction as the change. */
export const auditModule = defineModule({
  name: 'audit',
  // activity_logs is partitioned by month, which TypeORM cannot describe: the service reaches it with SQL.
  entities: [],
  create: ({ infra }: { infra: Infra }) => {
    const audit = new AuditService(infra.db, infra.clock, infra.ids);
    return { service: audit, http: async (app) => app.register(auditRoutes, { audit }), jobs: auditJobs(audit) };
  },
});
