import { RerouteAgent } from './reroute-agent.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { deleteApp, initializeApp, type Credential, type GoogleOAuthAccessToken } from 'firebase-admin/app';
import { getMessaging, type Message, type Messaging } from 'firebase-admin/messaging';
import { SignJWT } from 'jose';
import type { Config } from '../config/load.js';
import type { Logger } from './logger.js';
import { PushError, createLogPushSender, type PushMessage, type PushSender } from './push.js';

const DEFAULT_FCM_API_URL = 'https://fcm.googleapis.com';
const DEFAULT_GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const TOKEN_REQUEST_TIMEOUT_MS = 10_000;

/** A service account, as its key file holds it (project_id, client_email, private_key). */
export interface FcmServiceAccount {
  projectId: string;
  clientEmail: string;
  /** PKCS#8 PEM. */
  privateKey: string;
}

export interface FcmPushSenderOptions {
  /** The service account itself, or the path of its JSON key file (what GOOGLE_APPLICATION_CREDENTIALS names). */
  credentials: FcmServiceAccount | { credentialsFile: string };
  /** Where FCM's HTTP v1 API is reached; https://fcm.googleapis.com unless told. */
  apiUrl?: string;
  /**
   * Google's OAuth2 token endpoint. Precedence: this option, then the key file's token_uri,
   * then https://oauth2.googleapis.com/token.
   */
  tokenUrl?: string;
  logger: Logger;
}

interface ResolvedAccount extends FcmServiceAccount {
  tokenUrl: string;
}

function readCredentialsFile(file: string): FcmServiceAccount & { tokenUri?: string } {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`cannot read the service-account file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const field = (name: string): string => {
    const value = parsed[name];
    if (typeof value !== 'string' || !value) throw new Error(`the service-account file ${file} has no ${name}`);
    return value;
  };
  const tokenUri = parsed.token_uri;
  return {
    projectId: field('project_id'),
    clientEmail: field('client_email'),
    privateKey: field('private_key'),
    tokenUri: typeof tokenUri === 'string' && tokenUri ? tokenUri : undefined,
  };
}

function resolveAccount(options: FcmPushSenderOptions): ResolvedAccount {
  if ('credentialsFile' in options.credentials) {
    const { tokenUri, ...account } = readCredentialsFile(options.credentials.credentialsFile);
    return { ...account, tokenUrl: options.tokenUrl ?? tokenUri ?? DEFAULT_GOOGLE_TOKEN_URL };
  }
  return { ...options.credentials, tokenUrl: options.tokenUrl ?? DEFAULT_GOOGLE_TOKEN_URL };
}

/** "120" or an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
function parseRetryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED, a timeout) is in its cause. */
function describeFetchError(error: unknown): string {
  const { message, cause } = error as Error & { cause?: { code?: unknown; message?: unknown } };
  const reason = cause?.code ?? cause?.message;
  return typeof reason === 'string' ? `${message} (${reason})` : message;
}

/**
 * OAuth2 JWT-bearer exchange (RFC 7523) against a configurable token endpoint: firebase-admin's
 * cert() always calls Google's. firebase-admin caches the token until 5 minutes before expiry.
 * A refusal is kept in `lastFailure` because the SDK rewraps the error as a bare
 * app/invalid-credential, losing whether it is worth retrying.
 */
class JwtBearerCredential implements Credential {
  lastFailure: PushError | undefined;
  private readonly signingKey: KeyObject;

  constructor(
    private readonly account: ResolvedAccount,
    private readonly logger: Logger,
  ) {
    try {
      this.signingKey = createPrivateKey(account.privateKey);
    } catch {
      // at start-up, rather than as a failed push per message
      throw new Error(`the private key of the service account ${account.clientEmail} is not a PEM private key`);
    }
  }

  async getAccessToken(): Promise<GoogleOAuthAccessToken> {
    try {
      const token = await this.requestToken();
      this.lastFailure = undefined;
      return token;
    } catch (error) {
      this.lastFailure =
        error instanceof PushError ? error : new PushError('transient', 'oauth2/network-error', `token endpoint unreachable: ${describeFetchError(error)}`);
      this.logger.error({ tokenUrl: this.account.tokenUrl, code: this.lastFailure.code }, `push: no FCM access token (${this.lastFailure.message})`);
      throw this.lastFailure;
    }
  }

  private async requestToken(): Promise<GoogleOAuthAccessToken> {
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuer(this.account.clientEmail)
      .setAudience(this.account.tokenUrl)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(this.signingKey);
    const response = await fetch(this.account.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
      signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
    });
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown };
    if (!response.ok) {
      const reason = typeof body.error === 'string' ? body.error : String(response.status);
      const message = `token endpoint answered ${response.status} ${reason}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}`;
      // 4xx is Google refusing these credentials (invalid_grant, invalid_client): every retry would be refused alike.
      if (response.status === 429 || response.status >= 500) {
        throw new PushError('transient', `oauth2/${reason}`, message, parseRetryAfterMs(response.headers.get('retry-after') ?? undefined));
      }
      throw new PushError('permanent', `oauth2/${reason}`, message);
    }
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number') {
      throw new PushError('transient', 'oauth2/invalid-response', `token endpoint answered ${response.status} without access_token and expires_in`);
    }
    return { access_token: body.access_token, expires_in: body.expires_in };
  }
}

/**
 * firebase-admin 13 retries 503 answers and connection resets itself (4 more attempts after
 * 0, 1, 2 and 4 s, or after Retry-After when it is at most 60 s), holding a job for minutes; our
 * job queue does the retrying. There is no public option, so this clears the retry policy of
 * the messaging service's HTTP client, and refuses to start if that field has moved.
 */
function turnOffSdkRetries(messaging: Messaging): void {
  const internals = messaging as unknown as { messagingRequestHandler?: { httpClient?: { retry?: unknown } } };
  const httpClient = internals.messagingRequestHandler?.httpClient;
  if (!httpClient || typeof httpClient.retry !== 'object' || httpClient.retry === null) {
    throw new Error('firebase-admin changed: its messaging HTTP client has no retry policy to turn off (see turnOffSdkRetries)');
  }
  httpClient.retry = null;
}

/** What the SDK's HTTP request got back: its errors carry neither the status nor the headers. */
interface Exchange {
  status?: number;
  json?: boolean;
  retryAfter?: string;
}

const INVALID_TOKEN_CODES = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
/**
 * FCM answers INVALID_ARGUMENT both for a malformed token ("The registration token is not a
 * valid FCM registration token") and for a malformed message (too big, a bad field): only the
 * first kills the token.
 */
const TOKEN_MESSAGE = /registration token/i;
const NETWORK_CODES = new Set(['app/network-error', 'app/network-timeout']);

function toPushError(error: unknown, exchange: Exchange, credential: JwtBearerCredential): PushError {
  if (error instanceof PushError) return error;
  const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'unknown';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'app/invalid-credential') return credential.lastFailure ?? new PushError('permanent', code, message);
  if (NETWORK_CODES.has(code)) return new PushError('transient', code, message);
  const { status } = exchange;
  // No answer at all: the SDK refused the message before sending it.
  if (status === undefined) return new PushError('permanent', code, message);
  if (status === 429 || status >= 500) return new PushError('transient', code, message, parseRetryAfterMs(exchange.retryAfter));
  // Only FCM's own JSON verdict kills a token; a proxy's bare 400 page does not.
  if (exchange.json && INVALID_TOKEN_CODES.has(code)) return new PushError('invalid-token', code, message);
  if (exchange.json && code === 'messaging/invalid-argument' && TOKEN_MESSAGE.test(message)) return new PushError('invalid-token', code, message);
  return new PushError('permanent', code, message);
}

const WEBPUSH_TOPIC = /^[A-Za-z0-9_-]{1,32}$/;
const APNS_COLLAPSE_ID_MAX_BYTES = 64;

/** 32 URL-safe base64 characters: fits both the Web Push Topic and the APNs collapse id. */
function collapseDigest(collapseKey: string): string {
  return createHash('sha256').update(collapseKey).digest('base64url').slice(0, 32);
}

function toFcmMessage(message: PushMessage): Message {
  const { token, title, body, data, collapseKey } = message;
  const fcmMessage: Message = { token, notification: { title, body }, data };
  if (!collapseKey) return fcmMessage;
  return {
    ...fcmMessage,
    android: { collapseKey },
    apns: { headers: { 'apns-collapse-id': Buffer.byteLength(collapseKey) <= APNS_COLLAPSE_ID_MAX_BYTES ? collapseKey : collapseDigest(collapseKey) } },
    webpush: { headers: { Topic: WEBPUSH_TOPIC.test(collapseKey) ? collapseKey : collapseDigest(collapseKey) } },
  };
}

/**
 * Sends through FCM's HTTP v1 API with the official SDK, one `messaging.send()` per message
 * (sendEach's HTTP/2 transport would bypass the agent). Failures reject with a PushError.
 */
export function createFcmPushSender(options: FcmPushSenderOptions): PushSender {
  const account = resolveAccount(options);
  const credential = new JwtBearerCredential(account, options.logger);
  const agent = new RerouteAgent(new URL(options.apiUrl ?? DEFAULT_FCM_API_URL));
  const app = initializeApp({ credential, projectId: account.projectId, httpAgent: agent }, `parley-push-${randomUUID()}`);
  const messaging = getMessaging(app);
  turnOffSdkRetries(messaging);

  const exchanges = new AsyncLocalStorage<Exchange>();
  // Runs synchronously inside http.request, so still in the context of the send() that made it.
  const onRequestStart = (event: unknown): void => {
    const { request } = event as { request: ClientRequest & { agent?: unknown } };
    const exchange = exchanges.getStore();
    if (!exchange || request.agent !== agent) return;
    request.once('response', (response: IncomingMessage) => {
      exchange.status = response.statusCode;
      exchange.json = /\bjson\b/.test(response.headers['content-type'] ?? '');
      exchange.retryAfter = response.headers['retry-after'];
    });
  };
  subscribe('http.client.request.start', onRequestStart);
  options.logger.info({ projectId: account.projectId, apiUrl: options.apiUrl ?? DEFAULT_FCM_API_URL }, 'push: sending through FCM');

  return {
    kind: 'fcm',
    send: async (message) => {
      const exchange: Exchange = {};
      try {
        return await exchanges.run(exchange, () => messaging.send(toFcmMessage(message)));
      } catch (error) {
        throw toPushError(error, exchange, credential);
      }
    },
    close: async () => {
      unsubscribe('http.client.request.start', onRequestStart);
      await deleteApp(app);
      agent.destroy();
    },
  };
}

/** FIREBASE_PRIVATE_KEY often comes through an env var with its newlines written as "\n". */
function pemFromEnv(value: string): string {
  return value.replace(/\\n/g, '\n');
}

export type PushConfig = Pick<
  Config,
  'FIREBASE_PROJECT_ID' | 'FIREBASE_CLIENT_EMAIL' | 'FIREBASE_PRIVATE_KEY' | 'GOOGLE_APPLICATION_CREDENTIALS' | 'FCM_API_URL' | 'FIREBASE_TOKEN_URL'
>;

/**
 * FCM when credentials are configured (FIREBASE_* win over GOOGLE_APPLICATION_CREDENTIALS),
 * else the log sender.
 */
export function createPushSender(config: PushConfig, logger: Logger): PushSender {
  const connection = { apiUrl: config.FCM_API_URL, tokenUrl: config.FIREBASE_TOKEN_URL, logger };
  if (config.FIREBASE_PROJECT_ID && config.FIREBASE_CLIENT_EMAIL && config.FIREBASE_PRIVATE_KEY) {
    const credentials = {
      projectId: config.FIREBASE_PROJECT_ID,
      clientEmail: config.FIREBASE_CLIENT_EMAIL,
      privateKey: pemFromEnv(config.FIREBASE_PRIVATE_KEY),
    };
    return createFcmPushSender({ ...connection, credentials });
  }
  const credentialsFile = config.GOOGLE_APPLICATION_CREDENTIALS;
  if (credentialsFile) return createFcmPushSender({ ...connection, credentials: { credentialsFile } });
  return createLogPushSender(logger);
}
