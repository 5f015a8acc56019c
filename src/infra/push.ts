import type { Logger } from './logger.js';

/** One push to one device. */
export interface PushMessage {
  /** The device's FCM registration token. */
  token: string;
  title: string;
  body: string;
  /** The deep-link payload the app reads (FCM data values are strings). */
  data: Record<string, string>;
  /**
   * Identifies the notification on the device (Android collapse key, APNs collapse id, Web
   * Push topic): a push delivered twice shows once.
   */
  collapseKey: string;
}

/**
 * Why a push failed, as the job must treat it:
 * - `invalid-token`: the token is dead (unregistered, malformed): delete it, never retry;
 * - `permanent`: the request is wrong or refused for good (400, 401, 403, 404): do not retry;
 * - `transient`: try again later (429, 5xx, a network error), after `retryAfterMs` when the
 *   service said so (Retry-After).
 */
export type PushFailureKind = 'invalid-token' | 'permanent' | 'transient';

export class PushError extends Error {
  override name = 'PushError';
  constructor(
    readonly kind: PushFailureKind,
    /** The provider's code, e.g. `messaging/registration-token-not-registered`. */
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Sends pushes; a failure rejects with a PushError. */
export interface PushSender {
  readonly kind: 'fcm' | 'log';
  /** Resolves with the provider's message id. */
  send(message: PushMessage): Promise<string>;
  close(): Promise<void>;
}

/** Without Firebase credentials: the push is written to the log (never the token). */
export function createLogPushSender(logger: Logger): PushSender {
  let sent = 0;
  return {
    kind: 'log',
    send: async (message) => {
      logger.info({ push: { title: message.title, body: message.body, data: message.data } }, 'push (not sent: no FIREBASE_* credentials)');
      sent += 1;
      return `logged-${sent}`;
    },
    close: async () => undefined,
  };
}
