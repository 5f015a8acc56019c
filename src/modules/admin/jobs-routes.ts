import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { JOB_STATES, type JobQueue } from '../../infra/jobs.js';
import { errorResponseSchema } from '../../shared/http-schemas.js';
import { NotFoundError } from '../../shared/errors.js';

const count = z.number().int();
const stateCountsSchema = z.object({ waiting: count, delayed: count, active: count, completed: count, dead: count });

const jobSchema = z
  .object({
    id: z.string().describe('<job name>:<id in its queue>'),
    name: z.string(),
    state: z.enum(JOB_STATES).describe('dead: failed on its last attempt (kept 30 days for a look)'),
    progress: z.number().describe('0-100, as the job last reported'),
    attempts: z.number().int().describe('Runs started so far'),
    maxAttempts: z.number().int(),
    lastError: z.string().nullable(),
    createdAt: z.date(),
    startedAt: z.date().nullable(),
    finishedAt: z.date().nullable(),
  })
  .meta({ id: 'Job' });

/** The job queues as an operator sees them: counts and single jobs, never a payload. */
export const adminJobsRoutes: FastifyPluginAsyncZod<{ jobs: JobQueue }> = async (app, { jobs }) => {
  const tags = ['admin'];
  const config = { auth: 'admin' } as const;
  const security = [{ bearer: [] }];

  app.get(
    '/admin/jobs',
    {
      config,
      schema: {
        tags,
        summary: 'Background jobs: counts per queue and state (dead = failed on the last attempt)',
        security,
        response: {
          200: z.object({ queues: z.array(z.object({ queue: z.string(), counts: stateCountsSchema })) }),
          401: errorResponseSchema,
          403: errorResponseSchema,
        },
      },
    },
    async () => ({ queues: await jobs.stats() }),
  );

  app.get(
    '/admin/jobs/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One background job: state, progress, attempts and last error (never its payload)',
        security,
        params: z.object({ id: z.string().min(3).max(300) }),
        response: { 200: jobSchema, 400: errorResponseSchema, 401: errorResponseSchema, 403: errorResponseSchema, 404: errorResponseSchema },
      },
    },
    async (request) => {
      const job = await jobs.get(request.params.id);
      if (!job) throw new NotFoundError('Job');
      return job;
    },
  );
};
