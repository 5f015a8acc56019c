import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { created, errorResponses } from '../../shared/responses.js';
import { createReportBodySchema, reportSchema, reportsQuerySchema } from './schemas.js';
import type { ReportsService } from './service.js';

export const reportsRoutes: FastifyPluginAsyncZod<{ reports: ReportsService }> = async (app, { reports }) => {
  const tags = ['safety'];
  const config = { auth: 'user' } as const;

  app.post(
    '/reports',
    {
      config: { ...config, idempotent: true },
      schema: {
        tags,
        summary: 'Report a user (optionally about a call you had with them)',
        description: 'One report per call per reporter. Three pending reports flag the reported user for review.',
        body: createReportBodySchema,
        response: { 201: reportSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => created(reply, await reports.create(caller(request).userId, request.body)),
  );

  app.get(
    '/reports/mine',
    {
      config,
      schema: {
        tags,
        summary: 'Reports I have made, newest first',
        querystring: pageQuerySchema,
        response: { 200: pageSchema(reportSchema), ...errorResponses(400, 401) },
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
        querystring: reportsQuerySchema,
        response: { 200: pageSchema(reportSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => reports.list({ ...(request.query.status ? { status: request.query.status } : {}) }, request.query.limit, request.query.cursor),
  );
};
