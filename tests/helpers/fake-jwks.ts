import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** How one JWKS path answers: its keys, a redirect elsewhere, or never (the connection held open). */
export type JwksMode = { kind: 'serve' } | { kind: 'redirect'; location: string } | { kind: 'hang' };

export interface JwksPath {
  keys: JWK[];
  mode: JwksMode;
  /** Requests this path received. */
  hits: number;
}

/** A provider's JWKS endpoints on loopback, one per path, each rotatable, redirecting or hanging on demand. */
export interface FakeJwks {
  origin: string;
  /** The path's state, created (serving no keys) on first use. */
  path(name: string): JwksPath;
  url(name: string): string;
  /** Resolves once a request reaches a hanging path. */
  hung(): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeJwks(): Promise<FakeJwks> {
  const paths = new Map<string, JwksPath>();
  const sockets = new Set<Socket>();
  let hangArrived: (() => void) | undefined;
  let hangSeen = new Promise<void>((resolve) => (hangArrived = resolve));
  const pathFor = (name: string): JwksPath => {
    let state = paths.get(name);
    if (!state) {
      state = { keys: [], mode: { kind: 'serve' }, hits: 0 };
      paths.set(name, state);
    }
    return state;
  };
  const server = http.createServer((request, response) => {
    const state = paths.get(request.url ?? '');
    if (!state) {
      response.writeHead(404).end();
      return;
    }
    state.hits += 1;
    if (state.mode.kind === 'redirect') {
      response.writeHead(302, { location: state.mode.location }).end();
      return;
    }
    if (state.mode.kind === 'hang') {
      hangArrived?.();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    path: (name) => pathFor(`/${name}/jwks.json`),
    url: (name) => `${origin}/${name}/jwks.json`,
    hung: async () => {
      await hangSeen;
      hangSeen = new Promise<void>((resolve) => (hangArrived = resolve));
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A signing key of a provider: its private half signs tokens, its public JWK goes in a JWKS. */
export interface ProviderKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  jwk: JWK;
  /** The public key as PEM (what an alg-confusion attacker would use as an HMAC secret). */
  publicPem: string;
}

export async function providerKey(alg: 'RS256' | 'ES256', kid: string): Promise<ProviderKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

export interface TokenClaims {
  iss: string;
  aud: string | string[];
  sub: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
  extra?: JWTPayload;
}

/** A JWT as an issuer would sign it: with a provider key, or an HS256 secret. */
export async function signToken(claims: TokenClaims, key: ProviderKey | { secret: string }, header: { kid?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ ...claims.extra })
    .setIssuer(claims.iss)
    .setAudience(claims.aud)
    .setSubject(claims.sub)
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp);
  if ('secret' in key) return jwt.setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header }).sign(new TextEncoder().encode(key.secret));
  return jwt.setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
}

/** An unsecured JWT (`alg: none`), which no verifier may accept. */
export function unsecuredToken(claims: TokenClaims): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const { extra, ...registered } = claims;
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ ...registered, ...extra })}.`;
}
