import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv6 } from 'node:net';
import type { Server, Socket } from 'socket.io';
import type { SocketData } from './socket-auth.js';
import { emitError, handshakeError, type SocketErrorCode } from './socket-errors.js';

export interface SocketLimits {
  /** Browser origins allowed to open a socket (FRONTEND_URL); the server's own origin always is. */
  allowedOrigins: string[];
  /** TRUST_PROXY, read as Fastify reads it, so a socket's IP is the one HTTP limits use. */
  trustProxy: boolean | number | string;
  maxPerUser: number;
  maxPerIp: number;
  /** Token bucket per socket: events refilled per second, and the bucket's size. */
  eventsPerSecond: number;
  eventBurst: number;
}

/** The largest payload each client event may carry (JSON characters); others get the default. */
const EVENT_MAX_CHARS: Record<string, number> = { webrtc_offer: 24_000, webrtc_answer: 24_000, webrtc_ice: 2_000 };
const DEFAULT_EVENT_MAX_CHARS = 1_024;

/** The names proxy-addr (Fastify) accepts in a TRUST_PROXY list, and the ranges it reads them as. */
const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** Which addresses TRUST_PROXY trusts, as proxy-addr (Fastify) reads true / a hop count / a list of IPs, CIDRs and range names. */
export function trustFunction(trustProxy: SocketLimits['trustProxy']): (address: string, hop: number) => boolean {
  if (typeof trustProxy === 'boolean') return () => trustProxy;
  if (typeof trustProxy === 'number') return (_address, hop) => hop < trustProxy;
  const trusted = new BlockList();
  const entries = trustProxy.split(',').flatMap((part) => NAMED_RANGES[part.trim()] ?? [part.trim()]);
  for (const entry of entries) {
    if (!entry) continue;
    const [address, prefix] = entry.split('/');
    const type = isIPv6(address!) ? 'ipv6' : 'ipv4';
    if (prefix) trusted.addSubnet(address!, Number(prefix), type);
    else trusted.addAddress(address!, type);
  }
  return (address) => trusted.check(address.replace(/^::ffff:/, ''), isIPv6(address.replace(/^::ffff:/, '')) ? 'ipv6' : 'ipv4');
}

/** The client's address: the connection's, then X-Forwarded-For from the right while the hop is trusted. */
export function clientAddress(request: IncomingMessage, trust: (address: string, hop: number) => boolean): string {
  let address = request.socket.remoteAddress ?? 'unknown';
  const forwarded = request.headers['x-forwarded-for'];
  const chain = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? ''))
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .reverse();
  for (const [hop, next] of chain.entries()) {
    if (!trust(address, hop)) break;
    address = next;
  }
  return address;
}

/** Whether a handshake's Origin may open a socket: none (not a browser), an allowed origin, or the server's own. */
export function originAllowed(request: IncomingMessage, allowed: string[]): boolean {
  const origin = request.headers.origin;
  // native apps and servers send no Origin; only browsers do, and they cannot forge it
  if (!origin) return true;
  if (allowed.includes(origin)) return true;
  try {
    // the server's own pages (the demo) are same-origin
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/**
 * Limits on sockets, on this instance: the handshake's Origin must be an allowed browser
 * origin (Socket.io's CORS setting does not apply to WebSocket upgrades), at most
 * `maxPerIp` connections per client IP and `maxPerUser` sockets per user, and a token
 * bucket per socket: an event beyond it is dropped with `error { code: "rate_limited" }`,
 * and a socket that keeps sending while limited is disconnected. Each event's payload is
 * also bounded (`payload_too_large`). Register it after the auth middleware.
 */
export function registerSocketLimits(io: Server, limits: SocketLimits): void {
  const trust = trustFunction(limits.trustProxy);
  const perIp = new Map<string, number>();
  const perUser = new Map<string, number>();
  const addressOf = new WeakMap<IncomingMessage, string>();
  const decrement = (counts: Map<string, number>, key: string) => {
    const left = (counts.get(key) ?? 1) - 1;
    if (left > 0) counts.set(key, left);
    else counts.delete(key);
  };

  io.engine.opts.allowRequest = (request, callback) => {
    // Engine.IO answers 403 with the code as the message
    const refuse = (code: SocketErrorCode) => callback(code, false);
    if (!originAllowed(request, limits.allowedOrigins)) return refuse('origin_not_allowed');
    const address = clientAddress(request, trust);
    if ((perIp.get(address) ?? 0) >= limits.maxPerIp) return refuse('too_many_sockets');
    addressOf.set(request, address);
    callback(null, true);
  };
  io.engine.on('connection', (connection: { request: IncomingMessage; once(event: 'close', listener: () => void): void }) => {
    const address = addressOf.get(connection.request) ?? clientAddress(connection.request, trust);
    perIp.set(address, (perIp.get(address) ?? 0) + 1);
    connection.once('close', () => decrement(perIp, address));
  });

  // after the auth middleware, which sets the user
  io.use((socket, next) => {
    const { userId } = (socket.data as SocketData).auth;
    if ((perUser.get(userId) ?? 0) >= limits.maxPerUser) return next(handshakeError('too_many_sockets', 'Too many sockets for this account'));
    perUser.set(userId, (perUser.get(userId) ?? 0) + 1);
    socket.once('disconnect', () => decrement(perUser, userId));
    next();
  });

  io.on('connection', (socket: Socket) => {
    let tokens = limits.eventBurst;
    let refilledAt = performance.now();
    let refused = 0;
    let toldAt = -Infinity;
    socket.use(([event, ...args], next) => {
      const now = performance.now();
      tokens = Math.min(limits.eventBurst, tokens + ((now - refilledAt) / 1000) * limits.eventsPerSecond);
      refilledAt = now;
      if (tokens < 1) {
        refused += 1;
        // a client that keeps sending a burst's worth while limited is not a client to serve
        if (refused > limits.eventBurst) return void socket.disconnect(true);
        // told at most once a second: the answer must not become the flood
        if (now - toldAt >= 1000) {
          toldAt = now;
          emitError(socket, 'rate_limited', 'Too many events; slow down', { retryAfterSeconds: 1 });
        }
        return;
      }
      tokens -= 1;
      refused = 0;
      const payload = args.filter((arg) => typeof arg !== 'function');
      const size = payload.length ? JSON.stringify(payload).length : 0;
      if (size > (EVENT_MAX_CHARS[String(event)] ?? DEFAULT_EVENT_MAX_CHARS)) {
        return emitError(socket, 'payload_too_large', `The ${String(event)} payload is too large`);
      }
      next();
    });
  });
}
