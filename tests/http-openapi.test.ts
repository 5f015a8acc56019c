import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { SignJWT } from 'jose';
import pg from 'pg';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './helpers/app.js';
import { bearer, PASSWORD, uniqueEmail, type Pair } from './helpers/auth.js';
import { startFakeOllama, type FakeOllama } from './helpers/fake-ollama.js';
import { multipartFile } from './helpers/multipart.js';
import { fuzzCases, operations, rawCases, validRequest, type OpenApiDocument, type Operation } from './helpers/openapi-driver.js';
import { inParallel, send, sendRaw, startBuiltServer, type HttpRequest, type ServerProcess } from './helpers/server-process.js';

/**
 * The built server (`node dist/src/main.js`) as its own process, driven over real HTTP on
 * loopback: what a hostile client reaches is the whole stack, Node's HTTP parser included.
 */
const BODY_LIMIT_BYTES = 2 * 1024 * 1024;
/** Requests in flight at once: enough to overlap them, few enough for two shared cores. */
const CONCURRENCY = 4;

/** A trusted HS256 issuer, so the token exchange answers its documented successes too. */
const FRONT_END = { issuer: 'https://front.parley.test', audience: 'parley', secret: 'f'.repeat(64) };

function frontEndToken(sub: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(FRONT_END.issuer)
    .setAudience(FRONT_END.audience)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(FRONT_END.secret));
}

let server: ServerProcess;
let ollama: FakeOllama;
let database: pg.Client;
let document: OpenApiDocument;

beforeAll(async () => {
  // a model to talk to, so the AI routes answer their documented requests as they would in service
  ollama = await startFakeOllama();
  server = await startBuiltServer({
    RATE_LIMIT_REQUESTS: '1000000',
    BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
    OLLAMA_BASE_URL: ollama.url,
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: FRONT_END.issuer, audience: FRONT_END.audience, secret: FRONT_END.secret }]),
  });
  database = new pg.Client({ connectionString: await testDatabaseUrl() });
  await database.connect();
  document = JSON.parse((await send(server.url, { method: 'GET', url: '/openapi.json' })).body) as OpenApiDocument;
}, 240_000);
afterAll(async () => {
  await database?.end();
  await server?.stop();
  await ollama?.close();
});

async function register(email = uniqueEmail()): Promise<Pair & { email: string }> {
  const res = await send(server.url, {
    method: 'POST',
    url: '/auth/register',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ email, password: PASSWORD, deviceId: 'phone-1', platform: 'ios' }),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.body}`);
  return { ...(JSON.parse(res.body) as Pair), email };
}

async function login(email: string): Promise<Pair> {
  const res = await send(server.url, {
    method: 'POST',
    url: '/auth/login',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ email, password: PASSWORD, deviceId: 'laptop-1', platform: 'web' }),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as Pair;
}

/** Registered over HTTP, promoted in the database (there is no HTTP way to become admin), signed in again. */
async function admin(): Promise<Pair> {
  const { email } = await register(uniqueEmail('admin'));
  await database.query(`UPDATE users SET role = 'admin' WHERE email = $1`, [email]);
  return login(email);
}

/** Fresh callers for each operation: a case may log them out, delete or ban them. */
async function callers(): Promise<Array<[string, Record<string, string>]>> {
  const [user, anAdmin] = await Promise.all([register(), admin()]);
  return [
    ['anonymous', {}],
    ['user', bearer(user.accessToken)],
    ['admin', bearer(anAdmin.accessToken)],
  ];
}

interface Outcome {
  label: string;
  operation: Operation;
  /** 0: no answer (the connection failed or was closed). */
  status: number;
  contentType: string;
  body: string;
}

async function outcome(label: string, operation: Operation, request: HttpRequest): Promise<Outcome> {
  try {
    return { label, operation, ...(await send(server.url, request)) };
  } catch (error) {
    const reason = error instanceof Error ? `${error.message} (${String(error.cause)})` : String(error);
    return { label, operation, status: 0, contentType: '', body: `no answer: ${reason}` };
  }
}

interface RawOutcome {
  label: string;
  status: number | null;
  /** A client that gives up may get no answer; any other request must get one. */
  answerExpected: boolean;
}

/**
 * Every operation, driven as anonymous, a signed-in user and an admin, with the request its
 * schemas describe and the bounded hostile cases of the driver (fetch), then the framing only a
 * raw socket can send; both tests below judge the same outcomes.
 */
async function walk(): Promise<{ outcomes: Outcome[]; raw: RawOutcome[] }> {
  const outcomes: Outcome[] = [];
  const raw: RawOutcome[] = [];
  for (const operation of operations(document)) {
    const cases = [{ name: 'the documented request', request: validRequest(document, operation) }, ...fuzzCases(document, operation)];
    for (const [role, auth] of await callers()) {
      const label = (name: string) => `${operation.method} ${operation.path} as ${role}, ${name}`;
      outcomes.push(
        ...(await inParallel(cases, CONCURRENCY, ({ name, request }) =>
          outcome(label(name), operation, { ...request, headers: { ...request.headers, ...auth } }),
        )),
      );
      raw.push(
        ...(await inParallel(rawCases(document, operation, BODY_LIMIT_BYTES), CONCURRENCY, async ({ name, request, halfClose }) => ({
          label: label(name),
          status: await sendRaw(server.port, { ...request, headers: { ...request.headers, ...auth } }, { halfClose, timeoutMs: 10_000 }),
          answerExpected: !halfClose,
        }))),
      );
    }
  }
  return { outcomes, raw };
}

/** The documented operation a concrete request lands on. */
function operationFor(method: string, url: string): Operation {
  const path = url.split('?')[0]!;
  const found = operations(document).find(
    (operation) => operation.method === method && new RegExp(`^${operation.path.replace(/\{path\}$/, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path),
  );
  if (!found) throw new Error(`no documented operation for ${method} ${path}`);
  return found;
}

/** The successful and conflicting paths the feature tests take, so 2xx bodies are judged too. */
async function happyPaths(): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const call = async (request: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) => {
    const payload = request.payload === undefined || Buffer.isBuffer(request.payload) ? request.payload : JSON.stringify(request.payload);
    const headers = { ...(payload === undefined || Buffer.isBuffer(payload) ? {} : { 'content-type': 'application/json' }), ...request.headers };
    const result = await outcome(`${request.method} ${request.url.split('?')[0]} (happy path)`, operationFor(request.method, request.url), {
      method: request.method,
      url: request.url,
      headers,
      ...(payload === undefined ? {} : { payload }),
    });
    outcomes.push(result);
    return result;
  };
  const a = await register();
  const b = await register();
  const adminAuth = bearer((await admin()).accessToken);
  const me = bearer(a.accessToken);
  await call({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'd', platform: 'web' } });
  await call({ method: 'POST', url: '/auth/register', payload: { email: a.email, password: PASSWORD, deviceId: 'd', platform: 'web' } });
  await call({ method: 'POST', url: '/auth/login', payload: { email: a.email, password: PASSWORD, deviceId: 'd2', platform: 'web' } });
  await call({ method: 'POST', url: '/auth/login', payload: { email: a.email, password: 'wrong password!', deviceId: 'd2', platform: 'web' } });
  await call({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: b.refreshToken } });
  for (const url of ['/auth/me', '/auth/sessions', '/users/me', '/users/me/activity', '/sessions', '/reports/mine', `/users/${b.user.id}/public`]) {
    await call({ method: 'GET', url, headers: me });
  }
  await call({ method: 'PATCH', url: '/users/me', headers: me, payload: { version: 1, username: `u_${a.user.id.slice(0, 8)}`, englishLevel: 'intermediate' } });
  await call({ method: 'PATCH', url: '/users/me', headers: me, payload: { version: 1, bio: 'stale' } });
  await call({ method: 'PATCH', url: '/users/me', headers: me, payload: { bio: 'no version' } });
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .png()
    .toBuffer();
  const { payload, headers } = multipartFile(png, 'a.png', 'image/png');
  const uploaded = await call({ method: 'POST', url: '/users/me/avatar', headers: { ...me, ...headers }, payload });
  const avatarUrl = new URL((JSON.parse(uploaded.body) as { profile: { avatarUrl: string } }).profile.avatarUrl);
  await call({ method: 'GET', url: avatarUrl.pathname + avatarUrl.search });
  await call({ method: 'GET', url: `${avatarUrl.pathname}?expires=1&signature=forged` });
  await call({ method: 'DELETE', url: '/users/me/avatar', headers: me });
  await call({ method: 'POST', url: '/reports', headers: me, payload: { reportedId: b.user.id, reason: 'spam' } });
  await call({ method: 'POST', url: '/users/me/wallet', headers: me, payload: { address: `0x${'cd'.repeat(20)}` } });
  for (const url of [
    '/admin/stats',
    '/admin/users',
    `/admin/users/${a.user.id}`,
    '/admin/reports',
    '/admin/invite-keys',
    '/admin/activity?from=2020-01-01&to=2100-01-01T00:00:00Z',
  ]) {
    await call({ method: 'GET', url, headers: adminAuth });
  }
  await call({ method: 'GET', url: '/admin/activity?from=not-a-date', headers: adminAuth });
  const key = await call({ method: 'POST', url: '/admin/invite-keys', headers: adminAuth, payload: {} });
  await call({ method: 'GET', url: `/admin/invite-keys/${(JSON.parse(key.body) as { key: string }).key}`, headers: adminAuth });
  await call({ method: 'PATCH', url: `/admin/users/${b.user.id}/ban`, headers: adminAuth, payload: { reason: 'spam' } });
  await call({ method: 'PATCH', url: `/admin/users/${b.user.id}/unban`, headers: adminAuth });
  await call({ method: 'GET', url: `/admin/users/${a.user.id}`, headers: me });
  for (const url of ['/health', '/ready', '/metrics', '/.well-known/jwks.json', '/auth/providers']) await call({ method: 'GET', url });
  const exchange = async (sub: string) => ({ token: await frontEndToken(sub), deviceId: 'd3', platform: 'web' });
  await call({ method: 'POST', url: '/auth/exchange', payload: await exchange(uniqueEmail('front')) });
  await call({ method: 'POST', url: '/auth/exchange', payload: await exchange(a.email) });
  await call({ method: 'POST', url: '/auth/exchange/link', headers: me, payload: { token: await frontEndToken(a.email) } });
  await call({ method: 'POST', url: '/auth/logout', headers: me });
  await call({ method: 'GET', url: '/auth/me', headers: me });
  return outcomes;
}

let outcomes: Outcome[];
let rawOutcomes: RawOutcome[];

describe('every operation of /openapi.json under hostile input, on the built server over HTTP', () => {
  beforeAll(async () => {
    const walked = await walk();
    outcomes = [...(await happyPaths()), ...walked.outcomes];
    rawOutcomes = walked.raw;
  }, 180_000);

  it('always answers, never with 5xx, as anonymous, a signed-in user or an admin', () => {
    expect(outcomes.length).toBeGreaterThan(1000);
    const failures = outcomes
      .filter((outcome) => outcome.status >= 500 || outcome.status === 0)
      .map((outcome) => `${outcome.label}: ${outcome.status} ${outcome.body.slice(0, 200)}`);
    expect(failures).toEqual([]);
  });

  it('answers framing only a raw socket sends (cut-off bodies, an oversized Content-Length, bad chunks) without 5xx', () => {
    expect(rawOutcomes.length).toBeGreaterThan(100);
    const failures = rawOutcomes
      .filter((outcome) => (outcome.status ?? 0) >= 500 || (outcome.status === null && outcome.answerExpected))
      .map((outcome) => `${outcome.label}: ${outcome.status ?? 'no answer'}`);
    expect(failures).toEqual([]);
  });

  it('logs no unexpected error (level 50 or above) while it is attacked', () => {
    const errors = server
      .logLines()
      .filter((line) => Number(line.level) >= 50)
      .map((line) => JSON.stringify(line).slice(0, 400));
    expect(errors).toEqual([]);
    expect(server.spawned.child.exitCode).toBeNull();
  });

  it('answers only statuses the document declares for the operation, with bodies its schemas accept', () => {
    const validator = new Ajv2020({ strict: false, allErrors: false });
    formats.default(validator);
    validator.addSchema({ $id: 'openapi', components: document.components ?? {} });
    const compiled = new Map<object, ValidateFunction>();
    const validate = (schema: object) => {
      let fn = compiled.get(schema);
      if (!fn) {
        fn = validator.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as object);
        compiled.set(schema, fn);
      }
      return fn;
    };
    const failures: string[] = [];
    for (const outcome of outcomes) {
      const declared = outcome.operation.responses[String(outcome.status)] ?? outcome.operation.responses.default;
      if (!declared) {
        failures.push(`${outcome.label}: ${outcome.status} is not declared (${outcome.body.slice(0, 120)})`);
        continue;
      }
      if (!declared.content) {
        if (outcome.body !== '') failures.push(`${outcome.label}: ${outcome.status} declares no body, got ${outcome.body.slice(0, 120)}`);
        continue;
      }
      const mediaType = outcome.contentType.split(';')[0]!.trim();
      const content = declared.content[mediaType] ?? declared.content[`${mediaType.split('/')[0]}/*`] ?? declared.content['*/*'];
      if (!content) {
        failures.push(`${outcome.label}: ${outcome.status} served ${mediaType}, declared ${Object.keys(declared.content).join(', ')}`);
        continue;
      }
      if (mediaType !== 'application/json' || !content.schema) continue;
      const check = validate(content.schema);
      if (!check(JSON.parse(outcome.body)))
        failures.push(`${outcome.label}: ${outcome.status} body ${validator.errorsText(check.errors)}: ${outcome.body.slice(0, 160)}`);
    }
    expect(outcomes.filter((outcome) => outcome.label.endsWith('(happy path)') && outcome.status < 300).length).toBeGreaterThan(25);
    expect([...new Set(failures.map((failure) => failure.replace(/ as (anonymous|user|admin),/, ',')))]).toEqual([]);
  });
});
describe('input PostgreSQL cannot hold', () => {
  const json = (request: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) =>
    send(server.url, {
      method: request.method,
      url: request.url,
      headers: { 'content-type': 'application/json', ...request.headers },
      ...(request.payload === undefined ? {} : { payload: JSON.stringify(request.payload) }),
    });

  it('refuses a NUL character anywhere in a body, query or path with 400 validation_failed', async () => {
    const user = await register();
    const anAdmin = await admin();
    const responses = [
      await json({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'phone\u00001', platform: 'ios' } }),
      await json({ method: 'GET', url: '/admin/users?search=a%00b', headers: bearer(anAdmin.accessToken) }),
      await json({ method: 'PATCH', url: `/admin/users/${user.user.id}/ban`, headers: bearer(anAdmin.accessToken), payload: { reason: 'x\u0000' } }),
      await json({ method: 'PATCH', url: '/users/me', headers: bearer(user.accessToken), payload: { version: 1, bio: 'hi\u0000' } }),
    ];
    for (const res of responses) {
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).error).toMatchObject({ code: 'validation_failed', details: { fields: [{ message: 'must not contain NUL characters' }] } });
    }
  });

  it('refuses a profile version beyond a PostgreSQL integer, in the body or If-Match, with 400', async () => {
    const user = await register();
    const inBody = await json({ method: 'PATCH', url: '/users/me', headers: bearer(user.accessToken), payload: { version: 2 ** 31, bio: 'hi' } });
    expect(inBody.status).toBe(400);
    expect(JSON.parse(inBody.body).error.code).toBe('validation_failed');
    const inHeader = await json({
      method: 'PATCH',
      url: '/users/me',
      headers: { ...bearer(user.accessToken), 'if-match': `"${2 ** 31}"` },
      payload: { bio: 'hi' },
    });
    expect(inHeader.status).toBe(400);
    expect(JSON.parse(inHeader.body).error.code).toBe('validation_failed');
  });
});
