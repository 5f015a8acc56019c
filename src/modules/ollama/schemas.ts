import { z } from 'zod';

export const storeKeyBodySchema = z.strictObject({
  apiKey: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII, no spaces'),
  baseUrl: z
    .url({ protocol: /^https?$/, error: 'an http(s) URL' })
    .max(500)
    .refine((url) => !new URL(url).username && !new URL(url).password, 'no credentials in the URL')
    .nullable()
    .optional()
    .describe("Your own Ollama server; unset: the server's. Private and loopback addresses are refused unless the server is configured for them."),
});

export const keyStatusSchema = z
  .object({
    hasKey: z.boolean(),
    masked: z.string().nullable().describe('The key with all but its last 4 characters hidden'),
    baseUrl: z.string().nullable(),
    updatedAt: z.date().nullable(),
  })
  .meta({ id: 'OllamaKeyStatus' });

export const revealBodySchema = z.strictObject({ password: z.string().min(1).max(1024) });

export const revealedKeySchema = z.object({ apiKey: z.string(), baseUrl: z.string().nullable() }).meta({ id: 'OllamaKey' });
