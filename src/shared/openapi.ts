import type { SwaggerTransform } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../http/idempotency/plugin.js';
import type { AuthRequirement } from './auth.js';
import { errorResponses, type ErrorStatus } from './responses.js';

type Transform = typeof jsonSchemaTransform;
type Input = Parameters<Transform>[0];

const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

/** What the document reads of a route's `config`. */
function routeConfig(input: Input): { auth?: AuthRequirement; externalTokens?: boolean; rateLimit?: unknown; idempotent?: boolean | 'required' } {
  return (input.route as { config?: ReturnType<typeof routeConfig> }).config ?? {};
}

/** What the auth guard reads, as OpenAPI security: a bearer token, or (optional) none. */
const SECURITY: Record<AuthRequirement, Array<Record<string, string[]>>> = {
  user: [{ bearer: [] }],
  admin: [{ bearer: [] }],
  optional: [{ bearer: [] }, {}],
};

/**
 * The error statuses any route can answer besides its own, derived from what it takes: 400 for
 * malformed input (every route parses a query; a NUL character in it is refused), 414 for an
 * overlong path parameter, 401 and 403 from the auth guard wherever it reads a token, 413 and
 * 415 from the body parser, 429 from the global rate limit, 500, and 503 while the server
 * drains or a dependency is down. A route's own declarations win.
 */
function commonErrors(input: Input): ErrorStatus[] {
  const config = routeConfig(input);
  const methods = [input.route.method].flat();
  return [
    400,
    // an Idempotency-Key still in use by a running request (409) or sent with another request (422)
    ...(config.idempotent ? ([409, 422] as const) : []),
    // Fastify refuses a path parameter longer than maxParamLength
    ...(/[:*]/.test(input.url) ? ([414] as const) : []),
    // a bad token (401), a banned account (403 account_banned) or a non-admin on an admin route (403)
    ...(config.auth ? ([401, 403] as const) : []),
    // an external token whose e-mail belongs to an account it is not linked to
    ...(config.externalTokens ? ([409] as const) : []),
    ...(methods.some((method) => !BODYLESS_METHODS.has(method)) ? ([413, 415] as const) : []),
    ...(config.rateLimit === false ? [] : ([429] as const)),
    500,
    503,
  ];
}

/** A multipart route's body, which the route reads itself (so it has no body schema to validate with). */
const MULTIPART_FILE_BODY = {
  type: 'object',
  required: ['file'],
  properties: { file: { type: 'string', format: 'binary', description: 'The file, as the one part of the form' } },
};

const IDEMPOTENCY_KEY = z
  .string()
  .min(1)
  .max(MAX_IDEMPOTENCY_KEY_LENGTH)
  .describe(
    'Makes a retry safe: the first response to a key is kept 24 h and answered again (with `Idempotent-Replayed: true`) to a retry ' +
      'with the same request; the key with a different request is 422 `idempotency_key_reused`, while the first still runs 409 `idempotency_in_progress`.',
  );

/** The route's header schema plus the Idempotency-Key header of a route that opts in (required where the route says so). */
function headersWithIdempotencyKey(headers: unknown, required: boolean): z.ZodObject {
  const own = headers instanceof z.ZodObject ? headers : z.object({});
  return own.extend({ 'Idempotency-Key': required ? IDEMPOTENCY_KEY : IDEMPOTENCY_KEY.optional() });
}

/**
 * jsonSchemaTransform, plus what the routes' schemas cannot say: the common error statuses,
 * the security the route's `config.auth` asks for, the Idempotency-Key header of the routes that
 * take it, a multipart body, and a wildcard route's path as a named parameter (Fastify's `*` is
 * not a valid OpenAPI parameter name; the
 * parameter may hold slashes).
 */
export const documentTransform: SwaggerTransform = (input) => {
  const { schema, url } = input;
  if (!schema || (schema as { hide?: boolean }).hide) return jsonSchemaTransform(input);
  const declared = (schema as { response?: Record<string, unknown> }).response ?? {};
  const response = { ...errorResponses(...commonErrors(input)), ...declared };
  const auth = routeConfig(input).auth;
  const wildcard = url.endsWith('/*');
  const idempotent = routeConfig(input).idempotent;
  const transformed = jsonSchemaTransform({
    ...input,
    url: wildcard ? `${url.slice(0, -1)}{path}` : url,
    schema: {
      ...(auth ? { security: SECURITY[auth] } : {}),
      ...schema,
      response,
      ...(idempotent ? { headers: headersWithIdempotencyKey((schema as { headers?: unknown }).headers, idempotent === 'required') } : {}),
      ...(wildcard ? { params: z.object({ path: z.string().describe('The rest of the path, slashes included') }) } : {}),
    },
  });
  const consumes = (schema as { consumes?: string[] }).consumes;
  if (consumes?.includes('multipart/form-data')) return { ...transformed, schema: { ...transformed.schema, body: MULTIPART_FILE_BODY } };
  return transformed;
};
