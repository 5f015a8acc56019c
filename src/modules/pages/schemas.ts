import { z } from 'zod';

/** A script or style sheet of the account pages, by file name. */
export const pageFileParamsSchema = z.object({ file: z.string() });
