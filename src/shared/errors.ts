/**
 * The stable catalogue of error codes clients may branch on. Add codes, never rename one.
 * Every error response is `{ error: { code, message, details? } }`.
 */
export const ERROR_CODES = {
  validation_failed: 400,
  invalid_json: 400,
  bad_request: 400,
  invalid_reset_token: 400,
  invalid_verification_token: 400,
  idempotency_key_invalid: 400,
  idempotency_key_required: 400,
  invalid_signature: 400,
  provider_not_configured: 400,
  invalid_video: 400,
  oauth_state_invalid: 400,
  oauth_code_invalid: 400,
  return_to_not_allowed: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  invalid_token: 401,
  token_expired: 401,
  token_reused: 401,
  session_revoked: 401,
  untrusted_issuer: 401,
  forbidden: 403,
  account_banned: 403,
  invite_required: 403,
  invite_invalid: 403,
  payment_required: 402,
  not_enrolled: 403,
  recent_login_required: 403,
  origin_not_allowed: 403,
  not_authorized_user: 403,
  csrf_token_invalid: 403,
  oauth_denied: 403,
  email_not_verified: 403,
  https_required: 403,
  not_found: 404,
  route_not_found: 404,
  ai_model_not_found: 404,
  identity_provider_not_configured: 404,
  method_not_allowed: 405,
  conflict: 409,
  version_conflict: 409,
  email_taken: 409,
  username_taken: 409,
  already_rated: 409,
  already_reported: 409,
  wallet_taken: 409,
  already_verified: 409,
  refresh_in_progress: 409,
  idempotency_in_progress: 409,
  already_enrolled: 409,
  course_free: 409,
  checkout_in_progress: 409,
  order_not_refundable: 409,
  video_not_ready: 409,
  key_unreadable: 409,
  reply_in_progress: 409,
  already_authenticated: 409,
  donation_not_confirmable: 409,
  account_link_required: 409,
  identity_already_linked: 409,
  session_ended: 409,
  session_not_extendable: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  unprocessable: 422,
  idempotency_key_reused: 422,
  invalid_image: 422,
  image_too_large: 422,
  refund_exceeds_payment: 422,
  payment_rejected: 422,
  base_url_refused: 422,
  ai_key_rejected: 422,
  suspicious_content: 422,
  version_required: 428,
  rate_limited: 429,
  ai_budget_exceeded: 429,
  ip_blocked: 429,
  internal_error: 500,
  dependency_unavailable: 503,
  shutting_down: 503,
  payment_provider_unavailable: 503,
  payments_unavailable: 503,
  ai_unavailable: 503,
  too_many_connections: 503,
  identity_provider_unavailable: 503,
  lock_unavailable: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorDetails = Record<string, unknown>;

/** Base of every error Parley raises on purpose; the error handler turns it into a response. */
export class AppError extends Error {
  override name = 'AppError';
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.statusCode = ERROR_CODES[code];
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetails) {
    super('validation_failed', message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'Authentication required') {
    super('unauthorized', message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'You are not allowed to do this') {
    super('forbidden', message);
  }
}

export class NotFoundError extends AppError {
  constructor(what = 'Resource') {
    super('not_found', `${what} not found`);
  }
}

export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number) {
    super('rate_limited', `Too many requests, retry in ${retryAfterSeconds} s`, { retryAfterSeconds }, { 'retry-after': String(retryAfterSeconds) });
  }
}

/** A request that reached an instance after it began to stop: the client retries (on another instance). */
export class ShuttingDownError extends AppError {
  constructor() {
    super('shutting_down', 'This server is shutting down; retry the request', undefined, { 'retry-after': '1', connection: 'close' });
  }
}

/** An Idempotency-Key header that is empty or longer than the stored keys can be. */
export class IdempotencyKeyInvalidError extends AppError {
  constructor(maxLength: number) {
    super('idempotency_key_invalid', `Idempotency-Key must be 1 to ${maxLength} characters`);
  }
}

/** The first request with this Idempotency-Key is still running: retry once it has answered. */
export class IdempotencyInProgressError extends AppError {
  constructor() {
    super('idempotency_in_progress', 'A request with this Idempotency-Key is still in progress; retry shortly', undefined, { 'retry-after': '1' });
  }
}

/** The Idempotency-Key was used before with a different request: a new request needs a new key. */
export class IdempotencyKeyReusedError extends AppError {
  constructor() {
    super('idempotency_key_reused', 'This Idempotency-Key was used with a different request; send a new key for a new request');
  }
}

export class DependencyUnavailableError extends AppError {
  constructor(message: string, details?: ErrorDetails) {
    super('dependency_unavailable', message, details);
  }
}

/** Another instance holds a distributed lock (LockService) and did not let go within the wait. */
export class LockUnavailableError extends AppError {
  constructor(lock: string, waitedMs: number) {
    super(
      'lock_unavailable',
      `Another process holds the lock ${lock}; it was not released within ${waitedMs} ms, try again later`,
      { lock, waitedMs },
      {
        'retry-after': '1',
      },
    );
  }
}
