import type { JobDefinition } from '../../infra/jobs.js';
import type { MatchmakingService } from './service.js';

/**
 * Ends calls past CALL_MAX_DURATION and calls whose room Redis lost, once per interval across
 * all instances. A failed sweep is not retried: the next one comes soon.
 */
export function matchmakingJobs(
  matchmaking: MatchmakingService,
  { sweepIntervalMs }: { sweepIntervalMs: number },
): Array<JobDefinition<Record<string, never>>> {
  return [
    {
      name: 'calls.end-stale',
      schedule: { everyMs: sweepIntervalMs },
      attempts: 1,
      handle: async (_payload, { logger }) => {
        const ended = await matchmaking.endStaleCalls();
        if (ended) logger.info({ ended }, 'ended calls past their time');
      },
    },
  ];
}
