import { z } from 'zod';
import { pageQuerySchema } from '../../shared/pagination.js';
import { REPORT_REASONS, REPORT_STATUSES } from './entities.js';

export const reportSchema = z
  .object({
    id: z.uuid(),
    reporterId: z.uuid(),
    reportedId: z.uuid(),
    sessionId: z.uuid().nullable(),
    reason: z.enum(REPORT_REASONS),
    description: z.string().nullable(),
    status: z.enum(REPORT_STATUSES),
    adminNote: z.string().nullable(),
    actionedAt: z.date().nullable(),
    createdAt: z.date(),
  })
  .meta({ id: 'Report' });

export const createReportBodySchema = z.strictObject({
  reportedId: z.uuid(),
  reason: z.enum(REPORT_REASONS),
  description: z.string().trim().min(1).max(1000).optional(),
  sessionId: z.uuid().optional(),
});

export const reportsQuerySchema = pageQuerySchema.extend({ status: z.enum(REPORT_STATUSES).optional() });
