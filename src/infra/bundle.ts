import type { DataSource } from 'typeorm';
import type { Clock } from './clock.js';
import type { EventBus } from './events.js';
import type { IdGenerator } from './ids.js';
import type { JobQueue } from './jobs.js';
import type { LockService } from './locks.js';
import type { Logger } from './logger.js';
import type { MailOutbox } from './mail-queue.js';
import type { Mailer } from './mailer.js';
import type { Metrics } from './metrics.js';
import type { RealtimeBus } from './realtime.js';
import type { RedisConnection } from './redis.js';
import type { ObjectStorage } from './storage.js';

/** The adapters every module may use, passed to each module as one object. */
export interface Infra {
  logger: Logger;
  clock: Clock;
  ids: IdGenerator;
  db: DataSource;
  redis: RedisConnection;
  /** Sends now: used by the mail.send job. Services send through `mail`. */
  mailer: Mailer;
  /** Queues an e-mail (the mail.send job): no request waits on the mail provider. */
  mail: MailOutbox;
  jobs: JobQueue;
  storage: ObjectStorage;
  metrics: Metrics;
  /** Reaches connected users; bound to the Socket.io server by buildApp. */
  realtime: RealtimeBus;
  events: EventBus;
  /** Work two instances must not run at once outside the job queue. */
  locks: LockService;
}
