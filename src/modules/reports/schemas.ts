import { z } from 'zod';
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
