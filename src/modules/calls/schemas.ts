import { z } from 'zod';
import { ENDED_BY } from './entities.js';

export const callSchema = z
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

export const rateCallBodySchema = z.strictObject({ stars: z.number().int().min(1).max(5) });
