import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponses } from '../../shared/responses.js';
import { exchangeBodySchema, linkedIdentitySchema, linkIdentityBodySchema, providersSchema, tokenPairSchema } from './schemas.js';
import type { AuthService, RequestMeta } from './service.js';

function meta(request: FastifyRequest): RequestMeta {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null };
}

/** Sign-in with a trusted issuer's token, linking such an identity, and what a login page may offer. */
export const identityRoutes: FastifyPluginAsyncZod<{ auth: AuthService }> = async (app, { auth }) => {
  const tags = ['auth'];

  app.post(
    '/auth/exchange',
    {
      schema: {
        tags,
        summary: "Sign this device in with a trusted issuer's token (TRUSTED_ISSUERS): Parley's token pair",
        description:
          'The account linked to the token\'s issuer and subject; on first use a new account, with the token\'s e-mail (its "email" claim, or "sub" when that is an e-mail). ' +
          'When an account already has that e-mail it is not taken over: 409 account_link_required, until that account, signed in, links the identity with POST /auth/exchange/link. ' +
          "401 invalid_token, token_expired or untrusted_issuer for a token that does not verify; 503 identity_provider_unavailable when the issuer's keys cannot be fetched.",
        body: exchangeBodySchema,
        response: { 200: tokenPairSchema, ...errorResponses(400, 401, 403, 409, 429, 503) },
      },
    },
    async (request) => auth.exchange(request.body, meta(request)),
  );

  app.post(
    '/auth/exchange/link',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: "Link a trusted issuer's identity to my account, so its token signs in here",
        description:
          'Confirms that the holder of this account and of the token are one person: send the current password, or do it within 10 minutes of signing in. ' +
          'Linking an identity already linked to me changes nothing; one linked to another account is 409 identity_already_linked.',
        body: linkIdentityBodySchema,
        response: { 200: linkedIdentitySchema, ...errorResponses(400, 401, 403, 409, 503) },
      },
    },
    async (request) => auth.linkIdentity(caller(request), request.body, meta(request)),
  );

  app.get(
    '/auth/providers',
    {
      schema: {
        tags,
        summary: 'How one may sign in here, to draw a login page (never a secret)',
        response: { 200: providersSchema },
      },
    },
    async () => auth.providers(),
  );
};
