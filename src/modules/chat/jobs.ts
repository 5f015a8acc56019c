import type { JobDefinition } from '../../infra/jobs.js';
import type { ChatService } from './service.js';

export const CHAT_SWEEP_JOB = 'chat.sweep';

/** Every few minutes: replies a dead instance left `streaming` are marked interrupted; stale anonymous conversations go. */
export function chatJobs(chat: ChatService): Array<JobDefinition<never>> {
  const sweep: JobDefinition<Record<string, never>> = {
    name: CHAT_SWEEP_JOB,
    schedule: { everyMs: 5 * 60_000 },
    timeoutMs: 120_000,
    handle: async (_payload, { logger }) => {
      const { interrupted, purged } = await chat.sweep();
      if (interrupted || purged) logger.info({ interrupted, purged }, 'swept AI chat replies and anonymous conversations');
    },
  };
  return [sweep] as Array<JobDefinition<never>>;
}
