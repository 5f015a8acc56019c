import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { LocalStorage } from '../../infra/storage.js';
import { AppError } from '../../shared/errors.js';
import { errorResponses } from '../../shared/responses.js';
import { signedUrlQuerySchema, storedFileResponse } from './schemas.js';

/** Serves the embedded storage's files behind their signed, expiring URLs. */
export const localStorageRoutes: FastifyPluginAsyncZod<{ storage: LocalStorage }> = async (app, { storage }) => {
  app.get(
    '/storage/*',
    {
      schema: {
        tags: ['storage'],
        summary: 'A stored file, through a signed URL the API handed out (embedded storage only)',
        querystring: signedUrlQuerySchema,
        response: { 200: storedFileResponse, ...errorResponses(403) },
      },
    },
    async (request, reply) => {
      const key = (request.params as { '*': string })['*'];
      const file = await storage.open(key, request.query.expires ?? 0, request.query.signature ?? '');
      if (!file) throw new AppError('forbidden', 'This link is invalid or has expired');
      return reply
        .header('content-type', file.contentType)
        .header('content-length', file.size)
        .header('cache-control', 'private, max-age=300')
        .header('x-content-type-options', 'nosniff')
        .send(file.stream);
    },
  );
};
