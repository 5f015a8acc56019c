import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { Config } from './config/load.js';
import { entities, migrations } from './database-schema.js';
import { systemClock, type Clock } from './infra/clock.js';
import { createDataSource, runMigrationsLocked } from './infra/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './infra/embedded-postgres.js';
import { randomIds, type IdGenerator } from './infra/ids.js';
import { loadSigningKeys, type SigningKeys } from './infra/keys.js';
import { createLogger, type Logger } from './infra/logger.js';
import { createMetrics, type Metrics } from './infra/metrics.js';
import { openJobs, type JobQueue, type JobRuntime } from './infra/jobs.js';
import { mailJobs, queuedMail } from './infra/mail-queue.js';
import { auditJobs } from './modules/audit/jobs.js';
import { authJobs } from './modules/auth/jobs.js';
import { matchmakingJobs } from './modules/matchmaking/jobs.js';
import { createRedis, type RedisConnection } from './infra/redis.js';
import { createLogMailer, createResendMailer, createSmtpMailer, type Mailer } from './infra/mailer.js';
import { createBcryptHasher } from './infra/passwords.js';
import { createPreparedReader } from './infra/sql.js';
import { LocalStorage, S3Storage, type ObjectStorage } from './infra/storage.js';
import { AuditService } from './modules/audit/service.js';
import { AuthService } from './modules/auth/service.js';
import { TokenService } from './modules/auth/tokens.js';
import { BetaService } from './modules/beta/service.js';
import { UsersService } from './modules/users/service.js';
import { CallsService } from './modules/calls/service.js';
import { MatchmakingService } from './modules/matchmaking/service.js';
import { RealtimeBus } from './infra/realtime.js';
import { ReportsService } from './modules/reports/service.js';
import { AdminService } from './modules/admin/service.js';
import { randomBytes } from 'node:crypto';

export interface Container {
  config: Config;
  logger: Logger;
  clock: Clock;
  ids: IdGenerator;
  db: DataSource;
  redis: RedisConnection;
  metrics: Metrics;
  keys: SigningKeys;
  mailer: Mailer;
  storage: ObjectStorage;
  /** Background jobs: the queue services post to, and the runtime (workers unless WORKERS=off) that shutdown stops. */
  jobs: { queue: JobQueue; runtime: JobRuntime };
  /** Reaches connected users; bound to the Socket.io server by buildApp. */
  realtime: RealtimeBus;
  services: Services;
  /** Which parts run on the embedded defaults rather than configured services. */
  embedded: { database: boolean; redis: boolean; storage: boolean };
  /** Closes the job queue (abandoning running jobs: shutdown stops them first), Redis, the database pool and the embedded PostgreSQL, in that order. */
  close(): Promise<void>;
}

export interface Services {
  reports: ReportsService;
  admin: AdminService;
  calls: CallsService;
  matchmaking: MatchmakingService;
  audit: AuditService;
  users: UsersService;
  beta: BetaService;
  tokens: TokenService;
  auth: AuthService;
}

export interface ContainerOptions {
  /** Folder that relative paths (DATA_DIR, JWT_KEYS_DIR) are resolved against. */
  cwd: string;
  logger?: Logger;
  clock?: Clock;
  ids?: IdGenerator;
}

/** The only place that constructs Parley's adapters and services. */
export async function createContainer(config: Config, options: ContainerOptions): Promise<Container> {
  const logger = options.logger ?? createLogger({ level: config.LOG_LEVEL });
  const production = config.NODE_ENV === 'production';
  const cleanups: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => logger.error({ err: error }, 'error while closing'));
    cleanups.length = 0;
  };

  try {
    const keys = await loadSigningKeys(
      {
        dir: path.resolve(options.cwd, config.JWT_KEYS_DIR),
        privateKeyPath: config.JWT_PRIVATE_KEY_PATH && path.resolve(options.cwd, config.JWT_PRIVATE_KEY_PATH),
        publicKeyPath: config.JWT_PUBLIC_KEY_PATH && path.resolve(options.cwd, config.JWT_PUBLIC_KEY_PATH),
        kid: config.JWT_KEY_ID,
      },
      { production, onGenerated: (kid) => logger.warn({ kid, dir: config.JWT_KEYS_DIR }, 'generated a development JWT key pair') },
    );

    let databaseUrl = config.DATABASE_URL;
    let embeddedDatabase: EmbeddedDatabase | undefined;
    if (!databaseUrl) {
      const started = await startEmbeddedPostgres({ dataDir: path.resolve(options.cwd, config.DATA_DIR, 'postgres'), database: 'parley', logger });
      cleanups.push(() => started.stop());
      embeddedDatabase = started;
      databaseUrl = started.url;
    }
    const db = createDataSource({ url: databaseUrl, poolSize: config.DATABASE_POOL_SIZE, entities, migrations });
    await db.initialize();
    cleanups.push(() => db.destroy());
    if (config.DATABASE_MIGRATE_ON_START) {
      const applied = await runMigrationsLocked(db);
      if (applied.length) logger.info({ migrations: applied }, 'applied migrations');
    }

    const redis = createRedis(config.REDIS_URL, (error) => logger.warn({ err: { message: error.message } }, 'Redis connection error'));
    cleanups.push(() => redis.close());

    const metrics = createMetrics();
    // Its own bounded pool on the app's database (schema bullmq), or a real Redis.
    const jobs = await openJobs(
      config.JOBS_BACKEND === 'redis' && config.REDIS_URL
        ? { kind: 'redis', url: config.REDIS_URL, prefix: config.JOBS_PREFIX }
        : { kind: 'postgres', url: databaseUrl, poolSize: config.JOBS_DATABASE_POOL_SIZE },
      { logger, observer: metrics, lockDurationMs: config.JOBS_STALLED_TIMEOUT },
    );
    cleanups.push(() => jobs.close());

    const clock = options.clock ?? systemClock;
    const ids = options.ids ?? randomIds;
    const mailer = config.RESEND_API_KEY
      ? createResendMailer(config.RESEND_API_KEY, config.RESEND_API_URL, config.EMAIL_FROM)
      : config.SMTP_URL
        ? createSmtpMailer(config.SMTP_URL, config.EMAIL_FROM)
        : createLogMailer(logger);
    const hasher = await createBcryptHasher(config.BCRYPT_COST, config.BCRYPT_CONCURRENCY);
    cleanups.push(() => hasher.close());

    const audit = new AuditService(db, clock, ids);
    // Before any request can write to the log; the audit.partitions job keeps them ahead daily.
    await audit.ensurePartitions();

    const storage = config.STORAGE_BUCKET_NAME
      ? new S3Storage({
          bucket: config.STORAGE_BUCKET_NAME,
          region: config.STORAGE_REGION,
          endpoint: config.STORAGE_ENDPOINT,
          accessKeyId: config.STORAGE_ACCESS_KEY,
          secretAccessKey: config.STORAGE_SECRET_KEY,
          publicUrl: config.STORAGE_PUBLIC_URL,
        })
      : new LocalStorage(path.resolve(options.cwd, config.DATA_DIR, 'storage'), config.APP_URL, `${config.SESSION_SECRET}:storage-urls`, () => clock.now());
    if (storage instanceof S3Storage) cleanups.push(async () => storage.close());

    const users = new UsersService(db, createPreparedReader(db), redis.client, storage, clock, ids, logger, {
      urlTtlSeconds: Math.floor(config.STORAGE_URL_TTL / 1000),
      avatarMaxPixels: config.AVATAR_MAX_PIXELS,
      lastActiveThrottleMs: config.LAST_ACTIVE_THROTTLE,
    });
    const beta = new BetaService(db, clock, ids, audit);
    const tokens = new TokenService(
      keys,
      redis.client,
      clock,
      { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtlMs: config.JWT_ACCESS_EXPIRY },
      createPreparedReader(db),
      users,
    );
    const auth = new AuthService(db, redis.client, tokens, hasher, queuedMail(jobs.queue), jobs.queue, users, beta, audit, clock, ids, logger, {
      emailPages: {
        '/verify-email': config.FRONTEND_VERIFY_EMAIL_URL ?? new URL('/verify-email', config.APP_URL).toString(),
        '/reset-password': config.FRONTEND_RESET_PASSWORD_URL ?? new URL('/reset-password', config.APP_URL).toString(),
      },
      refreshTtlMs: config.JWT_REFRESH_EXPIRY,
      sessionMaxLifetimeMs: config.JWT_SESSION_MAX_LIFETIME,
      reuseGraceMs: config.REFRESH_REUSE_GRACE,
      betaMode: config.BETA_MODE === 'on',
      accountFailureLimit: config.AUTH_ACCOUNT_FAILURE_LIMIT,
    });

    const realtime = new RealtimeBus();
    tokens.onSessionsDenied((sessionIds) => realtime.disconnectSessions(sessionIds));
    const calls = new CallsService(db, users, clock, ids);
    const matchmaking = new MatchmakingService(redis.client, users, calls, realtime, clock, ids, logger, {
      searchTimeoutMs: config.MATCH_SEARCH_TIMEOUT,
      instanceTtlMs: config.MATCH_INSTANCE_TTL,
      maxCallMs: config.CALL_MAX_DURATION,
      turn: {
        host: config.TURN_HOST,
        port: config.TURN_PORT,
        // Without a configured secret no Coturn can check the credentials; a random one keeps them unguessable.
        secret: config.TURN_SECRET ?? randomBytes(32).toString('hex'),
        ttlSeconds: Math.floor(config.TURN_CREDENTIAL_TTL / 1000),
      },
    });

    const reports = new ReportsService(db, users, calls, audit, clock, ids, logger);
    const admin = new AdminService(db, users, auth, reports, matchmaking, calls, realtime, audit, logger);

    const runtime = jobs.define([
      ...mailJobs(mailer),
      ...auditJobs(audit),
      ...authJobs(auth),
      ...matchmakingJobs(matchmaking, { sweepIntervalMs: config.CALL_SWEEP_INTERVAL }),
    ]);
    await runtime.start({ workers: config.WORKERS });
    metrics.watchJobQueue(jobs.queue);

    const embedded = { database: Boolean(embeddedDatabase), redis: redis.embedded, storage: storage.kind === 'local' };
    if (production && embedded.redis) {
      logger.warn('REDIS_URL is not set: running on the in-process Redis emulation, which serves ONE instance only and loses its data on restart');
    }
    if (production && embedded.database) {
      logger.warn('DATABASE_URL is not set: running on an embedded PostgreSQL under DATA_DIR; use a managed PostgreSQL in production');
    }

    return {
      config,
      logger,
      clock,
      ids,
      db,
      redis,
      metrics,
      keys,
      mailer,
      storage,
      jobs: { queue: jobs.queue, runtime },
      realtime,
      services: { audit, users, beta, tokens, auth, calls, matchmaking, reports, admin },
      embedded,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
