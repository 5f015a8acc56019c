import type { JobDefinition } from '../../infra/jobs.js';
import { WEBHOOK_JOB, type WebhookInbox } from './inbox.js';
import type { LocalPaymentProvider } from './local-provider.js';

export const SWEEP_JOB = 'payments.sweep';
const SWEEP_BATCH = 200;

export function paymentJobs(inbox: WebhookInbox, local: LocalPaymentProvider | null): Array<JobDefinition<never>> {
  const drain: JobDefinition<{ windowEnd: number }> = {
    name: WEBHOOK_JOB,
    attempts: 3,
    concurrency: 4,
    timeoutMs: 60_000,
    handle: ({ windowEnd }, context) => inbox.drain(windowEnd, context),
  };
  // a drain whose job was lost (a crash between commit and enqueue) and the local provider's clock
  const sweep: JobDefinition<Record<string, never>> = {
    name: SWEEP_JOB,
    schedule: { everyMs: 30_000 },
    timeoutMs: 60_000,
    handle: async () => {
      await inbox.scheduleNextDue();
      if (local) {
        await local.expireDue(SWEEP_BATCH);
        await local.redeliverMissing(SWEEP_BATCH);
      }
    },
  };
  return [drain, sweep] as Array<JobDefinition<never>>;
}
