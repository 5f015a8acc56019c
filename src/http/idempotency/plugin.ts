import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onSendAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { caller } from '../../shared/auth.js';
import { AppError, IdempotencyInProgressError, IdempotencyKeyInvalidError, IdempotencyKeyReusedError } from '../../shared/errors.js';
import type { IdempotencyScope, IdempotencyStore, StoredResponse } from './store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * true: the route honours an `Idempotency-Key` header (it must also require a signed-in
     * caller); 'required': a request without one is refused (400 `idempotency_key_required`).
     */
    idempotent?: boolean | 'required';
  }
}

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotent-replayed';
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** The response headers a replay repeats; the others (request id, security headers) are the replay's own. */
const STORED_HEADERS = ['content-type', 'location'];

/** Sorted keys, no undefined members: two requests that mean the same serialize the same. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, member]) => member !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, member]) => [name, canonical(member)]),
  );
}

/**
 * What identifies a request, as validated: its path parameters and query too, so one key sent
 * to `/calls/A/rating` and then to `/calls/B/rating` is a different request, not a replay.
 */
export function requestHash(request: Pick<FastifyRequest, 'params' | 'query' | 'body'>): string {
  const json = JSON.stringify(canonical({ params: request.params ?? {}, query: request.query ?? {}, body: request.body ?? null }));
  return createHash('sha256').update(json).digest('hex');
}

function storedHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const value = reply.getHeader(name);
    if (value !== undefined) headers[name] = String(value);
  }
  return headers;
}

function storedBody(payload: unknown): Buffer | null {
  if (payload === undefined || payload === null) return Buffer.alloc(0);
  if (typeof payload === 'string') return Buffer.from(payload);
  if (Buffer.isBuffer(payload)) return payload;
  return null;
}

/**
 * Idempotency-Key for the routes that opt in with `config: { idempotent: true }`. The first
 * request with a key runs and its response (status, body, content type) is kept 24 h for that
 * user, key and route; a retry with the same request gets it again with `Idempotent-Replayed:
 * true`, a retry while the first still runs gets 409 `idempotency_in_progress`, and the key with
 * a different request gets 422 `idempotency_key_reused`. Without the header a route behaves as
 * if it had not opted in.
 *
 * The key is claimed in preHandler, after the rate limit (onRequest), the auth guard
 * (preValidation) and schema validation, so a request refused by one of them (429, 401, 403,
 * 400 `validation_failed`) never holds the key and a corrected retry runs. Once the handler has
 * started, its answer is kept whatever it is, a 4xx from our own code included (409
 * `already_reported`, 404, the service's own 400), as Stripe does: running the request again
 * would give the same answer. Only a 5xx (an unexpected error, a database that is down)
 * releases the key, so a retry runs again. The response is stored after the handler's own
 * transaction, not in it: a process that dies in between leaves the key in progress until the
 * store's takeover bound, after which a retry runs again.
 */
export const idempotency = fp<{ store: IdempotencyStore }>(
  async (app, { store }) => {
    const claims = new WeakMap<FastifyRequest, { scope: IdempotencyScope; startedAt: Date }>();

    const claimKey: preHandlerAsyncHookHandler = async (request, reply) => {
      const key = request.headers[IDEMPOTENCY_KEY_HEADER];
      if (key === undefined) {
        if (request.routeOptions.config.idempotent === 'required') {
          throw new AppError(
            'idempotency_key_required',
            'This request needs an Idempotency-Key header (a new UUID per operation, the same one on its retries)',
          );
        }
        return;
      }
      if (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
        throw new IdempotencyKeyInvalidError(MAX_IDEMPOTENCY_KEY_LENGTH);
      }
      const scope = { userId: caller(request).userId, route: `${request.method} ${request.routeOptions.url}`, key };
      const claim = await store.claim(scope, requestHash(request));
      switch (claim.outcome) {
        case 'acquired':
          claims.set(request, { scope, startedAt: claim.startedAt });
          return;
        case 'in_progress':
          throw new IdempotencyInProgressError();
        case 'mismatch':
          throw new IdempotencyKeyReusedError();
        case 'replay':
          return replay(reply, claim.response);
      }
    };

    const keepResponse: onSendAsyncHookHandler = async (request, reply, payload) => {
      const claim = claims.get(request);
      if (!claim) return payload;
      claims.delete(request);
      const body = storedBody(payload);
      try {
        if (reply.statusCode >= 500) {
          await store.release(claim.scope, claim.startedAt);
        } else if (body === null) {
          request.log.warn({ route: claim.scope.route }, 'a streamed response cannot be kept for its Idempotency-Key: the key is released');
          await store.release(claim.scope, claim.startedAt);
        } else {
          await store.complete(claim.scope, claim.startedAt, { status: reply.statusCode, headers: storedHeaders(reply), body });
        }
      } catch (error) {
        // The response itself is right: send it. The key stays in progress until the store's
        // takeover bound, so a retry is refused (409) meanwhile rather than run twice.
        request.log.error({ err: error, route: claim.scope.route }, 'could not record the outcome of an Idempotency-Key');
      }
      return payload;
    };

    app.addHook('onRoute', (route) => {
      if (!route.config?.idempotent) return;
      if (route.config.auth !== 'user' && route.config.auth !== 'admin') {
        throw new Error(`${String(route.method)} ${route.url}: an idempotent route must require a signed-in caller, whose keys are their own`);
      }
      route.preHandler = [claimKey, ...(route.preHandler ? [route.preHandler].flat() : [])];
      route.onSend = [...(route.onSend ? [route.onSend].flat() : []), keepResponse];
    });
  },
  { name: 'idempotency' },
);

function replay(reply: FastifyReply, response: StoredResponse): FastifyReply {
  // a Buffer is sent as it is: neither serialized again nor given another content type
  return reply.code(response.status).headers(response.headers).header(REPLAYED_HEADER, 'true').send(response.body);
}
