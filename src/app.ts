import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type RawServerDefault, type FastifyBaseLogger } from 'fastify';
import cors from '@fastify/cors';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransformObject, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Container } from './container.js';
import { failFastRedisStore } from './infra/rate-limit-store.js';
import { deferredChildLoggerFactory } from './infra/request-logger.js';
import { auditRoutes } from './modules/audit/routes.js';
import { authRoutes } from './modules/auth/routes.js';
import { betaRoutes } from './modules/beta/routes.js';
import { opsRoutes } from './modules/ops/routes.js';
import { demoRoutes } from './modules/demo/routes.js';
import { pagesRoutes } from './modules/pages/routes.js';
import { projectRoot } from './infra/paths.js';
import path from 'node:path';
import { registerMatchmakingGateway } from './modules/matchmaking/gateway.js';
import { callsRoutes } from './modules/calls/routes.js';
import { reportsRoutes } from './modules/reports/routes.js';
import { adminRoutes } from './modules/admin/routes.js';
import { adminJobsRoutes } from './modules/admin/jobs-routes.js';
import { registerSignalingGateway } from './modules/signaling/gateway.js';
import { createSocketServer } from './infra/realtime.js';
import { registerSocketAuth } from './shared/socket-auth.js';
import { registerSocketLimits } from './shared/socket-limits.js';
import { localStorageRoutes } from './modules/storage/routes.js';
import { usersRoutes } from './modules/users/routes.js';
import { LocalStorage } from './infra/storage.js';
import multipart from '@fastify/multipart';
import { registerAuthGuard } from './shared/auth.js';
import { frameworkErrorHandler, registerErrorHandling } from './shared/error-handler.js';
import { registerInputGuards } from './shared/input.js';
import { documentTransform } from './shared/openapi.js';
import { AppError, RateLimitedError, ShuttingDownError } from './shared/errors.js';
import { computeSecurityHeaders } from './shared/security-headers.js';
import { serializerCompiler } from './shared/serializer.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: no access-log line for this route (probes). */
    accessLog?: boolean;
  }
}

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a caller's X-Request-Id (from a proxy) when it is sane, so one id follows a request end to end. */
function requestId(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

export async function buildApp(container: Container): Promise<App> {
  const { config, metrics } = container;
  // Typed as Fastify's logger so the instance type stays the default one routes expect.
  const loggerInstance: FastifyBaseLogger = container.logger;
  const app = Fastify({
    loggerInstance,
    // Fastify's two lines per request are replaced by the one access line of the onResponse hook.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    childLoggerFactory: deferredChildLoggerFactory,
    genReqId: requestId,
    // A hop count trusts that many proxies in front of us, as proxy-addr counts them.
    trustProxy: typeof config.TRUST_PROXY === 'number' ? trustHops(config.TRUST_PROXY) : config.TRUST_PROXY,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // A client that trickles its request in would hold a connection (and its memory) for ever:
    // Node answers 408 and closes it. Node checks these deadlines every connectionsCheckingInterval
    // (30 s by default), so the interval follows the shorter deadline.
    requestTimeout: config.HTTP_REQUEST_TIMEOUT,
    http: {
      requestTimeout: config.HTTP_REQUEST_TIMEOUT,
      headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT, config.HTTP_REQUEST_TIMEOUT),
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(Math.min(config.HTTP_HEADERS_TIMEOUT, config.HTTP_REQUEST_TIMEOUT) / 4))),
    },
    // Requests that arrive while closing get our own 503 (the hook below), not Fastify's body.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  registerInputGuards(app);

  // Headers every response carries, in one synchronous hook: the request id, and helmet's
  // security headers computed once at start.
  const staticHeaders = config.SECURITY_HEADERS_ENABLED
    ? computeSecurityHeaders({
        strictTransportSecurity: { maxAge: config.HSTS_MAX_AGE, includeSubDomains: true },
        contentSecurityPolicy: {
          // Outside production the server is reached over plain http (LAN, tunnels): do not
          // ask browsers to rewrite its own URLs to https.
          directives: { upgradeInsecureRequests: config.NODE_ENV === 'production' ? [] : null },
        },
      })
    : {};
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(staticHeaders).header('x-request-id', request.id);
    done();
  });
  // One access-log line per request (instead of Fastify's two) and the duration histogram.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeHttpRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    if (request.auth) {
      const userId = request.auth.userId;
      container.services.users.touchLastActive(userId).catch((error: unknown) => loggerInstance.warn({ err: error, userId }, 'could not record activity'));
    }
    if (request.routeOptions.config.accessLog !== false) {
      // The root logger with the id as a field: the same line request.log would write,
      // without creating a child logger for every request.
      loggerInstance.info(
        {
          requestId: request.id,
          method: request.method,
          url: request.url,
          statusCode: reply.statusCode,
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
          ip: request.ip,
        },
        'request completed',
      );
    }
    done();
  });

  await app.register(cors, {
    origin: config.FRONTEND_URL,
    credentials: true,
    // what the routes use and read; the plugin's default allows only GET, HEAD and POST
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'If-Match', 'X-CSRF-Token', 'X-Request-Id'],
    // what a browser client may read of a response
    exposedHeaders: ['X-Request-Id', 'Retry-After', 'ETag'],
    // browsers cap it (Chromium at 2 h); saves a preflight per request
    maxAge: 7200,
  });
  // Draining: once the listener is closed (the first step of a shutdown) or close() has begun,
  // a new request on a connection opened before runs no handler; requests already in their
  // handlers finish. After CORS, so a browser can read the 503.
  let listened = false;
  let closing = false;
  app.server.once('listening', () => (listened = true));
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, _reply, done) => done(closing || (listened && !app.server.listening) ? new ShuttingDownError() : undefined));
  await app.register(rateLimit, {
    global: true,
    max: config.RATE_LIMIT_REQUESTS,
    timeWindow: config.RATE_LIMIT_WINDOW,
    // On real Redis the counters are shared by every instance. The in-process emulation runs
    // the store's Lua script in a JavaScript Lua VM (about 1 ms per request); it serves one
    // instance only anyway, so its counters stay in the plugin's in-memory store.
    ...(container.redis.embedded ? {} : { store: failFastRedisStore(container.redis.client, 'parley:rate-limit:') }),
    nameSpace: 'parley:rate-limit:',
    // The plugin's own key (the address, IPv6 by /64), except that a client that hung up while an
    // earlier hook awaited has no address left: its request ends here, answered to no one, instead
    // of failing inside the plugin as an unexpected error.
    keyGenerator: (request) => {
      const ip = request.ip as string | undefined;
      if (ip === undefined) throw new AppError('bad_request', 'The client closed the connection');
      return normalizeIP(ip);
    },
    // The global limit fails open when Redis is down (availability wins, /ready reports the
    // outage); the limits that protect accounts set skipOnError: false and answer 503.
    skipOnError: true,
    errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Parley API',
        version: '0.1.0',
        description: 'Real-time speaking practice backend. Errors are always `{ error: { code, message, details? } }`.',
      },
      servers: [{ url: config.APP_URL }],
      tags: [
        { name: 'auth', description: 'Accounts, tokens and device sessions' },
        { name: 'account', description: 'The signed-in account' },
        { name: 'users', description: 'Profiles, avatars and account deletion' },
        { name: 'calls', description: 'Call history and ratings' },
        { name: 'safety', description: 'Reports' },
        { name: 'admin', description: 'Moderation and administration (admins only)' },
        { name: 'private beta', description: 'Invite keys' },
        { name: 'ops', description: 'Health, readiness and metrics' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: documentTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // as for the API's own CSP: no https upgrade outside production, where /docs is served over http
    transformStaticCSP: (header) => (config.NODE_ENV === 'production' ? header : header.replace(/\s*upgrade-insecure-requests;?/, '')),
  });
  app.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger());

  registerAuthGuard(app, container.services.tokens, container.services.users);
  const { services } = container;
  await app.register(authRoutes, {
    auth: services.auth,
    tokens: services.tokens,
    users: services.users,
    limits: {
      login: config.AUTH_LOGIN_LIMIT,
      register: config.AUTH_REGISTER_LIMIT,
      forgotPassword: config.AUTH_FORGOT_PASSWORD_LIMIT,
      refresh: { max: config.RATE_LIMIT_REQUESTS, windowMs: config.RATE_LIMIT_WINDOW },
    },
  });
  await app.register(multipart, { limits: { files: 1, fields: 0, parts: 2, fileSize: config.AVATAR_MAX_BYTES } });
  await app.register(usersRoutes, { users: services.users, auth: services.auth, avatarMaxBytes: config.AVATAR_MAX_BYTES });
  if (container.storage instanceof LocalStorage) await app.register(localStorageRoutes, { storage: container.storage });
  await app.register(auditRoutes, { audit: services.audit });
  await app.register(betaRoutes, { beta: services.beta });

  await app.register(callsRoutes, { calls: services.calls });
  await app.register(reportsRoutes, { reports: services.reports, admin: services.admin });
  await app.register(adminRoutes, { admin: services.admin, clock: container.clock });
  await app.register(adminJobsRoutes, { jobs: container.jobs.queue });

  // Socket.io on the same port: matchmaking and signaling.
  const sockets = createSocketServer(app.server, {
    corsOrigins: config.FRONTEND_URL,
    maxMessageBytes: config.SIGNAL_MAX_BYTES,
    redis: container.redis.embedded ? undefined : container.redis.client,
    channelPrefix: config.REALTIME_CHANNEL_PREFIX,
    adapter: config.REALTIME_ADAPTER,
    onRedisError: (error) => container.logger.warn({ err: { message: error.message } }, 'Socket.io Redis adapter connection error'),
  });
  container.realtime.attach(sockets.io);
  registerSocketAuth(sockets.io, services.tokens, services.users);
  registerSocketLimits(sockets.io, {
    allowedOrigins: config.FRONTEND_URL,
    trustProxy: config.TRUST_PROXY,
    maxPerUser: config.SOCKET_MAX_PER_USER,
    maxPerIp: config.SOCKET_MAX_PER_IP,
    eventsPerSecond: config.SOCKET_EVENT_RATE,
    eventBurst: config.SOCKET_EVENT_BURST,
  });
  const stopMatchmaking = registerMatchmakingGateway(sockets.io, {
    matchmaking: services.matchmaking,
    bus: container.realtime,
    logger: container.logger,
    searchTimeoutMs: config.MATCH_SEARCH_TIMEOUT,
    reconnectGraceMs: config.CALL_RECONNECT_GRACE,
    heartbeatIntervalMs: Math.max(100, Math.floor(config.MATCH_INSTANCE_TTL / 3)),
  });
  registerSignalingGateway(sockets.io, { matchmaking: services.matchmaking, bus: container.realtime, logger: container.logger });
  // As shutdown begins, socket clients are told and dropped, and this instance's searches
  // start ending. The server stops listening only once preClose is done, so the Redis work
  // is awaited in onClose, still before the container closes Redis.
  let retiring: Promise<void> | undefined;
  app.addHook('preClose', (done) => {
    retiring = stopMatchmaking().catch((error: unknown) => container.logger.error({ err: error }, 'could not end the searches of this instance'));
    sockets.dropClients();
    done();
  });
  app.addHook('onClose', async () => {
    await retiring;
    await sockets.close();
  });

  await app.register(pagesRoutes, { folder: path.join(projectRoot(), 'public/pages') });
  if (config.DEMO_ENABLED ?? config.NODE_ENV !== 'production') await app.register(demoRoutes, { folder: path.join(projectRoot(), 'public/demo') });

  await app.register(opsRoutes, {
    db: container.db,
    redis: container.redis.client,
    registry: metrics.registry,
    clock: container.clock,
    metricsToken: config.METRICS_TOKEN,
  });

  return app;
}
