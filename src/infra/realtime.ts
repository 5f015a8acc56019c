import type { Server as HttpServer } from 'node:http';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Server, type Socket } from 'socket.io';
import type { Redis } from 'ioredis';
import { socketRooms } from './redis-keys.js';

/** What the socket auth middleware leaves on every socket (only the part this file reads). */
interface SocketData {
  auth?: { userId: string };
}

/**
 * How services reach connected users, on whichever instance holds their sockets. Bound to
 * the Socket.io server once the HTTP server exists; every socket joins `user:<id>` and
 * `session:<sid>`, and the socket taking part in a call `call:<roomId>`.
 */
export class RealtimeBus {
  private io: Server | undefined;

  attach(io: Server): void {
    this.io = io;
  }

  private get server(): Server {
    if (!this.io) throw new Error('realtime server not attached');
    return this.io;
  }

  emitToUser(userId: string, event: string, payload?: unknown): void {
    if (payload === undefined) this.server.to(socketRooms.user(userId)).emit(event);
    else this.server.to(socketRooms.user(userId)).emit(event, payload);
  }

  /**
   * Puts this socket in the call's Socket.io room. A call room holds one socket per user:
   * the device that joined last takes the call from the user's other sockets, on any instance.
   */
  joinCall(socket: Socket, roomId: string, userId: string): void {
    const room = socketRooms.call(roomId);
    this.server.in(socketRooms.user(userId)).except(socket.id).socketsLeave(room);
    void socket.join(room);
  }

  inCall(socket: Socket, roomId: string): boolean {
    return socket.rooms.has(socketRooms.call(roomId));
  }

  /**
   * Sends to the partner's socket in the call. When that socket is on this instance the
   * message goes straight to it: signaling is the hot path, and a Redis publish per message
   * (read back on this instance's own subscription) was most of its cost and of its tail
   * latency in bench:realtime.
   */
  relayInCall(socket: Socket, roomId: string, partnerId: string, event: string, payload: unknown): void {
    const room = socketRooms.call(roomId);
    const partner = this.localPartner(socket, room, partnerId);
    if (partner) partner.emit(event, payload);
    else socket.to(room).emit(event, payload);
  }

  /** The partner's socket in the call when it is on this instance (a call room holds one socket per user). */
  private localPartner(socket: Socket, room: string, partnerId: string): Socket | undefined {
    const here = this.server.sockets.adapter.rooms.get(room);
    if (here?.size !== 2) return undefined;
    for (const id of here) {
      if (id === socket.id) continue;
      const other = this.server.sockets.sockets.get(id);
      return (other?.data as SocketData | undefined)?.auth?.userId === partnerId ? other : undefined;
    }
    return undefined;
  }

  /** Takes every socket out of the call, on every instance; later relays find no member. */
  closeCall(roomId: string): void {
    if (!this.io) return;
    const room = socketRooms.call(roomId);
    this.io.in(room).socketsLeave(room);
  }

  /** Whether the user has a connected socket on any instance. */
  async isOnline(userId: string): Promise<boolean> {
    return (await this.server.in(socketRooms.user(userId)).fetchSockets()).length > 0;
  }

  /** Distinct users with a socket, across every instance. */
  async onlineUserCount(): Promise<number> {
    const sockets = await this.server.fetchSockets();
    return new Set(sockets.map((socket) => (socket.data as SocketData).auth?.userId)).size;
  }

  /** Closes the sockets of these device sessions everywhere (logout, ban, reuse). */
  disconnectSessions(sessionIds: string[]): void {
    if (!this.io || !sessionIds.length) return;
    this.io.in(sessionIds.map(socketRooms.session)).disconnectSockets(true);
  }
}

export interface RealtimeOptions {
  corsOrigins: string[];
  maxMessageBytes: number;
  /** Real Redis: the sharded Redis adapter relays events between instances. */
  redis?: Redis | undefined;
  channelPrefix: string;
  adapter: 'sharded' | 'classic';
  onRedisError: (error: Error) => void;
}

const SUBSCRIPTION_COMMANDS = ['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe'] as const;
const PUBLISH_COMMANDS = ['publish', 'spublish'] as const;

/**
 * The Redis adapter sends (un)subscriptions, and some publications (its answers to other
 * instances' requests), without awaiting them, so while Redis is down or this instance is
 * closing they would fail as unhandled rejections. They are reported as connection errors
 * instead; ioredis subscribes again once it reconnects.
 */
function reportUnawaitedFailures(client: Redis, names: readonly string[], onError: (error: Error) => void): void {
  const commands = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of names) {
    const send = commands[name]!.bind(client);
    commands[name] = (...args: unknown[]) => {
      const reply = send(...args);
      reply.catch(onError);
      return reply;
    };
  }
}

export interface SocketServer {
  io: Server;
  /**
   * Tells every client of this instance that it is shutting down (`server_shutdown`), then
   * drops their connections without Socket.io's disconnect packet: after "io server
   * disconnect" a client stays away, after "transport close" it reconnects on its own, to
   * another instance behind the load balancer.
   */
  dropClients(): void;
  /** Closes the adapter's Redis connections (after dropClients). */
  close(): Promise<void>;
}

export function createSocketServer(httpServer: HttpServer, options: RealtimeOptions): SocketServer {
  const io = new Server(httpServer, {
    cors: { origin: options.corsOrigins, credentials: true },
    maxHttpBufferSize: options.maxMessageBytes,
    // the demo page loads the client bundle from /socket.io/socket.io.min.js
    serveClient: true,
    // Socket.io's default interval: at 10,000 sockets a 10 s interval alone was 1,000 ping/pong
    // pairs a second, and sockets that connected together ping together, which showed as the
    // signaling relay's p99 (48 ms at 10 s, 7 ms at 25 s in bench:realtime).
    pingInterval: 25_000,
    pingTimeout: 10_000,
  });
  const clients: Redis[] = [];
  if (options.redis) {
    const pub = options.redis.duplicate();
    const sub = options.redis.duplicate();
    for (const client of [pub, sub]) client.on('error', options.onRedisError);
    reportUnawaitedFailures(sub, SUBSCRIPTION_COMMANDS, options.onRedisError);
    reportUnawaitedFailures(pub, PUBLISH_COMMANDS, options.onRedisError);
    clients.push(pub, sub);
    // Sharded pub/sub (Redis 7): a message to `user:<id>` reaches only the instances that
    // hold that room, which suits 1:1 signaling better than broadcasting to every instance.
    // Classic pub/sub works on any Redis.
    io.adapter(
      options.adapter === 'sharded'
        ? createShardedAdapter(pub, sub, { channelPrefix: options.channelPrefix, subscriptionMode: 'dynamic' })
        : createAdapter(pub, sub, { key: options.channelPrefix }),
    );
  }
  return {
    io,
    dropClients: () => {
      io.local.emit('server_shutdown', { reconnect: true });
      io.engine.close();
    },
    close: async () => {
      await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}

export type { Socket };
