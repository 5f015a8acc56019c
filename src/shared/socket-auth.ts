import type { Server, Socket } from 'socket.io';
import type { AccessTokenVerifier, AuthContext } from './auth.js';
import { AppError } from './errors.js';
import type { SecurityEventSink } from './security-events.js';
import { handshakeError, isSocketErrorCode, type SocketErrorCode } from './socket-errors.js';
import { clientAddress, trustFunction, type SocketLimits } from './socket-limits.js';

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
 * refused. A refusal reaches the client as connect_error with `data: { code }`, and is reported
 * as a security event with the client's IP (TRUST_PROXY applied, as the socket limits read it).
 */
export function registerSocketAuth(
  io: Server,
  verifier: AccessTokenVerifier,
  accounts: AccountGate,
  { security, trustProxy }: { security: SecurityEventSink; trustProxy: SocketLimits['trustProxy'] },
): void {
  const trust = trustFunction(trustProxy);
  io.use((socket, next) => {
    const fromAuth = (socket.handshake.auth as { token?: unknown }).token;
    const header = socket.handshake.headers.authorization;
    const token = typeof fromAuth === 'string' ? fromAuth.replace(/^Bearer\s+/i, '') : header?.replace(/^Bearer\s+/i, '');
    const refuse = (code: SocketErrorCode, message: string) => {
      // our own failure to check the token is not the client's doing
      if (code !== 'internal_error')
        security.reportSecurityEvent({
          type: 'socket_auth_failed',
          ip: clientAddress(socket.request, trust),
          userAgent: socket.handshake.headers['user-agent'],
          metadata: { code },
        });
      next(handshakeError(code, message));
    };
    if (!token) return refuse('unauthorized', 'Send the access token as auth.token');
    verifier
      .verify(token)
      .then(async (auth) => {
        if (!(await accounts.isActive(auth.userId))) return refuse('account_banned', 'This account cannot connect');
        (socket.data as SocketData).auth = auth;
        next();
      })
      .catch((error: unknown) =>
        error instanceof AppError && isSocketErrorCode(error.code) ? refuse(error.code, error.message) : refuse('internal_error', 'Could not check the token'),
      );
  });
}
