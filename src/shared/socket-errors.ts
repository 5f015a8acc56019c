import type { Socket } from 'socket.io';

/**
 * The stable catalogue of error codes a Socket.io client may branch on, and how each reaches
 * it: `connect_error` with `data: { code, message }` (the handshake is refused), the `error`
 * event with `{ code, message, details? }`, or, before Socket.io sees the connection, an
 * Engine.IO handshake refused with HTTP 403 whose message is the code. Add codes, never
 * rename one; a code shared with HTTP means what it means there (src/shared/errors.ts).
 */
export const SOCKET_ERROR_CODES = {
  unauthorized: 'connect_error: no access token sent',
  invalid_token: 'connect_error: a malformed, forged or unknown access token',
  token_expired: 'connect_error: the access token has expired (refresh it and reconnect)',
  session_revoked: 'connect_error: the device session was signed out',
  account_banned: 'connect_error: the account is banned; error on find_partner: the account cannot use matchmaking',
  not_authorized_user: 'connect_error: single-user mode (AUTHORIZED_USER_EMAIL) and this is another account',
  too_many_sockets: 'connect_error: the account holds SOCKET_MAX_PER_USER sockets on this instance; Engine.IO 403: the IP holds SOCKET_MAX_PER_IP',
  origin_not_allowed: 'Engine.IO 403: a browser Origin that is neither FRONTEND_URL nor the server itself',
  validation_failed: 'error: an event payload fails its schema; details.fields lists { path, message }',
  profile_incomplete: 'error on find_partner: the profile lacks what matchmaking needs (details.missing)',
  already_searching: 'error on find_partner: this user is searching already',
  already_in_room: 'error on find_partner: this user is in a call; end it first',
  not_in_room: 'error: a signaling event for a room the sender is not in',
  rate_limited: "error: an event beyond the socket's budget (details.retryAfterSeconds); sent at most once a second",
  payload_too_large: "error: an event's payload is over its bound",
  internal_error: 'connect_error or error: a bug; details are only in the log',
} as const;

export type SocketErrorCode = keyof typeof SOCKET_ERROR_CODES;

export function isSocketErrorCode(code: string): code is SocketErrorCode {
  return Object.hasOwn(SOCKET_ERROR_CODES, code);
}

/** Sends a Socket.io error the way clients expect it: the `error` event with `{ code, message }`. */
export function emitError(socket: Socket, code: SocketErrorCode, message: string, details?: Record<string, unknown>): void {
  socket.emit('error', { code, message, ...(details ? { details } : {}) });
}

/** An error for a middleware's `next()`: the client gets `connect_error` with `data: { code, message }`. */
export function handshakeError(code: SocketErrorCode, message: string): Error {
  return Object.assign(new Error(message), { data: { code, message } });
}
