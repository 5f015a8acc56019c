import type { Server } from 'socket.io';
import type { Config } from '../config/load.js';
import type { Logger } from '../infra/logger.js';
import { createSocketServer, type RealtimeBus } from '../infra/realtime.js';
import type { RedisConnection } from '../infra/redis.js';
import type { AccessTokenVerifier } from '../shared/auth.js';
import { registerSocketAuth, type AccountGate } from '../shared/socket-auth.js';
import type { SecurityEventSink } from '../shared/security-events.js';
import { registerSocketLimits } from '../shared/socket-limits.js';
import type { App } from './types.js';

export interface SocketDeps {
  config: Config;
  logger: Logger;
  redis: RedisConnection;
  realtime: RealtimeBus;
  verifier: AccessTokenVerifier;
  accounts: AccountGate;
  /** Where refused handshakes are reported (the activity log). */
  security: SecurityEventSink;
  /** The modules' socket handlers; each returns what stops it. */
  handlers: Array<(io: Server) => () => Promise<void>>;
}

/**
 * Socket.io on the HTTP server's port: authentication and limits at the handshake, then the
 * modules' handlers. On shutdown clients are told and dropped, and the handlers stop.
 */
export function registerSockets(app: App, { config, logger, redis, realtime, verifier, accounts, security, handlers }: SocketDeps): void {
  const sockets = createSocketServer(app.server, {
    corsOrigins: config.FRONTEND_URL,
    maxMessageBytes: config.SIGNAL_MAX_BYTES,
    redis: redis.embedded ? undefined : redis.client,
    channelPrefix: config.REALTIME_CHANNEL_PREFIX,
    adapter: config.REALTIME_ADAPTER,
    onRedisError: (error) => logger.warn({ err: { message: error.message } }, 'Socket.io Redis adapter connection error'),
  });
  realtime.attach(sockets.io);
  registerSocketAuth(sockets.io, verifier, accounts, { security, trustProxy: config.TRUST_PROXY });
  registerSocketLimits(sockets.io, {
    allowedOrigins: config.FRONTEND_URL,
    trustProxy: config.TRUST_PROXY,
    maxPerUser: config.SOCKET_MAX_PER_USER,
    maxPerIp: config.SOCKET_MAX_PER_IP,
    eventsPerSecond: config.SOCKET_EVENT_RATE,
    eventBurst: config.SOCKET_EVENT_BURST,
  });
  const stops = handlers.map((register) => register(sockets.io));
  // As shutdown begins, socket clients are told and dropped, and the handlers stop (this
  // instance's searches start ending). The server stops listening only once preClose is done,
  // so their Redis work is awaited in onClose, still before the container closes Redis.
  let stopping: Promise<unknown> | undefined;
  app.addHook('preClose', (done) => {
    stopping = Promise.all(stops.map((stop) => stop().catch((error: unknown) => logger.error({ err: error }, 'could not stop a socket handler'))));
    sockets.dropClients();
    done();
  });
  app.addHook('onClose', async () => {
    await stopping;
    await sockets.close();
  });
}
