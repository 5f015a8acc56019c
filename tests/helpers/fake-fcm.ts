import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { decodeJwt, jwtVerify } from 'jose';

const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** A throwaway service account: its key pair exists only in this test process. */
export interface TestServiceAccount {
  projectId: string;
  clientEmail: string;
  /** PKCS#8 PEM, as in a Google key file. */
  privateKey: string;
  /** SPKI PEM: what the fake token endpoint checks assertions against. */
  publicKey: string;
}

export function makeServiceAccount(projectId = `parley-test-${randomBytes(3).toString('hex')}`): TestServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { projectId, clientEmail: `push-sender@${projectId}.iam.gserviceaccount.com`, privateKey, publicKey };
}

/** Writes a key file shaped like the JSON the Firebase console downloads; returns its path. */
export function writeCredentialsFile(dir: string, account: TestServiceAccount, tokenUri: string): string {
  const file = path.join(dir, `${account.projectId}-service-account.json`);
  const keyFile = {
    type: 'service_account',
    project_id: account.projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: account.privateKey,
    client_email: account.clientEmail,
    client_id: randomBytes(8).readBigUInt64BE().toString(),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    universe_domain: 'googleapis.com',
  };
  writeFileSync(file, JSON.stringify(keyFile, null, 2));
  return file;
}

/**
 * How the fake answers one send to a registration token: an HTTP status with FCM's error body
 * (google.rpc.Status with `message`, plus an FcmError detail when `fcmError` is given), or `text` as a non-JSON
 * body (a proxy's page), or `reset` to drop the connection without answering.
 */
/** What FCM says, with INVALID_ARGUMENT, of a token that is not one. */
export const INVALID_TOKEN_MESSAGE = 'The registration token is not a valid FCM registration token';

export type FcmReply = { status: number; fcmError?: string; message?: string; retryAfter?: string } | { status: number; text: string } | { reset: true };

/** How the fake token endpoint answers one request, instead of checking the assertion. */
export interface TokenReply {
  status: number;
  /** OAuth2 error code, e.g. invalid_client. */
  error?: string;
  retryAfter?: string;
}

export interface ReceivedPush {
  projectId: string;
  token: string;
  /** The FCM v1 `message` as received (snake_case fields, e.g. android.collapse_key). */
  message: Record<string, unknown> & { notification?: { title?: string; body?: string }; data?: Record<string, string> };
  authorization: string | undefined;
  receivedAt: number;
  /** What the fake answered; 0 when it dropped the connection. */
  status: number;
}

const RPC_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

function rpcError(status: number, message: string, fcmError?: string) {
  return {
    error: {
      code: status,
      message,
      status: RPC_STATUS[status] ?? 'UNKNOWN',
      ...(fcmError ? { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: fcmError }] } : {}),
    },
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  response.end(JSON.stringify(body));
}

/**
 * Google's OAuth2 token endpoint (POST /token, JWT-bearer grant, assertions checked against the
 * trusted accounts' public keys) and FCM's HTTP v1 send (POST /v1/projects/{p}/messages:send,
 * Bearer tokens it issued only) on 127.0.0.1, recording every send it accepts.
 */
export async function startFakeFcm({ accounts }: { accounts: TestServiceAccount[] }) {
  const trusted = new Map(accounts.map((account) => [account.clientEmail, account]));
  const issued = new Map<string, string>(); // access token -> project id
  const scripts = new Map<string, FcmReply[]>();
  const tokenScript: TokenReply[] = [];
  const received: ReceivedPush[] = [];
  const unclaimed: ReceivedPush[] = [];
  const waiters: Array<{ token: string; resolve: (push: ReceivedPush) => void }> = [];
  let tokenRequests = 0;
  let baseUrl = '';

  const record = (push: ReceivedPush): void => {
    received.push(push);
    const waiter = waiters.find((w) => w.token === push.token);
    if (waiter) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(push);
    } else {
      unclaimed.push(push);
    }
  };

  async function handleToken(request: IncomingMessage, response: ServerResponse): Promise<void> {
    tokenRequests += 1;
    const form = new URLSearchParams(await readBody(request));
    const scripted = tokenScript.shift();
    if (scripted) {
      const error = scripted.error ?? (scripted.status >= 500 ? 'internal_failure' : 'invalid_request');
      answer(
        response,
        scripted.status,
        { error, error_description: `scripted ${scripted.status}` },
        scripted.retryAfter ? { 'retry-after': scripted.retryAfter } : {},
      );
      return;
    }
    if (form.get('grant_type') !== JWT_BEARER) {
      answer(response, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' });
      return;
    }
    const assertion = form.get('assertion') ?? '';
    let issuer: unknown;
    try {
      issuer = decodeJwt(assertion).iss;
    } catch {
      answer(response, 400, { error: 'invalid_grant', error_description: 'Invalid JWT' });
      return;
    }
    const account = typeof issuer === 'string' ? trusted.get(issuer) : undefined;
    if (!account) {
      answer(response, 401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
      return;
    }
    try {
      const { payload } = await jwtVerify(assertion, createPublicKey(account.publicKey), {
        algorithms: ['RS256'],
        issuer: account.clientEmail,
        audience: `${baseUrl}/token`,
        requiredClaims: ['iat', 'exp'],
      });
      if (typeof payload.scope !== 'string' || !payload.scope.split(' ').includes(FCM_SCOPE)) {
        answer(response, 400, { error: 'invalid_scope', error_description: `${FCM_SCOPE} not requested` });
        return;
      }
    } catch (error) {
      answer(response, 400, { error: 'invalid_grant', error_description: `Invalid JWT: ${(error as Error).message}` });
      return;
    }
    const accessToken = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    issued.set(accessToken, account.projectId);
    answer(response, 200, { access_token: accessToken, expires_in: 3599, token_type: 'Bearer' });
  }

  async function handleSend(projectId: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const text = await readBody(request);
    const authorization = request.headers.authorization;
    const grantedProject = issued.get(/^Bearer (.+)$/.exec(authorization ?? '')?.[1] ?? '');
    if (grantedProject === undefined) {
      answer(response, 401, rpcError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.'));
      return;
    }
    if (grantedProject !== projectId) {
      answer(
        response,
        403,
        rpcError(403, `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${projectId}'`),
      );
      return;
    }
    let message: ReceivedPush['message'] | undefined;
    try {
      message = (JSON.parse(text) as { message?: ReceivedPush['message'] }).message;
    } catch {
      message = undefined;
    }
    const token = message?.token;
    if (!message || typeof token !== 'string') {
      answer(response, 400, rpcError(400, 'Recipient of the message is not set.', 'INVALID_ARGUMENT'));
      return;
    }
    const reply = scripts.get(token)?.shift();
    const push = { projectId, token, message, authorization, receivedAt: Date.now() };
    if (!reply) {
      record({ ...push, status: 200 });
      answer(response, 200, { name: `projects/${projectId}/messages/${randomBytes(8).readBigUInt64BE()}` });
    } else if ('reset' in reply) {
      record({ ...push, status: 0 });
      request.socket.destroy();
    } else if ('text' in reply) {
      record({ ...push, status: reply.status });
      response.writeHead(reply.status, { 'content-type': 'text/html; charset=UTF-8' });
      response.end(reply.text);
    } else {
      record({ ...push, status: reply.status });
      answer(
        response,
        reply.status,
        rpcError(reply.status, reply.message ?? `scripted ${reply.fcmError ?? reply.status}`, reply.fcmError),
        reply.retryAfter ? { 'retry-after': reply.retryAfter } : {},
      );
    }
  }

  const server = createServer((request, response) => {
    const sendPath = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(request.url ?? '');
    const handled =
      request.method === 'POST' && request.url === '/token'
        ? handleToken(request, response)
        : request.method === 'POST' && sendPath?.[1]
          ? handleSend(sendPath[1], request, response)
          : Promise.resolve(answer(response, 404, rpcError(404, `no route ${request.method} ${request.url}`)));
    handled.catch((error: Error) => {
      if (!response.headersSent) answer(response, 500, rpcError(500, error.message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    /** Base URL of the FCM API (FCM_API_URL). */
    url: baseUrl,
    /** The token endpoint (FIREBASE_TOKEN_URL / a key file's token_uri). */
    tokenUrl: `${baseUrl}/token`,
    /** Every send the fake accepted (authenticated), in arrival order, whatever it answered. */
    received,
    /** Requests the token endpoint got, refused ones included. */
    get tokenRequests(): number {
      return tokenRequests;
    },
    /** Access tokens handed out, oldest first. */
    get issuedTokens(): string[] {
      return [...issued.keys()];
    },
    trust(account: TestServiceAccount): void {
      trusted.set(account.clientEmail, account);
    },
    /** The next sends to `token` get these answers, in order; then 200 again. */
    script(token: string, ...replies: FcmReply[]): void {
      scripts.set(token, [...(scripts.get(token) ?? []), ...replies]);
    },
    /** The next token requests get these answers, in order; then assertions are checked again. */
    scriptToken(...replies: TokenReply[]): void {
      tokenScript.push(...replies);
    },
    /** The next send to `token` that no earlier call took (already received, or when it arrives). */
    nextPush(token: string): Promise<ReceivedPush> {
      const seen = unclaimed.find((push) => push.token === token);
      if (seen) {
        unclaimed.splice(unclaimed.indexOf(seen), 1);
        return Promise.resolve(seen);
      }
      return new Promise((resolve) => waiters.push({ token, resolve }));
    },
    close(): Promise<void> {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

export type FakeFcm = Awaited<ReturnType<typeof startFakeFcm>>;
