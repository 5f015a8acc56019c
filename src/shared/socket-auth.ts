import type { Server, Socket } from 'socket.io';
import type { AccessTokenVerifier, AuthContext } from './auth.js';
import { AppError } from './errors.js';

export interface SocketData {
  auth: AuthContext;
}

export type ParleySocket = Socket<Record<string, (...args: never[]) => void>, Record<string, (...args: never[]) => void>, Record<string, never>, SocketData>;

/** Accounts that may not connect (banned, deleted). */
export interface AccountGate {
  isActive(userId: string): Promise<boolean>;
}

/**
 * Every socket authenticates at the handshake with the same access token and checks as
 * HTTP (`auth.token`, or an Authorization header); revoked sessions and banned accounts are
 * refused. A refusal reaches the client as connect_error with `data: { code }`.
 */
export function registerSocketAuth(io: Server, verifier: AccessTokenVerifier, accounts: AccountGate): void {
  io.use((socket, next) => {
    const fromAuth = (socket.handshake.auth as { token?: unknown }).token;
    const header = socket.handshake.headers.authorization;
    const token = typeof fromAuth === 'string' ? fromAuth.replace(/^Bearer\s+/i, '') : header?.replace(/^Bearer\s+/i, '');
    const refuse = (code: string, message: string) => next(Object.assign(new Error(message), { data: { code, message } }));
    if (!token) return refuse('unauthorized', 'Send the access token as auth.token');
    verifier
      .verify(token)
      .then(async (auth) => {
        if (!(await accounts.isActive(auth.userId))) return refuse('account_banned', 'This account cannot connect');
        (socket.data as SocketData).auth = auth;
        next();
      })
      .catch((error: unknown) => (error instanceof AppError ? refuse(error.code, error.message) : refuse('internal_error', 'Could not check the token')));
  });
}

/** Sends a Socket.io error the way clients expect it: the `error` event with `{ code, message }`. */
export function emitError(socket: Socket, code: string, message: string, details?: Record<string, unknown>): void {
  socket.emit('error', { code, message, ...(details ? { details } : {}) });
}
