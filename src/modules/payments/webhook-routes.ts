import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { PaymentProviderName } from '../../infra/payments/provider.js';
import { errorResponses } from '../../shared/responses.js';
import type { WebhookInbox } from './inbox.js';
import { webhookAcceptedSchema } from './schemas.js';

/** Provider events are small; this bounds what an unauthenticated caller makes the server read. */
const WEBHOOK_BODY_LIMIT = 512 * 1024;

const ENDPOINTS: Array<{ url: string; provider: PaymentProviderName; summary: string }> = [
  { url: '/payments/webhook', provider: 'stripe', summary: 'Stripe webhook (module 08 path)' },
  { url: '/webhooks/stripe', provider: 'stripe', summary: 'Stripe webhook' },
  { url: '/webhooks/paypal', provider: 'paypal', summary: 'PayPal webhook' },
  { url: '/webhooks/local', provider: 'local', summary: 'Webhook of the local provider' },
];

/**
 * The providers' webhooks: the body is kept as the raw bytes it arrived as (signatures are
 * over those bytes, never a re-serialised body), for these routes only.
 */
export const webhookRoutes: FastifyPluginAsyncZod<{ inbox: WebhookInbox }> = async (app, { inbox }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, done) => done(null, body));

  for (const { url, provider, summary } of ENDPOINTS) {
    app.post(
      url,
      {
        // providers authenticate by signature and retry in bursts: no per-IP limit
        config: { rateLimit: false },
        schema: {
          tags: ['webhooks'],
          summary,
          description:
            'Verified against the raw body (signature and timestamp), written to the inbox, then answered 200; a job applies it once. Bad signature, altered body or stale timestamp: 400 `invalid_signature`, nothing stored. A repeated event: 200 with `duplicate: true`.',
          response: { 200: webhookAcceptedSchema, ...errorResponses(400, 404, 503) },
        },
      },
      async (request) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const { duplicate } = await inbox.receive(provider, body, request.headers);
        return { received: true as const, duplicate };
      },
    );
  }
};
