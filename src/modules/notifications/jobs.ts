import { z } from 'zod';
import type { JobDefinition } from '../../infra/jobs.js';
import { BROADCAST_JOB, DELIVERY_ATTEMPTS, EMAIL_JOB, PUSH_JOB, type NotificationsService } from './service.js';

const pushPayload = z.object({ notificationIds: z.array(z.uuid()).min(1) });
const emailPayload = z.object({ notificationId: z.uuid() });
const broadcastPayload = z.object({ broadcastId: z.uuid() });

/** Push and e-mail delivery, broadcasts, and the sweep that re-enqueues deliveries whose job was lost. */
export function notificationJobs(notifications: NotificationsService): Array<JobDefinition<never>> {
  const push: JobDefinition<z.infer<typeof pushPayload>> = {
    name: PUSH_JOB,
    attempts: DELIVERY_ATTEMPTS,
    backoffMs: 2_000,
    concurrency: 4,
    timeoutMs: 120_000,
    handle: (payload, context) => notifications.deliverPushes(pushPayload.parse(payload).notificationIds, context),
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
