import { z } from 'zod';

export const healthSchema = z.object({ status: z.literal('ok'), timestamp: z.iso.datetime() });

export const readySchema = z.object({
  status: z.literal('ready'),
  checks: z.object({ database: z.literal('ok'), redis: z.literal('ok') }),
});

/** Not JSON: the Prometheus text exposition format. */
export const metricsResponse = { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } };
