import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ShuttingDownError } from '../shared/errors.js';
import type { App } from './types.js';

/**
 * Draining: once the listener is closed (the first step of a shutdown) or close() has begun,
 * a new request on a connection opened before runs no handler; requests already in their
 * handlers finish; connections that never sent a request are closed. Registered after CORS, so a browser can read the 503.
 */
export function registerDraining(app: App): void {
  let listened = false;
  let closing = false;
  app.server.once('listening', () => (listened = true));
  // Connections that have not carried a request yet (a browser's preconnect, a client's spare
  // keep-alive socket): Node's closeIdleConnections leaves them open, so a shutdown would wait
  // for the headers timeout or cut everything at SHUTDOWN_TIMEOUT. They go as close() begins.
  const requestless = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    requestless.add(socket);
    socket.once('close', () => requestless.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage) => requestless.delete(request.socket));
  app.server.on('upgrade', (request: IncomingMessage) => requestless.delete(request.socket));
  app.addHook('preClose', (done) => {
    closing = true;
    for (const socket of requestless) socket.destroy();
    done();
  });
  app.addHook('onRequest', (_request, _reply, done) => done(closing || (listened && !app.server.listening) ? new ShuttingDownError() : undefined));
}
