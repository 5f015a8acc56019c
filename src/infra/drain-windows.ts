import { sleep } from '../shared/concurrency.js';
import type { JobQueue } from './jobs.js';

/** How long after its window a drain starts claiming: instances' clocks may differ this much. */
const CLOCK_SKEW_MARGIN_MS = 25;
/** Below this a drain job waits for its window itself (BullMQ promotes delayed jobs less promptly). */
const QUEUE_DELAY_FROM_MS = 1_000;

/**
 * Work written to a table and drained by jobs (pushes, provider events), one drain job per
 * time window however many rows arrive. A drain starts claiming only once its window is over
 * (plus a margin for clock skew between instances), so it sees every row committed before an
 * enqueue in that window.
 */
export class DrainWindows {
  /** The last window this process enqueued a drain for: a burst costs one enqueue per window. */
  private lastWindow = 0;

  constructor(
    private readonly jobs: JobQueue,
    private readonly job: { name: string; idPrefix: string; windowMs: number },
  ) {}

  /** Makes sure a drain job runs `delayMs` from now (call it after the rows are committed). */
  async drainIn(delayMs: number): Promise<void> {
    const windowEnd = Math.ceil((Date.now() + delayMs) / this.job.windowMs) * this.job.windowMs;
    if (windowEnd === this.lastWindow) return;
    this.lastWindow = windowEnd;
    await this.jobs.enqueue(
      this.job.name,
      { windowEnd },
      { jobId: `${this.job.idPrefix}-${windowEnd}`, ...(delayMs > QUEUE_DELAY_FROM_MS ? { delayMs } : {}) },
    );
  }

  /** In the drain job: waits until its window is over (or the job is aborted). */
  async untilOver(windowEnd: number, signal?: AbortSignal): Promise<void> {
    await sleep(Math.min(windowEnd + CLOCK_SKEW_MARGIN_MS - Date.now(), QUEUE_DELAY_FROM_MS + CLOCK_SKEW_MARGIN_MS), signal);
  }
}
