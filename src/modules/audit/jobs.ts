import type { JobDefinition } from '../../infra/jobs.js';
import type { AuditService } from './service.js';

/** Next month's activity_logs partition exists long before the month starts: checked every day. */
export function auditJobs(audit: AuditService): Array<JobDefinition<Record<string, never>>> {
  return [
    {
      name: 'audit.partitions',
      schedule: { cron: '17 3 * * *' },
      handle: async (_payload, { logger }) => {
        const created = await audit.ensurePartitions();
        if (created.length) logger.info({ partitions: created }, 'created activity_logs partitions');
      },
    },
  ];
}
