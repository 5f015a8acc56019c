import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isRetryableTransactionError } from '../infra/transactions.js';
import { AppError, ERROR_CODES, type ErrorCode, type ErrorDetails } from './errors.js';
import type { ErrorResponse } from './http-schemas.js';

/** Fastify's own client errors, by the code Fastify gives them. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
};

/** Any other 4xx Fastify or a plugin raises, by status. */
const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'rate_limited',
};

interface Mapped {
  status: number;
  code: ErrorCode;
  message: string;
  details?: ErrorDetails | undefined;
  headers?: Record<string, string> | undefined;
}

function mapError(error: FastifyError | Error): Mapped | null {
  if (error instanceof AppError) {
    return { status: error.statusCode, code: error.code, message: error.message, details: error.details, headers: error.headers };
  }
  // lock contention that outlived transactionWithRetry's attempts: nothing was written, try again
  if (isRetryableTransactionError(error)) {
    return { status: 503, code: 'dependency_unavailable', message: 'The database is busy, retry shortly', headers: { 'retry-after': '1' } };
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = (error as FastifyError).validationContext ?? 'body';
    const fields = error.validation.map((issue) => ({
      in: where,
      path: issue.instancePath.replace(/^\//, '').replaceAll('/', '.'),
      message: issue.message,
    }));
    return { status: 400, code: 'validation_failed', message: `Invalid ${where}`, details: { fields } };
  }
  const fastifyCode = 'code' in error && typeof error.code === 'string' ? FASTIFY_CODES[error.code] : undefined;
  const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (fastifyCode) return { status: ERROR_CODES[fastifyCode], code: fastifyCode, message: error.message };
  if (status >= 400 && status < 500) {
    return { status, code: CODE_BY_STATUS[status] ?? 'bad_request', message: error.message };
  }
  return null;
}

export function sendError(reply: FastifyReply, mapped: Mapped): FastifyReply {
  const body: ErrorResponse = { error: { code: mapped.code, message: mapped.message, ...(mapped.details ? { details: mapped.details } : {}) } };
  if (mapped.headers) reply.headers(mapped.headers);
  // Refused before its body was read whole (too large, rate limited, not allowed). A body the
  // route would have accepted by size is read and discarded by Node, so the connection stays
  // usable and a client still writing it reads this answer instead of meeting a closed socket.
  // A larger or unbounded (chunked) one closes the connection rather than be read to its end.
  const raw = reply.request.raw;
  const declaredLength = Number(raw.headers['content-length'] ?? 0);
  const unbounded = raw.headers['transfer-encoding'] !== undefined || !(declaredLength <= reply.request.routeOptions.bodyLimit);
  if (unbounded && !raw.complete) reply.header('connection', 'close');
  return reply.status(mapped.status).type('application/json; charset=utf-8').send(body);
}

/**
 * Fastify's `frameworkErrors`: a URL it cannot route (a malformed one, a path parameter over
 * maxParamLength) is answered in the one error shape too, not in Fastify's own.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const mapped = mapError(error) ?? { status: 400, code: 'bad_request', message: 'Malformed request' };
  request.log.info({ code: mapped.code, status: mapped.status }, 'request rejected');
  void sendError(reply, mapped);
}

/**
 * The one place errors become HTTP responses: known errors keep their status and code,
 * anything unexpected is logged with its stack and answered as a bare 500.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const mapped = mapError(error);
    if (mapped && mapped.status < 500) {
      request.log.info({ code: mapped.code, status: mapped.status }, 'request rejected');
      return sendError(reply, mapped);
    }
    if (mapped) {
      request.log.warn({ code: mapped.code, status: mapped.status, reason: mapped.message }, 'request failed on a dependency');
      return sendError(reply, mapped);
    }
    request.log.error({ err: error }, 'unexpected error');
    return sendError(reply, { status: 500, code: 'internal_error', message: 'Internal server error' });
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, { status: 404, code: 'route_not_found', message: `Route ${request.method} ${request.url.split('?')[0]} not found` }),
  );
}
