/** The security events cross-cutting code reports (the HTTP rate limit, the Socket.io handshake). */
export type SecurityEventType = 'rate_limited' | 'socket_auth_failed';

export interface SecurityEvent {
  type: SecurityEventType;
  /** The client's address (as the limits see it, TRUST_PROXY applied). */
  ip: string;
  userAgent?: string | null;
  userId?: string | null;
  /** The reason: which route or limit, which error code. */
  metadata: Record<string, unknown>;
}

/** Where security events go: the audit module samples them and writes them to the activity log. */
export interface SecurityEventSink {
  /** Returns at once and never throws: the request or handshake never waits on the log. */
  reportSecurityEvent(event: SecurityEvent): void;
}
