import type { JobDefinition } from '../../infra/jobs.js';
import type { IdempotencyStore } from './store.js';

/** Idempotency-Key records live 24 h: the expired ones are deleted every hour. */
export function idempotencyJobs(store: IdempotencyStore): Array<JobDefinition<Record<string, never>>> {
  return [
    {
      name: 'http.idempotency-purge',
      schedule: { cron: '23 * * * *' },
      handle: async (_payload, { logger }) => {
        const purged = await store.purgeExpired();
        if (purged) logger.info({ purged }, 'purged expired Idempotency-Key records');
      },
    },
  ];
}
