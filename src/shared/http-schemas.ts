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

/**
 * A point in time in a query: an ISO 8601 date-time (with Z or an offset) or a date (midnight
 * UTC), read as a Date. Documented as a string with its format, unlike z.coerce.date().
 */
export const isoDateTime = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .transform((text) => new Date(text))
  .describe('ISO 8601 date-time (2026-05-01T12:00:00Z) or date (2026-05-01)');
