import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { ENDED_BY } from './entities.js';
import type { CallsService } from './service.js';

const callSchema = z
  .object({
    id: z.uuid(),
    roomId: z.uuid(),
    partner: z.object({ id: z.uuid(), username: z.string().nullable(), displayName: z.string().nullable() }),
    topic: z.string().nullable(),
    level: z.string().nullable(),
    startedAt: z.date(),
    endedAt: z.date().nullable(),
    durationSeconds: z.number().int().nullable(),
    endedBy: z.enum(ENDED_BY).nullable(),
    myRating: z.number().int().nullable(),
  })
  .meta({ id: 'Call' });

const errors = (...statuses: Array<400 | 401 | 404 | 409>) => Object.fromEntries(statuses.map((status) => [status, errorResponseSchema]));

export const callsRoutes: FastifyPluginAsyncZod<{ calls: CallsService }> = async (app, { calls }) => {
  const tags = ['calls'];
  const config = { auth: 'user' } as const;
  const security = [{ bearer: [] }];

  app.get(
    '/sessions',
    {
      config,
      schema: {
        tags,
        summary: 'My calls, newest first',
        security,
        querystring: pageQuerySchema,
        response: { 200: pageSchema(callSchema), ...errors(400, 401) },
      },
    },
    async (request) => calls.listMine(caller(request).userId, request.query.limit, request.query.cursor),
  );

  app.get(
    '/sessions/:id',
    {
      config,
      schema: { tags, summary: 'One of my calls', security, params: z.object({ id: z.uuid() }), response: { 200: callSchema, ...errors(400, 401, 404) } },
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
        security,
        params: z.object({ id: z.uuid() }),
        body: z.strictObject({ stars: z.number().int().min(1).max(5) }),
        response: { 200: callSchema, ...errors(400, 401, 404, 409) },
      },
    },
    async (request) => calls.rate(caller(request).userId, request.params.id, request.body.stars),
  );
};
