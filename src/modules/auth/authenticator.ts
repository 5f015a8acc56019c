import type { AccessTokenVerifier, AuthContext, Principal, PrincipalVerifier } from '../../shared/auth.js';
import type { ExternalIdentities } from './identities.js';
import type { SingleUserGate } from './single-user.js';
import type { TokenService } from './tokens.js';

/**
 * The verifier of every bearer token (the HTTP guard, Socket.io handshakes, /ws): Parley's
 * access tokens, and with ACCEPT_EXTERNAL_TOKENS a trusted issuer's token where a route takes
 * one; single-user mode applies to both.
 */
export class BearerAuthenticator implements AccessTokenVerifier, PrincipalVerifier {
  constructor(
    private readonly tokens: TokenService,
    private readonly identities: ExternalIdentities,
    private readonly gate: SingleUserGate,
    private readonly acceptExternalTokens: boolean,
  ) {}

  /** A Parley access token's caller. */
  async verify(token: string): Promise<AuthContext> {
    const auth = await this.tokens.verify(token);
    this.gate.check(auth.email);
    return auth;
  }

  /** A Parley access token's caller, or (ACCEPT_EXTERNAL_TOKENS=on) the account a trusted issuer's token is linked to, created on first use. */
  async verifyPrincipal(token: string): Promise<Principal | AuthContext> {
    if (this.acceptExternalTokens && this.identities.claimsTrustedIssuer(token)) return this.identities.principal(token);
    return this.verify(token);
  }
}
