import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A GitHub account of the fake: its numeric id, login and e-mails. */
export interface FakeGitHubUser {
  id: number;
  login: string;
  emails: Array<{ email: string; primary: boolean; verified: boolean }>;
}

/** A code GitHub issued at its authorize step, bound as GitHub binds it. */
interface IssuedCode {
  user: FakeGitHubUser;
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  used: boolean;
}

export interface FakeGitHub {
  /** The base of GITHUB_OAUTH_URL and GITHUB_API_URL. */
  origin: string;
  clientId: string;
  clientSecret: string;
  /** Who the next authorize request signs in as (the browser's flow: GitHub's page approves at once). */
  signInAs: FakeGitHubUser;
  /** Set: the token endpoint answers 200 { error: this } to every exchange (as GitHub does for a revoked app). */
  tokenError: string | null;
  /** Set: the token endpoint is broken: never answers, answers 500, or drops the connection. */
  tokenFailure: 'hang' | 'server-error' | 'reset' | null;
  /**
   * GitHub's authorize step, for tests without a browser: reads the parameters of Parley's
   * authorize URL and answers the callback URL GitHub would redirect to (with code and state).
   */
  authorize(authorizeUrl: string, user?: FakeGitHubUser): string;
  /** Requests received, as "METHOD /path". */
  requests: string[];
  close(): Promise<void>;
}

let nextId = 1000;

export function githubUser(login: string, emails?: FakeGitHubUser['emails']): FakeGitHubUser {
  nextId += 1;
  return { id: nextId, login, emails: emails ?? [{ email: `${login}@users.parley.test`, primary: true, verified: true }] };
}

async function readBody(request: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * GitHub's OAuth web flow and the two REST calls a sign-in makes, on loopback: authorize (a 302
 * back to the redirect_uri with a code), access_token (checks the client secret, the code's
 * single use, its redirect_uri and the PKCE S256 verifier; errors as GitHub gives them, 200
 * with { error }), GET /user and GET /user/emails with the access token.
 */
export async function startFakeGitHub(): Promise<FakeGitHub> {
  const codes = new Map<string, IssuedCode>();
  const tokens = new Map<string, FakeGitHubUser>();
  const sockets = new Set<Socket>();
  const clientId = `Iv1.${randomBytes(8).toString('hex')}`;
  const clientSecret = randomBytes(20).toString('hex');

  const issueCode = (params: URLSearchParams, user: FakeGitHubUser): string => {
    if (params.get('client_id') !== clientId) throw new Error(`authorize: unknown client_id ${params.get('client_id')}`);
    if (params.get('code_challenge_method') !== 'S256') throw new Error('authorize: PKCE S256 is required');
    const redirectUri = params.get('redirect_uri');
    const codeChallenge = params.get('code_challenge');
    if (!redirectUri || !codeChallenge) throw new Error('authorize: redirect_uri and code_challenge are required');
    const code = randomBytes(10).toString('hex');
    codes.set(code, { user, clientId, redirectUri, codeChallenge, used: false });
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    const state = params.get('state');
    if (state !== null) back.searchParams.set('state', state);
    return back.toString();
  };

  const json = (response: http.ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    response.end(JSON.stringify(body));
  };

  const exchange = (form: URLSearchParams): Record<string, string> => {
    if (fake.tokenError) return { error: fake.tokenError, error_description: 'refused by the test' };
    if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
      return { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' };
    }
    const issued = codes.get(form.get('code') ?? '');
    if (!issued || issued.used) return { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' };
    issued.used = true;
    if (form.get('redirect_uri') !== issued.redirectUri) return { error: 'redirect_uri_mismatch', error_description: 'The redirect_uri does not match.' };
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== issued.codeChallenge) {
      return { error: 'bad_verification_code', error_description: 'The code_verifier does not match the code_challenge.' };
    }
    const token = `gho_${randomBytes(16).toString('hex')}`;
    tokens.set(token, issued.user);
    return { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' };
  };

  const server = http.createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://fake');
      fake.requests.push(`${request.method} ${url.pathname}`);
      if (request.method === 'GET' && url.pathname === '/login/oauth/authorize') {
        response.writeHead(302, { location: issueCode(url.searchParams, fake.signInAs) });
        response.end();
        return;
      }
      if (request.method === 'POST' && url.pathname === '/login/oauth/access_token') {
        const body = await readBody(request);
        if (fake.tokenFailure === 'hang') return;
        if (fake.tokenFailure === 'reset') return request.socket.destroy();
        if (fake.tokenFailure === 'server-error') return json(response, 500, { message: 'Server Error' });
        const form = request.headers['content-type']?.includes('json')
          ? new URLSearchParams(JSON.parse(body) as Record<string, string>)
          : new URLSearchParams(body);
        json(response, 200, exchange(form));
        return;
      }
      const user = tokens.get((request.headers.authorization ?? '').replace(/^Bearer /i, ''));
      if (request.method === 'GET' && (url.pathname === '/user' || url.pathname === '/user/emails')) {
        if (!user) return json(response, 401, { message: 'Bad credentials' });
        if (url.pathname === '/user') return json(response, 200, { id: user.id, login: user.login, name: null, avatar_url: null, email: null });
        return json(
          response,
          200,
          user.emails.map((entry) => ({ ...entry, visibility: entry.primary ? 'private' : null })),
        );
      }
      json(response, 404, { message: 'Not Found' });
    })().catch((error: unknown) => {
      response.writeHead(500);
      response.end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeGitHub = {
    origin,
    clientId,
    clientSecret,
    signInAs: githubUser('octocat'),
    tokenError: null,
    tokenFailure: null,
    authorize: (authorizeUrl, user) => issueCode(new URL(authorizeUrl).searchParams, user ?? fake.signInAs),
    requests: [],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
