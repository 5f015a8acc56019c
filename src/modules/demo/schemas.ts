import { z } from 'zod';

/** A script or style sheet of the demo page, by file name. */
export const demoFileParamsSchema = z.object({ file: z.string() });
