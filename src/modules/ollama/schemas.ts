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
    .refine((url) => !URL.canParse(url) || (!new URL(url).username && !new URL(url).password), 'no credentials in the URL')
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

const messageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string().max(32_000),
  images: z.array(z.string().max(10_000_000)).max(4).optional().describe('Base64 images, for multimodal models'),
});

export const proxyChatBodySchema = z.strictObject({
  model: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'an Ollama model name such as llama3.2:3b'),
  messages: z.array(messageSchema).min(1).max(200),
  options: z
    .record(z.string().max(64), z.union([z.number(), z.string().max(200), z.boolean(), z.array(z.string().max(200)).max(16)]))
    .optional()
    .describe("Ollama's model options (temperature, num_ctx, stop, ...)"),
});

export const chatStreamResponse = {
  description:
    "The model's reply as it is generated: NDJSON (one Ollama chat chunk per line, the last with done: true and the token counts) or, with Accept: text/event-stream, the same chunks as SSE `data:` events. An upstream failure after the first chunk ends the stream with `{ error: { code, message } }` (SSE: `event: error`).",
  // the handler streams it: any, as for the other streamed bodies
  content: { 'application/x-ndjson': { schema: z.any() }, 'text/event-stream': { schema: z.any() } },
};

export const modelsSchema = z
  .object({
    models: z.array(
      z.object({
        name: z.string(),
        model: z.string(),
        size: z.number(),
        digest: z.string(),
        modifiedAt: z.date(),
        family: z.string().nullable(),
        parameterSize: z.string().nullable(),
      }),
    ),
  })
  .meta({ id: 'OllamaModels' });
