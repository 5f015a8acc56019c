import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { errorResponses, idParamsSchema } from '../../shared/responses.js';
import { callSchema, rateCallBodySchema } from './schemas.js';
import type { CallsService } from './service.js';

export const callsRoutes: FastifyPluginAsyncZod<{ calls: CallsService }> = async (app, { calls }) => {
  const tags = ['calls'];
  const config = { auth: 'user' } as const;

  app.get(
    '/sessions',
    {
      config,
      schema: {
        tags,
        summary: 'My calls, newest first',
        querystring: pageQuerySchema,
        response: { 200: pageSchema(callSchema), ...errorResponses(400, 401) },
      },
    },
    async (request) => calls.listMine(caller(request).userId, request.query.limit, request.query.cursor),
  );

  app.get(
    '/sessions/:id',
    {
      config,
      schema: { tags, summary: 'One of my calls', params: idParamsSchema, response: { 200: callSchema, ...errorResponses(400, 401, 404) } },
    },
    async (request) => calls.getMine(caller(request).userId, request.params.id),
  );

  app.post(
    '/sessions/:id/rate',
    {
      config,
      schema: {
        tags,
        summary: 'Rate my partner in an ended call (1-5 stars, once)',
        params: idParamsSchema,
        body: rateCallBodySchema,
        response: { 200: callSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => calls.rate(caller(request).userId, request.params.id, request.body.stars),
  );
};
