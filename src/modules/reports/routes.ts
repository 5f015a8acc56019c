import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { REPORT_REASONS, REPORT_STATUSES } from './entities.js';
import { reportSchema } from './schemas.js';
import type { ReportsService } from './service.js';

const errors = (...statuses: Array<400 | 401 | 403 | 404 | 409>) => Object.fromEntries(statuses.map((status) => [status, errorResponseSchema]));

export const reportsRoutes: FastifyPluginAsyncZod<{ reports: ReportsService }> = async (app, { reports }) => {
  const tags = ['safety'];
  const config = { auth: 'user' } as const;
  const security = [{ bearer: [] }];

  app.post(
    '/reports',
    {
      config: { ...config, idempotent: true },
      schema: {
        tags,
        summary: 'Report a user (optionally about a call you had with them)',
        description: 'One report per call per reporter. Three pending reports flag the reported user for review.',
        security,
        body: z.strictObject({
          reportedId: z.uuid(),
          reason: z.enum(REPORT_REASONS),
          description: z.string().trim().min(1).max(1000).optional(),
          sessionId: z.uuid().optional(),
        }),
        response: { 201: reportSchema, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await reports.create(caller(request).userId, request.body)),
  );

  app.get(
    '/reports/mine',
    {
      config,
      schema: {
        tags,
        summary: 'Reports I have made, newest first',
        security,
        querystring: pageQuerySchema,
        response: { 200: pageSchema(reportSchema), ...errors(400, 401) },
      },
    },
    async (request) => reports.listMine(caller(request).userId, request.query.limit, request.query.cursor),
  );

  const adminOnly = { auth: 'admin' } as const;

  app.get(
    '/admin/reports',
    {
      config: adminOnly,
      schema: {
        tags: ['admin'],
        summary: 'Reports, newest first, optionally by status',
        security,
        querystring: pageQuerySchema.extend({ status: z.enum(REPORT_STATUSES).optional() }),
        response: { 200: pageSchema(reportSchema), ...errors(400, 401, 403) },
      },
    },
    async (request) => reports.list({ ...(request.query.status ? { status: request.query.status } : {}) }, request.query.limit, request.query.cursor),
  );
};
