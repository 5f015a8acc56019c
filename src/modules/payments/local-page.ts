import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { escapeHtml } from '../../shared/html.js';
import { formatAmount } from '../../shared/money.js';
import type { LocalPaymentProvider } from './local-provider.js';
import type { LocalSessionRecord } from './repository.js';

const sessionParamsSchema = z.object({ id: z.string().regex(/^lcs_[A-Za-z0-9_-]{1,60}$/) });
const resultQuerySchema = z.object({ status: z.enum(['success', 'cancelled']).default('success'), session_id: z.string().max(100).optional() });

const STYLE = `body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.4rem}.amount{font-size:2rem;font-weight:600;margin:.5rem 0 1.5rem}.note{color:#616e7c;font-size:.9rem}
form{display:inline}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem;border-radius:6px;border:1px solid #9aa5b1;cursor:pointer}
button.pay{background:#2563eb;color:#fff;border-color:#2563eb}`;

function page(title: string, body: string, redirect?: string): string {
  const refresh = redirect ? `<meta http-equiv="refresh" content="2;url=${escapeHtml(redirect)}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">${refresh}<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** Where the buyer goes after the page: the configured URL, with the session id as Stripe adds it. */
function withSession(url: string, sessionId: string): string {
  const target = new URL(url);
  target.searchParams.set('session_id', sessionId);
  return target.toString();
}

function checkoutPage(session: LocalSessionRecord): string {
  const amount = escapeHtml(formatAmount(session.amountMinor, session.currency));
  if (session.status !== 'open') {
    const said = session.status === 'completed' ? 'This checkout is paid.' : 'This checkout is closed.';
    return page(
      'Parley checkout',
      `<h1>${escapeHtml(session.description)}</h1><p class="amount">${amount}</p><p id="status" data-status="${session.status}">${said}</p>`,
    );
  }
  return page(
    'Parley checkout',
    `<h1>${escapeHtml(session.description)}</h1><p class="amount">${amount}</p>
<form method="post" action="/pay/local/${escapeHtml(session.id)}/complete"><button class="pay" type="submit" id="pay">Pay ${amount}</button></form>
<form method="post" action="/pay/local/${escapeHtml(session.id)}/cancel"><button type="submit" id="cancel">Cancel</button></form>
<p class="note">Local test payments: no money moves. Paying sends this server a signed webhook, as Stripe would.</p>`,
  );
}

/**
 * The page providers send buyers back to by default (/pay/result), and the local provider's
 * hosted page: what Stripe's checkout page is to Stripe. Paying or
 * cancelling closes the session once and sends its signed webhook to the inbox; then the buyer
 * is sent on to the success or cancel URL.
 */
export const paymentPageRoutes: FastifyPluginAsyncZod<{ local: LocalPaymentProvider | null; successUrl: string; cancelUrl: string }> = async (
  app,
  { local, successUrl, cancelUrl },
) => {
  const hidden = { hide: true } as const;
  const html = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' };

  app.get('/pay/result', { schema: { ...hidden, querystring: resultQuerySchema } }, async (request, reply) => {
    const paid = request.query.status === 'success';
    return reply
      .headers(html)
      .send(
        page(
          'Parley checkout',
          paid
            ? '<h1>Thank you!</h1><p>Your payment is being confirmed: the app shows it within moments. You can close this page.</p>'
            : '<h1>Payment cancelled</h1><p>Nothing was charged. You can close this page.</p>',
        ),
      );
  });

  if (!local) return;
  // the page's forms post no fields
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_request, _body, done) => done(null, {}));

  app.get('/pay/local/:id', { schema: { ...hidden, params: sessionParamsSchema } }, async (request, reply) => {
    const session = await local.session(request.params.id);
    if (!session) return reply.status(404).headers(html).send(page('Not found', '<h1>No such checkout</h1>'));
    return reply.headers(html).send(checkoutPage(session));
  });

  for (const action of ['complete', 'cancel'] as const) {
    app.post(`/pay/local/:id/${action}`, { schema: { ...hidden, params: sessionParamsSchema } }, async (request, reply) => {
      const closed = action === 'complete' ? await local.complete(request.params.id) : await local.cancel(request.params.id);
      const session = closed ?? (await local.session(request.params.id));
      if (!session) return reply.status(404).headers(html).send(page('Not found', '<h1>No such checkout</h1>'));
      if (!closed) return reply.status(409).headers(html).send(checkoutPage(session));
      const next = withSession(action === 'complete' ? successUrl : cancelUrl, session.id);
      const said = action === 'complete' ? 'Payment complete. Thank you!' : 'Payment cancelled.';
      return reply
        .headers(html)
        .send(
          page(
            'Parley checkout',
            `<h1 id="status" data-status="${session.status}">${said}</h1><p><a id="continue" href="${escapeHtml(next)}">Continue</a></p>`,
            next,
          ),
        );
    });
  }
};
