import { z } from 'zod';
import type { JobDefinition } from '../../infra/jobs.js';
import { BROADCAST_JOB, DELIVERY_ATTEMPTS, EMAIL_JOB, PUSH_JOB, type NotificationsService } from './service.js';

const pushPayload = z.object({ windowEnd: z.number().int() });
const emailPayload = z.object({ notificationId: z.uuid() });
const broadcastPayload = z.object({ broadcastId: z.uuid() });

/** Push drains and e-mail delivery, broadcasts, and the sweep that re-enqueues deliveries whose job was lost. */
export function notificationJobs(notifications: NotificationsService): Array<JobDefinition<never>> {
  const push: JobDefinition<z.infer<typeof pushPayload>> = {
    name: PUSH_JOB,
    // the rows carry each push's own tries; a drain that fails (the database away) is run again
    attempts: 5,
    backoffMs: 1_000,
    concurrency: 2,
    timeoutMs: 120_000,
    handle: (payload, context) => notifications.drainDuePushes(pushPayload.parse(payload).windowEnd, context),
  };
  const email: JobDefinition<z.infer<typeof emailPayload>> = {
    name: EMAIL_JOB,
    attempts: DELIVERY_ATTEMPTS,
    backoffMs: 5_000,
    concurrency: 4,
    timeoutMs: 60_000,
    handle: (payload, context) => notifications.deliverEmail(emailPayload.parse(payload).notificationId, context),
  };
  const broadcast: JobDefinition<z.infer<typeof broadcastPayload>> = {
    name: BROADCAST_JOB,
    attempts: 3,
    backoffMs: 5_000,
    timeoutMs: 30 * 60_000,
    handle: (payload, context) => notifications.runBroadcast(broadcastPayload.parse(payload).broadcastId, context),
  };
  const redeliver: JobDefinition<object> = {
    name: 'notifications.redeliver',
    schedule: { everyMs: 60_000 },
    attempts: 1,
    handle: async (_payload, context) => {
      const count = await notifications.redeliverStranded();
      if (count) context.logger.warn({ count }, 're-enqueued deliveries whose job was lost');
    },
  };
  return [push, email, broadcast, redeliver] as Array<JobDefinition<never>>;
}
