import { z } from 'zod';

/** The one error body every failing route and hook answers with. */
export const errorResponseSchema = z
  .object({
    error: z.object({
      code: z.string().describe('Stable snake_case machine code (see SPECS.md "Error codes")'),
      message: z.string().describe('Human-readable explanation; may change between versions'),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: 'ErrorResponse' });

export type ErrorResponse = z.infer<typeof errorResponseSchema>;

/** The largest value of a PostgreSQL `integer` column: inputs stored in one are bounded by it. */
export const INT4_MAX = 2_147_483_647;
