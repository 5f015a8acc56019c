import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponses, noContent, noContentSchema } from '../../shared/responses.js';
import type { Logger } from '../../infra/logger.js';
import type { OllamaProxy } from './proxy.js';
import { chatStreamResponse, keyStatusSchema, modelsSchema, proxyChatBodySchema, revealBodySchema, revealedKeySchema, storeKeyBodySchema } from './schemas.js';
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

/** One chunk as a line of NDJSON, or as an SSE event. */
const frame = (sse: boolean, chunk: unknown, event?: string) =>
  sse ? `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(chunk)}\n\n` : `${JSON.stringify(chunk)}\n`;

/** The proxy to the model: a streamed chat, and the models there are. */
export const ollamaProxyRoutes: FastifyPluginAsyncZod<{ proxy: OllamaProxy; logger: Logger }> = async (app, { proxy, logger }) => {
  const tags = ['ai'];
  const signedIn = { auth: 'user' } as const;

  app.post(
    '/api/ollama/proxy-chat',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Chat with a model through the server: the reply streams as it is generated (NDJSON, or SSE by Accept)',
        description:
          "Sent to the caller's own Ollama (with their stored key) or the server's OLLAMA_BASE_URL. Closing the connection cancels the upstream request. Tokens count against AI_DAILY_TOKEN_LIMIT.",
        body: proxyChatBodySchema,
        response: { 200: chatStreamResponse, ...errorResponses(400, 401, 404, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const sse = (request.headers.accept ?? '').includes('text/event-stream');
      const gone = new AbortController();
      reply.raw.once('close', () => gone.abort());
      const userId = caller(request).userId;
      const chat = await proxy.chat({ userId }, request.body, gone.signal);
      async function* lines(): AsyncGenerator<string> {
        try {
          for await (const part of chat.parts) yield frame(sse, part);
        } catch (error) {
          if (gone.signal.aborted) return;
          logger.warn({ err: error, userId }, 'an upstream chat broke off mid-stream');
          yield frame(sse, { error: { code: 'ai_unavailable', message: 'The model stopped answering mid-reply; try again' } }, 'error');
        } finally {
          chat.abort();
        }
      }
      return reply
        .type(sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('x-accel-buffering', 'no')
        .send(Readable.from(lines()));
    },
  );

  app.get(
    '/api/ollama/list-models',
    {
      config: signedIn,
      schema: { tags, summary: "The models my Ollama (or the server's) offers", response: { 200: modelsSchema, ...errorResponses(401, 422, 503) } },
    },
    async (request) => ({ models: await proxy.listModels(caller(request).userId) }),
  );
};
