import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isMailTemplateName, MAIL_TEMPLATE_NAMES, renderMail, type MailTemplateName, type MailTemplateVars } from '../../infra/mail-templates.js';
import { NotFoundError } from '../../shared/errors.js';
import { errorResponses } from '../../shared/responses.js';

/** Every template with believable values: the compiler keeps this in step with the catalogue. */
const SAMPLES: { [N in MailTemplateName]: MailTemplateVars[N] } = {
  'verify-email': { link: 'https://parley.example/verify-email?token=sample-verification-token', expiresInMinutes: 24 * 60 },
  'reset-password': { link: 'https://parley.example/reset-password?token=sample-reset-token', expiresInMinutes: 60 },
  'password-changed': { at: new Date('2026-03-14T09:26:53Z'), signedOutEverywhere: true },
  'payment-receipt': {
    description: 'Parley Plus, 1 month',
    amountMinor: 999,
    currency: 'USD',
    orderId: 'ord_01HV3K8Q2M',
    paidAt: new Date('2026-03-14T09:26:53Z'),
  },
  'new-sign-in': { device: 'Chrome on macOS', ip: '203.0.113.42', at: new Date('2026-03-14T09:26:53Z') },
  notification: {
    title: 'Ana wants to practise Spanish with you',
    body: 'Ana sent you a practice request.\nAnswer within a day to keep your streak.',
    actionUrl: 'https://parley.example/app/requests',
  },
};

/** Generic, so a name and its sample stay paired for the compiler. */
function render<N extends MailTemplateName>(name: N) {
  return renderMail(name, SAMPLES[name]);
}

const templateListSchema = z.object({ templates: z.array(z.string()).describe('Template names, for GET /dev/mail/{template}') });
const templateParamsSchema = z.object({ template: z.string().max(64) });
const templateQuerySchema = z.object({ format: z.enum(['html', 'text']).default('html') });
const renderedMailResponse = {
  description: 'The template rendered with sample values',
  content: { 'text/html': { schema: z.string() }, 'text/plain': { schema: z.string() } },
};

/**
 * Development only: each transactional e-mail rendered with sample values, to look at in a browser.
 * Hidden from the OpenAPI document, which must not differ between environments.
 */
export const mailPreviewRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/dev/mail', { schema: { hide: true, summary: 'Names of the e-mail templates', response: { 200: templateListSchema } } }, async () => ({
    templates: [...MAIL_TEMPLATE_NAMES],
  }));

  app.get(
    '/dev/mail/:template',
    {
      schema: {
        hide: true,
        summary: 'One e-mail template rendered with sample values, as HTML or plain text',
        params: templateParamsSchema,
        querystring: templateQuerySchema,
        response: { 200: renderedMailResponse, ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const { template } = request.params;
      if (!isMailTemplateName(template)) throw new NotFoundError('Mail template');
      const mail = render(template);
      return request.query.format === 'text' ? reply.type('text/plain; charset=utf-8').send(mail.text) : reply.type('text/html; charset=utf-8').send(mail.html);
    },
  );
};
