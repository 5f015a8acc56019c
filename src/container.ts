import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { ConfigError, type Config } from './config/load.js';
import { entities, migrations } from './database-schema.js';
import type { Infra } from './infra/bundle.js';
import { systemClock, type Clock } from './infra/clock.js';
import { createDataSource, runMigrationsLocked } from './infra/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './infra/embedded-postgres.js';
import { EventBus } from './infra/events.js';
import { openJobs, type JobQueue, type JobRuntime } from './infra/jobs.js';
import { mailJobs, queuedMail } from './infra/mail-queue.js';
import { idempotencyJobs } from './http/idempotency/jobs.js';
import { IdempotencyStore } from './http/idempotency/store.js';
import { randomIds, type IdGenerator } from './infra/ids.js';
import { loadSigningKeys, type SigningKeys } from './infra/keys.js';
import { createLogger, type Logger } from './infra/logger.js';
import { PgLockService, type LockService } from './infra/locks.js';
import { LOCAL_PAYMENTS_SECRET_FILE, loadGeneratedSecret, OLLAMA_KEY_FILE } from './infra/generated-secret.js';
import { parseEncryptionKey, SecretBox } from './infra/secret-box.js';
import { CircuitBreaker } from './infra/circuit-breaker.js';
import { createGuardedFetch } from './infra/outbound.js';
import { createPayPalProvider } from './infra/payments/paypal.js';
import { createStripeProvider } from './infra/payments/stripe.js';
import { createPushSender } from './infra/push-fcm.js';
import { createLogMailer, createResendMailer, createSmtpMailer, type Mailer } from './infra/mailer.js';
import { createMetrics, type Metrics } from './infra/metrics.js';
import { createBcryptHasher } from './infra/passwords.js';
import { RealtimeBus } from './infra/realtime.js';
import { createRedis, socketExists, type RedisConnection, type RedisTarget } from './infra/redis.js';
import { LocalStorage, S3Storage, type ObjectStorage } from './infra/storage.js';
import { FfmpegTools } from './infra/video.js';
import type { BearerAuthenticator, TokenService, TrustedIssuer } from './modules/auth/index.js';
import type { AccountsService, ProfilesService } from './modules/users/index.js';
import { modules, type CreatedModules, type ModuleServices } from './modules/index.js';

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
  /** Reaches connected users; bound to the Socket.io server by buildApp. */
  realtime: RealtimeBus;
  events: EventBus;
  /** Distributed locks: work two instances must not run at once. */
  locks: LockService;
  /** Background jobs: the queue services post to, and the runtime (workers unless WORKERS=off) that shutdown stops. */
  jobs: { queue: JobQueue; runtime: JobRuntime };
  /** Idempotency-Key records of the routes that opt in. */
  idempotency: IdempotencyStore;
  /** What each module built: its service, routes, socket handlers. */
  modules: CreatedModules;
  services: Services;
  /** Which parts run on the embedded defaults rather than configured services. */
  embedded: { database: boolean; redis: boolean; storage: boolean };
  /** Closes the modules, the job queue (shutdown stops running jobs first), Redis, the database pool and the embedded PostgreSQL, in that order. */
  close(): Promise<void>;
}

export type Services = ModuleServices & { tokens: TokenService; bearer: BearerAuthenticator; accounts: AccountsService; profiles: ProfilesService };

export interface ContainerOptions {
  /** Folder that relative paths (DATA_DIR, JWT_KEYS_DIR) are resolved against. */
  cwd: string;
  logger?: Logger;
  clock?: Clock;
  ids?: IdGenerator;
}

/** Tells the operator, once at start, what loading the settings noticed. */
function logConfigNotices({ notices }: Config, logger: Logger): void {
  if (notices.aliases.length) {
    logger.info(
      { aliases: Object.fromEntries(notices.aliases.map(({ alias, setting }) => [alias, setting])) },
      `settings read under their documents' names: ${notices.aliases.map(({ alias, setting }) => `${alias} as ${setting}`).join(', ')}`,
    );
  }
  if (notices.unknown.length) {
    const listed = notices.unknown.map(({ name, file, closest }) => `${name} (${file}; ${closest ? `did you mean ${closest}?` : 'no similar setting'})`);
    logger.warn({ unknownSettings: notices.unknown }, `settings Parley does not know were ignored: ${listed.join(', ')}`);
  }
  for (const warning of notices.warnings) logger.warn(warning);
}

/**
 * The real Redis to use, or undefined for the in-process emulation. A missing unix socket is
 * a local Redis that is not running: development carries on without it, production refuses.
 */
function resolveRedisTarget(config: Config, { cwd, production, logger }: { cwd: string; production: boolean; logger: Logger }): RedisTarget | undefined {
  if (!config.REDIS_SOCKET_PATH) return config.REDIS_URL ? { url: config.REDIS_URL } : undefined;
  const socketPath = path.resolve(cwd, config.REDIS_SOCKET_PATH);
  if (socketExists(socketPath)) return { path: socketPath };
  if (production) {
    throw new ConfigError(
      `Invalid configuration: REDIS_SOCKET_PATH: no Redis socket at ${socketPath} (production does not fall back to the in-process emulation)`,
    );
  }
  if (config.JOBS_BACKEND === 'redis') {
    throw new ConfigError(
      `Invalid configuration: REDIS_SOCKET_PATH: no Redis socket at ${socketPath}, and JOBS_BACKEND=redis cannot run on the in-process emulation`,
    );
  }
  logger.warn(
    { socketPath },
    `REDIS_SOCKET_PATH: no Redis socket at ${socketPath}: running on the in-process Redis emulation (single instance, data lost on restart)`,
  );
  return undefined;
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

  logConfigNotices(config, logger);
  const redisTarget = resolveRedisTarget(config, { cwd: options.cwd, production, logger });

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

    const redis = createRedis(redisTarget, (error) => logger.warn({ err: { message: error.message } }, 'Redis connection error'));
    cleanups.push(() => redis.close());

    const clock = options.clock ?? systemClock;
    const ids = options.ids ?? randomIds;
    const mailer = config.RESEND_API_KEY
      ? createResendMailer(config.RESEND_API_KEY, config.RESEND_API_URL, config.EMAIL_FROM)
      : config.SMTP_URL
        ? createSmtpMailer(config.SMTP_URL, config.EMAIL_FROM)
        : createLogMailer(logger, { withText: !production });
    const hasher = await createBcryptHasher(config.BCRYPT_COST, config.BCRYPT_CONCURRENCY);
    cleanups.push(() => hasher.close());

    const events = new EventBus();
    const realtime = new RealtimeBus();
    const metrics = createMetrics();
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
    const idempotency = new IdempotencyStore(db, clock);
    // Its own bounded pool on the app's database (schema bullmq), or a real Redis.
    const jobs = await openJobs(
      config.JOBS_BACKEND === 'redis' && redisTarget
        ? { kind: 'redis', target: redisTarget, prefix: config.JOBS_PREFIX }
        : { kind: 'postgres', url: databaseUrl, poolSize: config.JOBS_DATABASE_POOL_SIZE },
      { logger, observer: metrics, lockDurationMs: config.JOBS_STALLED_TIMEOUT },
    );
    cleanups.push(() => jobs.close());
    const locks = new PgLockService(db, logger);
    const infra: Infra = { logger, clock, ids, db, redis, mailer, mail: queuedMail(jobs.queue), jobs: jobs.queue, storage, metrics, realtime, events, locks };

    // One block per module, in dependency order; each gets its dependencies as one object.
    const audit = modules.audit.create({ infra });
    // This month's partition must exist before the first log write (instances starting together
    // take turns on a lock); the audit.partitions job then keeps the coming months ahead.
    await audit.service.ensurePartitions();

    const users = modules.users.create({
      infra,
      settings: {
        urlTtlSeconds: Math.floor(config.STORAGE_URL_TTL / 1000),
        avatarMaxPixels: config.AVATAR_MAX_PIXELS,
        avatarMaxBytes: config.AVATAR_MAX_BYTES,
        lastActiveThrottleMs: config.LAST_ACTIVE_THROTTLE,
      },
    });

    const beta = modules.beta.create({ infra, audit: audit.service, accounts: users.service.accounts, settings: { check: config.BETA_CHECK_LIMIT } });

    // document 001's front end is one more HS256 issuer
    const trustedIssuers: TrustedIssuer[] = [
      ...config.TRUSTED_ISSUERS,
      ...(config.ORION_SHARED_JWT_SECRET && config.ORION_SHARED_JWT_ISS && config.ORION_SHARED_JWT_AUD
        ? [
            {
              kind: 'hs256',
              issuer: config.ORION_SHARED_JWT_ISS,
              audience: config.ORION_SHARED_JWT_AUD,
              secret: config.ORION_SHARED_JWT_SECRET,
              emailClaim: 'email',
            } as const,
          ]
        : []),
    ];
    // where a browser's cookie-authenticated writes and its sign-in's return may come from: the front ends, and this server's own pages (/demo)
    const browserOrigins = [...new Set([...config.FRONTEND_URL, config.APP_URL].flatMap((url) => (URL.canParse(url) ? [new URL(url).origin] : [])))];
    const github =
      config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET
        ? {
            clientId: config.GITHUB_CLIENT_ID,
            clientSecret: config.GITHUB_CLIENT_SECRET,
            callbackUrl: config.GITHUB_CALLBACK_URL ?? new URL('/auth/callback', config.APP_URL).toString(),
            oauthUrl: config.GITHUB_OAUTH_URL,
            apiUrl: config.GITHUB_API_URL,
            timeoutMs: config.GITHUB_TIMEOUT,
          }
        : null;
    const auth = modules.auth.create({
      infra,
      keys,
      hasher,
      users: users.service,
      beta: beta.service,
      audit: audit.service,
      idempotency,
      // the operator chose these hosts, wherever they are; redirects are refused all the same
      jwksFetch: createGuardedFetch({
        trusted: trustedIssuers.flatMap((issuer) => {
          if (issuer.kind !== 'jwks') return [];
          const url = new URL(issuer.jwksUrl);
          return [{ hostname: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) }];
        }),
        connectTimeoutMs: config.JWKS_TIMEOUT,
        headersTimeoutMs: config.JWKS_TIMEOUT,
        bodyTimeoutMs: config.JWKS_TIMEOUT,
      }),
      // the operator chose GitHub's API host (GitHub Enterprise Server may be on a private address)
      githubFetch: createGuardedFetch({
        trusted: [config.GITHUB_API_URL].map((base) => {
          const url = new URL(base);
          return { hostname: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
        }),
        connectTimeoutMs: config.GITHUB_TIMEOUT,
        headersTimeoutMs: config.GITHUB_TIMEOUT,
        bodyTimeoutMs: config.GITHUB_TIMEOUT,
      }),
      settings: {
        browser: {
          secret: config.SESSION_SECRET,
          secure: production,
          idleTtlMs: config.COOKIE_SESSION_TTL,
          maxLifetimeMs: config.COOKIE_SESSION_MAX_LIFETIME,
          allowedOrigins: browserOrigins,
          defaultReturnTo: browserOrigins[0] ? `${browserOrigins[0]}/` : config.APP_URL,
          github,
        },
        external: {
          issuers: trustedIssuers,
          acceptExternalTokens: config.ACCEPT_EXTERNAL_TOKENS,
          authorizedUserEmail: config.AUTHORIZED_USER_EMAIL ?? null,
          leewayMs: config.EXTERNAL_TOKEN_LEEWAY,
          jwks: { timeoutMs: config.JWKS_TIMEOUT, cacheTtlMs: config.JWKS_CACHE_TTL, refetchIntervalMs: config.JWKS_REFETCH_INTERVAL },
        },
        tokens: { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtlMs: config.JWT_ACCESS_EXPIRY },
        emailPages: {
          '/verify-email': config.FRONTEND_VERIFY_EMAIL_URL ?? new URL('/verify-email', config.APP_URL).toString(),
          '/reset-password': config.FRONTEND_RESET_PASSWORD_URL ?? new URL('/reset-password', config.APP_URL).toString(),
        },
        refreshTtlMs: config.JWT_REFRESH_EXPIRY,
        sessionMaxLifetimeMs: config.JWT_SESSION_MAX_LIFETIME,
        reuseGraceMs: config.REFRESH_REUSE_GRACE,
        betaMode: config.BETA_MODE === 'on',
        accountFailureLimit: config.AUTH_ACCOUNT_FAILURE_LIMIT,
        limits: {
          login: config.AUTH_LOGIN_LIMIT,
          register: config.AUTH_REGISTER_LIMIT,
          forgotPassword: config.AUTH_FORGOT_PASSWORD_LIMIT,
          github: config.AUTH_GITHUB_LIMIT,
          refresh: { max: config.RATE_LIMIT_REQUESTS, windowMs: config.RATE_LIMIT_WINDOW },
        },
      },
    });

    const calls = modules.calls.create({ infra, users: users.service });

    const matchmaking = modules.matchmaking.create({
      infra,
      users: users.service,
      calls: calls.service,
      settings: {
        searchTimeoutMs: config.MATCH_SEARCH_TIMEOUT,
        backgroundGraceMs: config.MATCH_BACKGROUND_GRACE,
        instanceTtlMs: config.MATCH_INSTANCE_TTL,
        maxCallMs: config.CALL_MAX_DURATION,
        aiFallbackMs: config.MATCH_AI_FALLBACK_SECONDS,
        // the server's own AI upstream, which any searcher can use (a key a user stored is not looked up per search)
        aiPartnerConfigured: Boolean(config.OLLAMA_BASE_URL),
        reconnectGraceMs: config.CALL_RECONNECT_GRACE,
        sweepIntervalMs: config.CALL_SWEEP_INTERVAL,
        turn: {
          host: config.TURN_HOST,
          port: config.TURN_PORT,
          // Without a configured secret no Coturn can check the credentials; a random one keeps them unguessable.
          secret: config.TURN_SECRET ?? randomBytes(32).toString('hex'),
          ttlSeconds: Math.floor(config.TURN_CREDENTIAL_TTL / 1000),
        },
      },
    });

    const signaling = modules.signaling.create({ infra, matchmaking: matchmaking.service });

    const reports = modules.reports.create({ infra, users: users.service, calls: calls.service, audit: audit.service });

    const paymentSuccessUrl = config.PAYMENT_SUCCESS_URL ?? new URL('/pay/result?status=success', config.APP_URL).toString();
    const paymentCancelUrl = config.PAYMENT_CANCEL_URL ?? new URL('/pay/result?status=cancelled', config.APP_URL).toString();

    const notifications = modules.notifications.create({
      infra,
      users: users.service,
      sessions: auth.service,
      push: createPushSender(config, logger),
      settings: { pushConcurrency: config.PUSH_CONCURRENCY, appUrl: config.APP_URL, mailPreview: !production },
    });

    const lms = modules.lms.create({
      infra,
      tools: new FfmpegTools(config.FFMPEG_PATH, config.FFPROBE_PATH),
      settings: {
        videoMaxBytes: config.VIDEO_MAX_BYTES,
        videoUrlTtlSeconds: Math.floor(config.VIDEO_URL_TTL / 1000),
        transcodeTimeoutMs: config.VIDEO_TRANSCODE_TIMEOUT,
        transcodeRetryDelayMs: config.VIDEO_TRANSCODE_RETRY_DELAY,
        urlTtlSeconds: Math.floor(config.STORAGE_URL_TTL / 1000),
        appUrl: config.APP_URL,
        videoUrlSecret: `${config.SESSION_SECRET}:lesson-video-urls`,
        thumbnailMaxBytes: config.THUMBNAIL_MAX_BYTES,
        thumbnailMaxPixels: config.AVATAR_MAX_PIXELS,
        attachmentMaxBytes: config.ATTACHMENT_MAX_BYTES,
      },
    });

    const ollamaKey =
      config.OLLAMA_KEY_ENCRYPTION_KEY ?? parseEncryptionKey(await loadGeneratedSecret(path.resolve(options.cwd, config.JWT_KEYS_DIR), OLLAMA_KEY_FILE));
    if (!ollamaKey) throw new Error(`${OLLAMA_KEY_FILE} in ${config.JWT_KEYS_DIR} holds no usable key: delete it to have a new one generated`);
    const ollamaBase = config.OLLAMA_BASE_URL ? new URL(config.OLLAMA_BASE_URL) : null;
    const ollama = modules.ollama.create({
      infra,
      box: new SecretBox(ollamaKey, config.OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS),
      // the operator's Ollama is trusted wherever it runs; any other host must be public
      fetch: createGuardedFetch({
        trusted: ollamaBase ? [{ hostname: ollamaBase.hostname, port: Number(ollamaBase.port || (ollamaBase.protocol === 'https:' ? 443 : 80)) }] : [],
        connectTimeoutMs: config.AI_CONNECT_TIMEOUT,
        headersTimeoutMs: config.AI_FIRST_TOKEN_TIMEOUT,
        bodyTimeoutMs: config.AI_IDLE_TIMEOUT,
      }),
      breaker: new CircuitBreaker({ failureThreshold: 5, windowMs: 30_000, openMs: 30_000, now: () => clock.now().getTime() }),
      audit: audit.service,
      auth: auth.service,
      settings: {
        revealWithinMs: 5 * 60_000,
        revealLimit: config.OLLAMA_KEY_REVEAL_LIMIT,
        defaultBaseUrl: config.OLLAMA_BASE_URL ?? null,
        dailyTokenLimit: config.AI_DAILY_TOKEN_LIMIT,
      },
    });

    const chat = modules.chat.create({
      infra,
      proxy: ollama.service.proxy,
      profiles: users.service.profiles,
      audit: audit.service,
      verifier: auth.service.bearer,
      accounts: users.service.accounts,
      settings: {
        defaultModel: config.AI_DEFAULT_MODEL,
        historyMessages: config.AI_HISTORY_MESSAGES,
        replyMaxMs: config.AI_REPLY_MAX_DURATION,
        anonymousRetentionMs: config.AI_ANONYMOUS_RETENTION,
        maxMessageChars: config.AI_MESSAGE_MAX_CHARS,
        sseHeartbeatMs: config.AI_SSE_HEARTBEAT,
        resumeRetentionSeconds: Math.ceil(config.AI_RESUME_RETENTION / 1000),
        idleTimeoutMs: config.AI_IDLE_TIMEOUT,
        socket: {
          allowedOrigins: config.FRONTEND_URL,
          authTimeoutMs: config.AI_WS_AUTH_TIMEOUT,
          pingIntervalMs: config.AI_WS_PING_INTERVAL,
          blockSuspicious: config.SECURITY_BLOCK_SUSPICIOUS,
          limits: {
            userMessages: config.AI_WS_USER_MESSAGE_LIMITS,
            anonymousMessages: config.AI_WS_ANONYMOUS_MESSAGE_LIMITS,
            ipMessages: config.AI_WS_IP_MESSAGE_LIMITS,
            globalMessages: config.AI_WS_GLOBAL_MESSAGE_LIMITS,
            userConnections: config.AI_WS_USER_CONNECTION_LIMIT,
            anonymousConnections: config.AI_WS_ANONYMOUS_CONNECTION_LIMIT,
            ipConnections: config.AI_WS_IP_CONNECTION_LIMIT,
            maxOpenConnections: config.AI_WS_MAX_CONNECTIONS,
            authFailures: config.AI_WS_AUTH_FAILURE_LIMIT,
            authBlockMs: config.AI_WS_AUTH_BLOCK,
          },
        },
      },
    });

    const stripe = config.STRIPE_SECRET_KEY
      ? createStripeProvider({
          secretKey: config.STRIPE_SECRET_KEY,
          webhookSecret: config.STRIPE_WEBHOOK_SECRET!,
          successUrl: config.STRIPE_SUCCESS_URL ?? paymentSuccessUrl,
          cancelUrl: config.STRIPE_CANCEL_URL ?? paymentCancelUrl,
          ...(config.STRIPE_API_URL ? { apiUrl: config.STRIPE_API_URL } : {}),
        })
      : null;
    const paypal = config.PAYPAL_CLIENT_ID
      ? createPayPalProvider({
          clientId: config.PAYPAL_CLIENT_ID,
          clientSecret: config.PAYPAL_CLIENT_SECRET!,
          mode: config.PAYPAL_MODE,
          webhookId: config.PAYPAL_WEBHOOK_ID!,
          returnUrl: paymentSuccessUrl,
          cancelUrl: paymentCancelUrl,
          ...(config.PAYPAL_API_URL ? { apiUrl: config.PAYPAL_API_URL } : {}),
        })
      : null;
    // The local provider takes no money: never in production, where payments are off without a real one.
    const localPayments = !production;
    const activeProvider = config.PAYMENT_PROVIDER ?? (stripe ? 'stripe' : paypal ? 'paypal' : localPayments ? 'local' : null);
    if (production && !activeProvider)
      logger.warn('neither STRIPE_SECRET_KEY nor PAYPAL_CLIENT_ID is set: checkouts and donations answer 503 payments_unavailable');
    const payments = modules.payments.create({
      infra,
      lms: lms.service.lms,
      notifications: notifications.service,
      users: users.service,
      providers: [stripe, paypal].filter((provider) => provider !== null),
      settings: {
        activeProvider,
        successUrl: paymentSuccessUrl,
        cancelUrl: paymentCancelUrl,
        appUrl: config.APP_URL,
        localSecret: localPayments ? await loadGeneratedSecret(path.resolve(options.cwd, config.JWT_KEYS_DIR), LOCAL_PAYMENTS_SECRET_FILE) : null,
        eventLeaseMs: 2 * config.JOBS_STALLED_TIMEOUT,
      },
    });

    // paid courses are sold through payments, which itself needs lms: bound once both exist
    lms.service.lms.sellThrough({ openCheckout: (buyer, courseId) => payments.service.createCheckout(buyer, courseId) });

    const admin = modules.admin.create({
      infra,
      users: users.service,
      notifications: notifications.service,
      auth: auth.service,
      reports: reports.service,
      calls: calls.service,
      audit: audit.service,
    });

    const storageFiles = modules.storage.create({ infra });
    const pages = modules.pages.create({});
    const demo = modules.demo.create({ enabled: config.DEMO_ENABLED ?? config.NODE_ENV !== 'production' });
    const ops = modules.ops.create({ infra, metricsToken: config.METRICS_TOKEN });

    const created: CreatedModules = {
      audit,
      users,
      beta,
      auth,
      calls,
      matchmaking,
      signaling,
      reports,
      notifications,
      lms,
      payments,
      ollama,
      chat,
      admin,
      storage: storageFiles,
      pages,
      demo,
      ops,
    };
    for (const module of Object.values(created)) {
      if ('close' in module && module.close) cleanups.push(module.close);
    }

    // Every module's background work, the e-mail sender and the Idempotency-Key purge, on one runtime.
    const runtime = jobs.define([
      ...mailJobs(mailer),
      ...idempotencyJobs(idempotency),
      ...Object.values(created).flatMap((module) => ('jobs' in module && module.jobs ? module.jobs : [])),
    ]);
    await runtime.start({ workers: config.WORKERS });
    metrics.watchJobQueue(jobs.queue);

    const embedded = { database: Boolean(embeddedDatabase), redis: redis.embedded, storage: storage.kind === 'local' };
    if (production && embedded.redis) {
      logger.warn(
        'neither REDIS_URL nor REDIS_SOCKET_PATH is set: running on the in-process Redis emulation, which serves ONE instance only and loses its data on restart',
      );
    }
    if (production && mailer.kind === 'log') {
      logger.warn('neither SMTP_URL nor RESEND_API_KEY is set: e-mails (verification, password reset, notices) are not sent, only logged without their text');
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
      realtime,
      events,
      locks,
      jobs: { queue: jobs.queue, runtime },
      idempotency,
      modules: created,
      services: {
        audit: audit.service,
        users: users.service,
        accounts: users.service.accounts,
        profiles: users.service.profiles,
        beta: beta.service,
        auth: auth.service,
        tokens: auth.service.tokens,
        bearer: auth.service.bearer,
        calls: calls.service,
        matchmaking: matchmaking.service,
        reports: reports.service,
        notifications: notifications.service,
        lms: lms.service,
        payments: payments.service,
        ollama: ollama.service,
        chat: chat.service,
        admin: admin.service,
      },
      embedded,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
