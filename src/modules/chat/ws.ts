import { Server, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../../shared/errors.js';
import { originAllowed } from '../../shared/socket-limits.js';
import type { ChatSocketGateway } from './ws-gateway.js';

const CHAT_SOCKET_PATH = '/ws';

/**
 * The largest frame /ws reads (ws's maxPayload; a larger one closes the connection with
 * 1009): a message of AI_MESSAGE_MAX_CHARS, each character escaped in JSON as \uXXXX at worst,
 * plus room for an authenticate frame's token.
 */
const maxFrameBytes = (maxMessageChars: number) => Math.max(16 * 1024, 6 * maxMessageChars + 1024);

export interface ChatSocketRouteOptions {
  gateway: ChatSocketGateway;
  maxMessageChars: number;
  /** FRONTEND_URL: the browser origins that may open /ws (the server's own always may). */
  allowedOrigins: string[];
}

const pathOf = (url: string | undefined) => (url ?? '').split('?', 1)[0];

/**
 * GET /ws, the WebSocket chat, on the HTTP server's port next to Socket.io. @fastify/websocket
 * routes every upgrade it hears through Fastify, where Socket.io's own (under /socket.io/)
 * would meet a 404 written over Socket.io's handshake. So it hears only the upgrades of /ws,
 * through a server of its own that never listens; Socket.io keeps answering its path, and
 * any other upgrade is left as before (Engine.IO ends it). Engine.IO also ends a /ws upgrade
 * that nothing has answered within a second (its destroyUpgradeTimeout): the checks before
 * the upgrade are one Redis script, well within it.
 *
 * The upgrade is refused with an HTTP error before any WebSocket exists (so before any frame
 * can be read) when the browser Origin is not allowed, the IP is blocked, over its connection
 * window, or every instance together holds AI_WS_MAX_CONNECTIONS.
 */
export const chatSocketRoutes: FastifyPluginAsync<ChatSocketRouteOptions> = async (app, { gateway, maxMessageChars, allowedOrigins }) => {
  const upgrades = new Server();
  const claim = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(request.url) === CHAT_SOCKET_PATH) upgrades.emit('upgrade', request, socket, head);
  };
  app.server.on('upgrade', claim);

  await app.register(fastifyWebsocket, {
    options: { server: upgrades, maxPayload: maxFrameBytes(maxMessageChars) },
    // Runs after the chat module's own preClose has stopped the replies (a child's hooks run
    // after its parent's): their clients have had their last frames when the close frame comes.
    preClose: async () => {
      app.server.off('upgrade', claim);
      await gateway.close();
    },
    // ws has already closed the connection (1009 for an oversized frame, 1002 for a protocol error)
    errorHandler: (error, _socket, request) => request.log.debug({ err: error }, 'a /ws connection failed'),
  });

  const admitted = new WeakMap<IncomingMessage, string>();
  app.route({
    method: 'GET',
    url: CHAT_SOCKET_PATH,
    schema: { hide: true },
    preValidation: async (request) => {
      if (!request.ws) return;
      if (!originAllowed(request.raw, allowedOrigins)) throw new AppError('origin_not_allowed', 'This browser origin may not open /ws');
      const admission = await gateway.admit(request.ip);
      if (admission.admitted) {
        admitted.set(request.raw, admission.id);
        return;
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
      const headers = { 'retry-after': String(retryAfterSeconds) };
      if (admission.reason === 'ip_blocked')
        throw new AppError('ip_blocked', `Too many failed authentications from this address; retry in ${retryAfterSeconds} s`, { retryAfterSeconds }, headers);
      if (admission.reason === 'rate_limited')
        throw new AppError('rate_limited', `Too many connections from this address, retry in ${retryAfterSeconds} s`, { retryAfterSeconds }, headers);
      throw new AppError('too_many_connections', 'The AI chat is full; retry shortly', { retryAfterSeconds }, headers);
    },
    handler: async () => {
      throw new AppError('route_not_found', `${CHAT_SOCKET_PATH} is a WebSocket: connect with a WebSocket client`);
    },
    wsHandler: (socket, request) => {
      const header = (name: string) => {
        const value = request.headers[name];
        return Array.isArray(value) ? value[0] : value;
      };
      gateway.accept(socket, {
        id: admitted.get(request.raw)!,
        ip: request.ip,
        userAgent: header('user-agent'),
        authorization: header('authorization'),
        sessionId: header('x-session-id'),
      });
    },
  });
};
