import type { SwaggerTransform } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuthRequirement } from './auth.js';
import { errorResponses, type ErrorStatus } from './responses.js';

type Transform = typeof jsonSchemaTransform;
type Input = Parameters<Transform>[0];

const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

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
function routeConfig(input: Input): { auth?: AuthRequirement; rateLimit?: unknown } | undefined {
  return (input.route as { config?: { auth?: AuthRequirement; rateLimit?: unknown } }).config;
}

function commonErrors(input: Input): ErrorStatus[] {
  const config = routeConfig(input);
  const methods = [input.route.method].flat();
  return [
    400,
    // Fastify refuses a path parameter longer than maxParamLength
    ...(/[:*]/.test(input.url) ? ([414] as const) : []),
    // a bad token (401), a banned account (403 account_banned) or a non-admin on an admin route (403)
    ...(config?.auth ? ([401, 403] as const) : []),
    ...(methods.some((method) => !BODYLESS_METHODS.has(method)) ? ([413, 415] as const) : []),
    ...(config?.rateLimit === false ? [] : ([429] as const)),
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

/**
 * jsonSchemaTransform, plus what the routes' schemas cannot say: the common error statuses,
 * the security the route's `config.auth` asks for, a multipart body, and a wildcard route's
 * path as a named parameter (Fastify's `*` is not a valid OpenAPI parameter name; the
 * parameter may hold slashes).
 */
export const documentTransform: SwaggerTransform = (input) => {
  const { schema, url } = input;
  if (!schema || (schema as { hide?: boolean }).hide) return jsonSchemaTransform(input);
  const declared = (schema as { response?: Record<string, unknown> }).response ?? {};
  const response = { ...errorResponses(...commonErrors(input)), ...declared };
  const auth = routeConfig(input)?.auth;
  const wildcard = url.endsWith('/*');
  const transformed = jsonSchemaTransform({
    ...input,
    url: wildcard ? `${url.slice(0, -1)}{path}` : url,
    schema: {
      ...(auth ? { security: SECURITY[auth] } : {}),
      ...schema,
      response,
      ...(wildcard ? { params: z.object({ path: z.string().describe('The rest of the path, slashes included') }) } : {}),
    },
  });
  const consumes = (schema as { consumes?: string[] }).consumes;
  if (consumes?.includes('multipart/form-data')) return { ...transformed, schema: { ...transformed.schema, body: MULTIPART_FILE_BODY } };
  return transformed;
};
