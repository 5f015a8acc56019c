import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { errorResponseSchema } from './http-schemas.js';

/** The error statuses Parley answers (src/shared/openapi.ts adds the common ones to every route). */
export type ErrorStatus = 400 | 401 | 402 | 403 | 404 | 409 | 413 | 414 | 415 | 422 | 428 | 429 | 500 | 503;

/** A route's `response` entries for its own error statuses: each answers with the one error body. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S, typeof errorResponseSchema> {
  return Object.fromEntries(statuses.map((status) => [status, errorResponseSchema])) as Record<S, typeof errorResponseSchema>;
}

/** The `{ id }` path parameter of a route about one row. */
export const idParamsSchema = z.object({ id: z.uuid() });

/** A 204 answer: no body. */
export const noContentSchema = z.null();

/** A route's reply, typed by its response schemas (what `reply.status(code)` may send). */
interface TypedReply<Code extends number, Body> {
  status(code: Code): { send(body: Body): FastifyReply };
}

export function noContent(reply: TypedReply<204, null>): FastifyReply {
  return reply.status(204).send(null);
}

/** A 201 answer with the created resource, checked against the route's 201 schema. */
export function created<Body>(reply: TypedReply<201, Body>, body: NoInfer<Body>): FastifyReply {
  return reply.status(201).send(body);
}

/** A 202 answer: the work goes on after the response. */
export const acceptedSchema = z.object({ accepted: z.literal(true) });

export function accepted(reply: TypedReply<202, { accepted: true }>): FastifyReply {
  return reply.status(202).send({ accepted: true });
}
