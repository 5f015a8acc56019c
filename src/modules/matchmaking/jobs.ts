import type { JobDefinition } from '../../infra/jobs.js';
import type { MatchmakingService } from './service.js';

/** How often due AI partner offers are looked for: a tenth of the fallback time, between every 250 ms and every 5 s. */
export function aiPartnerSweepIntervalMs(aiFallbackMs: number): number {
  return Math.min(5_000, Math.max(250, Math.round(aiFallbackMs / 10)));
}

/**
 * Ends calls past CALL_MAX_DURATION and calls whose room Redis lost, and (when the AI partner
 * is offered at all) tells searches past MATCH_AI_FALLBACK_SECONDS that it is available; each
 * once per interval across all instances. A failed sweep is not retried: the next one comes soon.
 */
export function matchmakingJobs(
  matchmaking: MatchmakingService,
  { sweepIntervalMs }: { sweepIntervalMs: number },
): Array<JobDefinition<Record<string, never>>> {
  const jobs: Array<JobDefinition<Record<string, never>>> = [
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
  if (matchmaking.aiFallbackMs) {
    jobs.push({
      name: 'match.offer-ai-partner',
      schedule: { everyMs: aiPartnerSweepIntervalMs(matchmaking.aiFallbackMs) },
      attempts: 1,
      handle: async (_payload, { logger }) => {
        const offered = await matchmaking.offerAiPartner();
        if (offered) logger.info({ offered }, 'offered the AI partner to searches waiting past MATCH_AI_FALLBACK_SECONDS');
      },
    });
  }
  return jobs;
}
