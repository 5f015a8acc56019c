import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponses, noContent, noContentSchema } from '../../shared/responses.js';
import { keyStatusSchema, revealBodySchema, revealedKeySchema, storeKeyBodySchema } from './schemas.js';
import type { OllamaKeyService, RequestMeta } from './service.js';

const meta = (request: FastifyRequest): RequestMeta => ({ ip: request.ip, userAgent: request.headers['user-agent'] ?? null });

/** Document 000's key routes: store, check (masked), read back (guarded), delete. */
export const ollamaKeyRoutes: FastifyPluginAsyncZod<{ keys: OllamaKeyService; revealWithinMinutes: number; revealLimit: string }> = async (
  app,
  { keys, revealWithinMinutes, revealLimit },
) => {
  const tags = ['ai'];
  const signedIn = { auth: 'user' } as const;
  const noStore = { 'cache-control': 'no-store' };

  app.post(
    '/api/ollama/store-key',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Store my Ollama API key (encrypted at rest), and optionally my own Ollama server',
        body: storeKeyBodySchema,
        response: { 200: keyStatusSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => keys.store(caller(request).userId, { apiKey: request.body.apiKey, baseUrl: request.body.baseUrl ?? null }, meta(request)),
  );

  app.get(
    '/api/ollama/check-key',
    {
      config: signedIn,
      schema: { tags, summary: 'Whether I have a stored key (masked)', response: { 200: keyStatusSchema, ...errorResponses(401) } },
    },
    async (request) => keys.check(caller(request).userId),
  );

  const revealDescription = `Only within ${revealWithinMinutes} minutes of signing in (GET), or with the password (POST); ${revealLimit} per user; written to the activity log.`;

  app.get(
    '/api/ollama/get-key',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My stored key in clear, after a recent sign-in',
        description: revealDescription,
        response: { 200: revealedKeySchema, ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => reply.headers(noStore).send(await keys.revealKey(caller(request), undefined, meta(request))),
  );

  app.post(
    '/api/ollama/get-key',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My stored key in clear, confirmed with my password',
        description: revealDescription,
        body: revealBodySchema,
        response: { 200: revealedKeySchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => reply.headers(noStore).send(await keys.revealKey(caller(request), request.body.password, meta(request))),
  );

  app.delete(
    '/api/ollama/delete-key',
    {
      config: signedIn,
      schema: { tags, summary: 'Delete my stored key', response: { 204: noContentSchema, ...errorResponses(401) } },
    },
    async (request, reply) => {
      await keys.delete(caller(request).userId, meta(request));
      return noContent(reply);
    },
  );
};
