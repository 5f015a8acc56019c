import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import { auditJobs } from './jobs.js';
import { auditRoutes } from './routes.js';
import { SecurityEventSampler } from './security-sampler.js';
import { AuditService } from './service.js';

/** At most one security event per IP and type in this window. */
const SECURITY_EVENT_INTERVAL_MS = 60_000;

export type { ActivityCategory, ActivityEntry, ActivityType, AuditService } from './service.js';

/** The activity log: what happened to an account, written in the same transaction as the change. */
export const auditModule = defineModule({
  name: 'audit',
  // activity_logs is partitioned by month, which TypeORM cannot describe: the service reaches it with SQL.
  entities: [],
  create: ({ infra }: { infra: Infra }) => {
    const sampler = new SecurityEventSampler(infra.redis.client, infra.clock, SECURITY_EVENT_INTERVAL_MS);
    const audit = new AuditService(infra.db, infra.clock, infra.ids, { sampler, logger: infra.logger }, infra.locks);
    return { service: audit, http: async (app) => app.register(auditRoutes, { audit }), jobs: auditJobs(audit) };
  },
});
