import { z } from 'zod';

/** The signature of a URL the API handed out, and when it stops working (Unix seconds). */
export const signedUrlQuerySchema = z.object({
  expires: z.coerce.number().int().optional(),
  signature: z.string().max(100).optional().describe('Without it (a guessed path) the answer is 403, as for a wrong one'),
});

/** The stored bytes, not JSON. */
export const storedFileResponse = { description: 'The file, with its own content type', content: { '*/*': { schema: z.any() } } };
