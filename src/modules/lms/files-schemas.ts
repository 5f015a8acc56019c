import { z } from 'zod';

export const attachmentSchema = z
  .object({
    id: z.uuid(),
    fileName: z.string().describe('As uploaded (without any folder, control characters removed): the name to save it under'),
    sizeBytes: z.number().int(),
    createdAt: z.date(),
  })
  .meta({ id: 'LessonAttachment' });

export const attachmentsSchema = z.object({ items: z.array(attachmentSchema) });

export const attachmentParamsSchema = z.object({ id: z.uuid(), attachmentId: z.uuid() });

export const attachmentUrlSchema = z
  .object({
    url: z.string().describe('A short-lived signed URL to the PDF'),
    expiresAt: z.date(),
  })
  .meta({ id: 'LessonAttachmentUrl' });
