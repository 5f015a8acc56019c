import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/infra/logger.js';
import { createFcmPushSender, createPushSender, type FcmPushSenderOptions } from '../src/infra/push-fcm.js';
import { PushError, type PushMessage, type PushSender } from '../src/infra/push.js';
import { INVALID_TOKEN_MESSAGE, makeServiceAccount, startFakeFcm, writeCredentialsFile, type FakeFcm, type TestServiceAccount } from './helpers/fake-fcm.js';

const silent = createLogger({ level: 'silent' });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'parley-push-'));

let account: TestServiceAccount;
let stranger: TestServiceAccount;
let fake: FakeFcm;
const opened: PushSender[] = [];

beforeAll(async () => {
  account = makeServiceAccount();
  // a well-formed account whose key the token endpoint has never been given
  stranger = makeServiceAccount(account.projectId);
  stranger.clientEmail = account.clientEmail;
  fake = await startFakeFcm({ accounts: [account] });
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((sender) => sender.close()));
});

afterAll(async () => {
  await fake.close();
});

function fcmSender(overrides: Partial<FcmPushSenderOptions> = {}): PushSender {
  const sender = createFcmPushSender({ credentials: account, apiUrl: fake.url, tokenUrl: fake.tokenUrl, logger: silent, ...overrides });
  opened.push(sender);
  return sender;
}

let tokenCount = 0;
function push(overrides: Partial<PushMessage> = {}): PushMessage {
  tokenCount += 1;
  return {
    token: `device-token-${tokenCount}`,
    title: 'Missed call',
    body: 'Ana tried to call you',
    data: { type: 'missed_call', callId: 'c-1' },
    collapseKey: 'missed-call-c1',
    ...overrides,
  };
}

async function failure(sending: Promise<unknown>): Promise<PushError> {
  const error = await sending.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(PushError);
  return error as PushError;
}

function sendsTo(token: string): number {
  return fake.received.filter((received) => received.token === token).length;
}

describe('FCM push sender (firebase-admin against a local FCM)', () => {
  it('sends title, body, data and collapse keys, with a bearer token fetched once for several sends', async () => {
    const sender = fcmSender();
    expect(sender.kind).toBe('fcm');
    const tokenRequestsBefore = fake.tokenRequests;
    const [first, second] = [push(), push({ collapseKey: 'call:550e8400-e29b-41d4-a716-446655440000:missed' })];

    const ids = await Promise.all([sender.send(first), sender.send(second)]);
    const third = push();
    ids.push(await sender.send(third));

    for (const id of ids) expect(id).toMatch(new RegExp(`^projects/${account.projectId}/messages/\\d+$`));
    expect(new Set(ids).size).toBe(3);
    expect(fake.tokenRequests - tokenRequestsBefore).toBe(1);

    const received = await fake.nextPush(first.token);
    expect(received.projectId).toBe(account.projectId);
    expect(received.authorization).toBe(`Bearer ${fake.issuedTokens.at(-1)}`);
    expect(received.message).toMatchObject({
      token: first.token,
      notification: { title: 'Missed call', body: 'Ana tried to call you' },
      data: { type: 'missed_call', callId: 'c-1' },
      android: { collapse_key: 'missed-call-c1' },
      apns: { headers: { 'apns-collapse-id': 'missed-call-c1' } },
      webpush: { headers: { Topic: 'missed-call-c1' } },
    });
    await fake.nextPush(third.token);

    // ':' is outside the Web Push Topic alphabet: the topic becomes a digest, the others keep the key
    const odd = (await fake.nextPush(second.token)).message as { android: object; apns: { headers: object }; webpush: { headers: { Topic: string } } };
    expect(odd.android).toEqual({ collapse_key: second.collapseKey });
    expect(odd.apns.headers).toEqual({ 'apns-collapse-id': second.collapseKey });
    expect(odd.webpush.headers.Topic).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('hashes a collapse key longer than the 64 bytes APNs allows', async () => {
    const long = push({ collapseKey: `conversation-${'é'.repeat(40)}` });
    await fcmSender().send(long);
    const { message } = await fake.nextPush(long.token);
    const headers = (message as { apns: { headers: Record<string, string> }; webpush: { headers: Record<string, string> } }).apns.headers;
    expect(Buffer.byteLength(long.collapseKey)).toBeGreaterThan(64);
    expect(headers['apns-collapse-id']).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect((message as { android: { collapse_key: string } }).android.collapse_key).toBe(long.collapseKey);
  });

  it('UNREGISTERED, and INVALID_ARGUMENT about the token, mean the token is dead; INVALID_ARGUMENT about the message does not', async () => {
    const sender = fcmSender();
    const gone = push();
    fake.script(gone.token, { status: 404, fcmError: 'UNREGISTERED' });
    const unregistered = await failure(sender.send(gone));
    expect(unregistered).toMatchObject({ kind: 'invalid-token', code: 'messaging/registration-token-not-registered' });

    const malformed = push();
    fake.script(malformed.token, { status: 400, fcmError: 'INVALID_ARGUMENT', message: INVALID_TOKEN_MESSAGE });
    expect(await failure(sender.send(malformed))).toMatchObject({ kind: 'invalid-token', code: 'messaging/invalid-argument' });

    const tooBig = push();
    fake.script(tooBig.token, { status: 400, fcmError: 'INVALID_ARGUMENT', message: 'Message is too big' });
    expect(await failure(sender.send(tooBig))).toMatchObject({ kind: 'permanent', code: 'messaging/invalid-argument' });
  });

  it('429 is transient, after Retry-After', async () => {
    const message = push();
    fake.script(message.token, { status: 429, fcmError: 'QUOTA_EXCEEDED', retryAfter: '1' });
    const error = await failure(fcmSender().send(message));
    expect(error).toMatchObject({ kind: 'transient', code: 'messaging/message-rate-exceeded', retryAfterMs: 1000 });
  });

  it('500 is transient, without a delay when FCM names none', async () => {
    const message = push();
    fake.script(message.token, { status: 500, fcmError: 'INTERNAL' });
    const error = await failure(fcmSender().send(message));
    expect(error).toMatchObject({ kind: 'transient', code: 'messaging/internal-error' });
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('503 is handed back at once (the SDK does not retry it itself), with Retry-After in seconds or as a date', async () => {
    const sender = fcmSender();
    const message = push();
    // firebase-admin's own policy would wait 1 s and resend, and get the 200 that follows
    fake.script(message.token, { status: 503, fcmError: 'UNAVAILABLE', retryAfter: '1' });
    const error = await failure(sender.send(message));
    expect(error).toMatchObject({ kind: 'transient', code: 'messaging/server-unavailable', retryAfterMs: 1000 });
    expect(sendsTo(message.token)).toBe(1);

    const later = push();
    fake.script(later.token, { status: 503, fcmError: 'UNAVAILABLE', retryAfter: new Date(Date.now() + 120_000).toUTCString() });
    const dated = await failure(sender.send(later));
    expect(dated.kind).toBe('transient');
    expect(dated.retryAfterMs).toBeGreaterThan(115_000);
    expect(dated.retryAfterMs).toBeLessThanOrEqual(120_000);
  });

  it('a dropped connection is transient, and not retried by the SDK', async () => {
    const message = push();
    fake.script(message.token, { reset: true });
    const error = await failure(fcmSender().send(message));
    expect(error).toMatchObject({ kind: 'transient', code: 'app/network-error' });
    expect(sendsTo(message.token)).toBe(1);
  });

  it('other refusals are permanent: another 400, 401 THIRD_PARTY_AUTH_ERROR, 403 SENDER_ID_MISMATCH, a non-JSON 400', async () => {
    const sender = fcmSender();
    const cases = [
      { reply: { status: 400, fcmError: 'UNSPECIFIED_ERROR' }, code: 'messaging/unknown-error' },
      { reply: { status: 401, fcmError: 'THIRD_PARTY_AUTH_ERROR' }, code: 'messaging/third-party-auth-error' },
      { reply: { status: 403, fcmError: 'SENDER_ID_MISMATCH' }, code: 'messaging/mismatched-credential' },
      // the SDK calls any non-JSON 400 invalid-argument: only FCM's own verdict may kill a token
      { reply: { status: 400, text: '<html>Bad Request</html>' }, code: 'messaging/invalid-argument' },
    ];
    for (const { reply, code } of cases) {
      const message = push();
      fake.script(message.token, reply);
      expect(await failure(sender.send(message)), JSON.stringify(reply)).toMatchObject({ kind: 'permanent', code });
    }
  });

  it('credentials the token endpoint refuses are permanent; a failing token endpoint is transient; the next send asks again', async () => {
    // A 4xx from Google's token endpoint (invalid_grant, invalid_client) is a revoked or wrong key:
    // retrying the push cannot succeed until an operator fixes the configuration.
    const sender = fcmSender();
    fake.scriptToken({ status: 401, error: 'invalid_client' });
    const refused = push();
    expect(await failure(sender.send(refused))).toMatchObject({ kind: 'permanent', code: 'oauth2/invalid_client' });
    expect(sendsTo(refused.token)).toBe(0);

    fake.scriptToken({ status: 503, retryAfter: '30' });
    expect(await failure(sender.send(push()))).toMatchObject({ kind: 'transient', code: 'oauth2/internal_failure', retryAfterMs: 30_000 });

    const tokenRequestsBefore = fake.tokenRequests;
    await sender.send(push());
    expect(fake.tokenRequests - tokenRequestsBefore).toBe(1);
  });

  it('an assertion signed by a key the token endpoint does not know is refused for good', async () => {
    const sender = fcmSender({ credentials: stranger });
    const message = push();
    expect(await failure(sender.send(message))).toMatchObject({ kind: 'permanent', code: 'oauth2/invalid_grant' });
    expect(sendsTo(message.token)).toBe(0);
  });

  it('FCM unreachable (nothing listening) is transient', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const error = await failure(fcmSender({ apiUrl: `http://127.0.0.1:${port}` }).send(push()));
    expect(error).toMatchObject({ kind: 'transient', code: 'app/network-error' });
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('reads a service-account key file; its token_uri is used unless a token URL is configured', async () => {
    const fromFile = writeCredentialsFile(tmp, account, fake.tokenUrl);
    const message = push();
    await fcmSender({ credentials: { credentialsFile: fromFile }, tokenUrl: undefined }).send(message);
    expect((await fake.nextPush(message.token)).projectId).toBe(account.projectId);

    // outside hosts are blocked in tests: reaching Google's endpoint would fail the send
    const googleFile = writeCredentialsFile(mkdtempSync(path.join(tmp, 'google-')), account, 'https://oauth2.googleapis.com/token');
    const configured = push();
    await fcmSender({ credentials: { credentialsFile: googleFile }, tokenUrl: fake.tokenUrl }).send(configured);
    await fake.nextPush(configured.token);
    const refused = await failure(fcmSender({ credentials: { credentialsFile: googleFile }, tokenUrl: undefined }).send(push()));
    expect(refused).toMatchObject({ kind: 'transient', code: 'oauth2/network-error' });
  });

  it('never logs the private key, the access token or the device token', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    const logger = createLogger({ level: 'trace', destination });
    const sender = fcmSender({ logger });
    const message = push();
    await sender.send(message);
    fake.scriptToken({ status: 400, error: 'invalid_grant' });
    const other = fcmSender({ logger });
    await failure(other.send(push()));

    const logged = lines.join('');
    expect(logged).toContain('invalid_grant');
    expect(logged).not.toContain(message.token);
    expect(logged).not.toContain(account.privateKey.split('\n')[1]);
    for (const accessToken of fake.issuedTokens) expect(logged).not.toContain(accessToken);
  });
});

describe('createPushSender and its configuration', () => {
  const cwd = mkdtempSync(path.join(tmp, 'config-'));

  it('uses FCM with FIREBASE_* (the key may carry literal \\n), else GOOGLE_APPLICATION_CREDENTIALS, else the log', async () => {
    const config = loadConfig({
      env: {
        FIREBASE_PROJECT_ID: account.projectId,
        FIREBASE_CLIENT_EMAIL: account.clientEmail,
        FIREBASE_PRIVATE_KEY: account.privateKey.replace(/\n/g, '\\n'),
        FCM_API_URL: fake.url,
        FIREBASE_TOKEN_URL: fake.tokenUrl,
      },
      cwd,
    });
    const fromEnv = createPushSender(config, silent);
    opened.push(fromEnv);
    const message = push();
    expect(fromEnv.kind).toBe('fcm');
    await fromEnv.send(message);
    await fake.nextPush(message.token);

    const file = writeCredentialsFile(mkdtempSync(path.join(tmp, 'adc-')), account, fake.tokenUrl);
    const fromFile = createPushSender(loadConfig({ env: { GOOGLE_APPLICATION_CREDENTIALS: file, FCM_API_URL: fake.url }, cwd }), silent);
    opened.push(fromFile);
    const viaFile = push();
    await fromFile.send(viaFile);
    await fake.nextPush(viaFile.token);

    const logOnly = createPushSender(loadConfig({ env: {}, cwd }), silent);
    expect(logOnly.kind).toBe('log');
    await logOnly.close();
  });

  it('refuses FIREBASE_* set in part, naming what is missing without echoing the key', () => {
    expect(() => loadConfig({ env: { FIREBASE_PROJECT_ID: 'parley-prod' }, cwd })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { FIREBASE_PROJECT_ID: 'parley-prod' }, cwd })).toThrow(
      /FIREBASE_CLIENT_EMAIL is missing: .*all three or none \(missing: FIREBASE_CLIENT_EMAIL, FIREBASE_PRIVATE_KEY\)/,
    );
    const attempt = () => loadConfig({ env: { FIREBASE_PRIVATE_KEY: 'super-secret-pem' }, cwd });
    expect(attempt).toThrow(/FIREBASE_PROJECT_ID is missing: .*\(missing: FIREBASE_PROJECT_ID, FIREBASE_CLIENT_EMAIL\)/);
    expect(attempt).not.toThrow(/super-secret-pem/);
  });

  it('refuses a private key that is not PEM at start-up', () => {
    expect(() => createFcmPushSender({ credentials: { ...account, privateKey: 'not a key' }, logger: silent })).toThrow(/is not a PEM private key/);
  });
});
