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
