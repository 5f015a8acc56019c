import { randomUUID } from 'node:crypto';
import type { HttpRequest } from './server-process.js';

/**
 * Drives every operation of the server's own OpenAPI document with hostile input: the fuzz
 * test asserts no 5xx, the conformance test that every answer is one the document declares.
 * Cases are bounded per operation (each property gets a fixed set of bad values) so the walk
 * stays a few seconds on two cores.
 */

export interface JsonSchema {
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  default?: unknown;
  $ref?: string;
  [key: string]: unknown;
}

export interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}

export interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  requestBody?: { content: Record<string, { schema?: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>;
  security?: unknown[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

export interface Case {
  /** What the case tries, for failure messages. */
  name: string;
  request: HttpRequest;
}

/**
 * A request written byte by byte on a socket, for framing fetch cannot produce: `declaredLength`
 * replaces the real Content-Length, `rawBody` replaces the framed body.
 */
export interface RawCase {
  name: string;
  request: HttpRequest & { declaredLength?: number; rawBody?: string };
  /** Closes the sending side once everything is written, as a client that gives up does. */
  halfClose: boolean;
}

const HTTP_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

export function operations(document: OpenApiDocument): Operation[] {
  return Object.entries(document.paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, operation]) => ({ ...operation, parameters: operation.parameters ?? [], method: method.toUpperCase(), path })),
  );
}

function resolve(document: OpenApiDocument, schema: JsonSchema | undefined): JsonSchema {
  if (!schema) return {};
  if (schema.$ref) return resolve(document, document.components?.schemas?.[schema.$ref.split('/').pop()!]);
  return schema;
}

/** A value the schema accepts, as far as a small generator can tell (good enough to get past validation to the code behind). */
export function sample(document: OpenApiDocument, raw: JsonSchema | undefined): unknown {
  const schema = resolve(document, raw);
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const variants = schema.anyOf ?? schema.oneOf ?? schema.allOf;
  if (variants) return sample(document, variants.find((variant) => resolve(document, variant).type !== 'null') ?? variants[0]);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, property]) => [key, sample(document, property)]));
    case 'array':
      return [sample(document, schema.items)];
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return true;
    case 'string':
      return sampleString(schema);
    default:
      return 'x';
  }
}

function sampleString(schema: JsonSchema): string {
  switch (schema.format) {
    case 'uuid':
      return randomUUID();
    case 'email':
      return `fuzz-${randomUUID().slice(0, 8)}@parley.test`;
    case 'date-time':
      return new Date().toISOString();
    case 'uri':
      return 'https://parley.test/x';
  }
  if (schema.pattern === '^0x[0-9a-fA-F]{40}$') return `0x${'ab'.repeat(20)}`;
  const length = Math.max(schema.minLength ?? 0, 12);
  return 'Fuzz_value_x'.padEnd(length, 'x').slice(0, schema.maxLength ?? length);
}

/** Bad values every property, parameter and query gets in turn. */
const BAD_VALUES: Array<[string, unknown]> = [
  ['NUL in a string', 'a\u0000b'],
  ['2^31', 2 ** 31],
  ['-2^31-1', -(2 ** 31) - 1],
  ['2^53+2', 2 ** 53 + 2],
  ['1e308', 1e308],
  ['a boolean', true],
  ['an array', ['a', 1]],
  ['an object', { nested: { deeper: 'a\u0000' } }],
  ['null', null],
  ['a 1 MB string', 'x'.repeat(1_000_000)],
  ['a long unicode string', '\u{1F600}\u0301'.repeat(2000)],
];

const BAD_TEXT: Array<[string, string]> = [
  ['NUL', '%00'],
  ['NUL inside', 'a%00b'],
  ['a huge number', '99999999999999999999999'],
  ['2^31', String(2 ** 31)],
  ['a negative number', '-2147483649'],
  ['1e400', '1e400'],
  ['not a number', 'NaN'],
  ['a long value', 'x'.repeat(6000)],
  ['unicode', encodeURIComponent('\u{1F600}\u0301ü')],
  ['a path', '..%2F..%2Fetc%2Fpasswd'],
  ['empty', ''],
];

function depth(levels: number): string {
  return `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
}

const BAD_JSON: Array<[string, string]> = [
  ['truncated JSON', '{"a":'],
  ['JSON null', 'null'],
  ['a JSON array', '[]'],
  ['a JSON string', '"x"'],
  ['a JSON number overflow', '1e999'],
  ['deeply nested objects', depth(5000)],
  ['deeply nested arrays', `${'['.repeat(20000)}${']'.repeat(20000)}`],
  ['a NUL key', '{"\\u0000":1}'],
  ['a lone surrogate', '{"a":"\\ud800"}'],
  ['a prototype key', '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}'],
];

function multipartBodies(): Array<[string, string, Buffer]> {
  const boundary = 'fuzzboundary';
  const type = `multipart/form-data; boundary=${boundary}`;
  const part = (headers: string, content: string) => `--${boundary}\r\n${headers}\r\n\r\n${content}\r\n`;
  return [
    ['multipart without a boundary', 'multipart/form-data', Buffer.from('garbage')],
    ['multipart garbage', type, Buffer.from('not multipart at all')],
    ['multipart truncated in a part', type, Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc`)],
    ['multipart with only a field', type, Buffer.from(`${part('Content-Disposition: form-data; name="note"', 'hello')}--${boundary}--\r\n`)],
    ['multipart with no parts', type, Buffer.from(`--${boundary}--\r\n`)],
    [
      'multipart with two files',
      type,
      Buffer.from(
        `${part('Content-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png', 'abc')}${part('Content-Disposition: form-data; name="file"; filename="b.png"\r\nContent-Type: image/png', 'def')}--${boundary}--\r\n`,
      ),
    ],
    [
      'multipart with a NUL file name',
      type,
      Buffer.from(`${part('Content-Disposition: form-data; name="file"; filename="a\u0000.png"\r\nContent-Type: image/png', 'abc')}--${boundary}--\r\n`),
    ],
    [
      'multipart with a huge part header',
      type,
      Buffer.from(`${part(`Content-Disposition: form-data; name="file"; filename="${'a'.repeat(100_000)}"`, 'abc')}--${boundary}--\r\n`),
    ],
    ['multipart with a bad boundary parameter', 'multipart/form-data; boundary=', Buffer.from('--\r\n\r\n')],
  ];
}

/** The sample of a body with only its required properties. */
function minimalBody(document: OpenApiDocument, raw: JsonSchema | undefined): unknown {
  const schema = resolve(document, raw);
  const value = sample(document, schema);
  if (schema.type !== 'object' || typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => schema.required?.includes(key)));
}

function pathFor(operation: Operation, values: Record<string, string>): string {
  return operation.path.replace(/\{([^}]+)\}/g, (_match, name: string) => values[name] ?? 'x');
}

function query(entries: Array<[string, string]>): string {
  return entries.length ? `?${entries.map(([key, value]) => `${encodeURIComponent(key)}=${value}`).join('&')}` : '';
}

/** The request that the document says should work, built from its schemas. */
export function validRequest(document: OpenApiDocument, operation: Operation): HttpRequest {
  const pathValues = Object.fromEntries(
    operation.parameters.filter((p) => p.in === 'path').map((p) => [p.name, encodeURIComponent(String(sample(document, p.schema)))]),
  );
  const queryEntries = operation.parameters
    .filter((p) => p.in === 'query' && p.required)
    .map((p): [string, string] => [p.name, encodeURIComponent(String(sample(document, p.schema)))]);
  const json = operation.requestBody?.content['application/json'];
  return {
    method: operation.method,
    url: pathFor(operation, pathValues) + query(queryEntries),
    ...(json ? { payload: JSON.stringify(minimalBody(document, json.schema)), headers: { 'content-type': 'application/json' } } : {}),
  };
}

/** A bounded set of hostile requests for one operation. */
export function fuzzCases(document: OpenApiDocument, operation: Operation): Case[] {
  const valid = validRequest(document, operation);
  const cases: Case[] = [];
  const pathParameters = operation.parameters.filter((p) => p.in === 'path');
  const pathValues = Object.fromEntries(pathParameters.map((p) => [p.name, encodeURIComponent(String(sample(document, p.schema)))]));
  const validQuery = valid.url.includes('?') ? valid.url.slice(valid.url.indexOf('?') + 1) : '';
  const base = { method: operation.method, ...(valid.payload === undefined ? {} : { payload: valid.payload, headers: valid.headers }) };

  for (const parameter of pathParameters) {
    for (const [what, value] of BAD_TEXT.filter(([, text]) => text !== '')) {
      const url = pathFor(operation, { ...pathValues, [parameter.name]: value }) + (validQuery ? `?${validQuery}` : '');
      cases.push({ name: `path ${parameter.name}: ${what}`, request: { ...base, url } });
    }
  }
  const path = pathFor(operation, pathValues);
  for (const parameter of operation.parameters.filter((p) => p.in === 'query')) {
    for (const [what, value] of BAD_TEXT) {
      cases.push({ name: `query ${parameter.name}: ${what}`, request: { ...base, url: path + query([[parameter.name, value]]) } });
    }
    cases.push({
      name: `query ${parameter.name}: repeated`,
      request: {
        ...base,
        url:
          path +
          query([
            [parameter.name, '1'],
            [parameter.name, '2'],
          ]),
      },
    });
    cases.push({ name: `query ${parameter.name}: bracketed`, request: { ...base, url: `${path}?${parameter.name}[a]=1` } });
  }
  for (const parameter of operation.parameters.filter((p) => p.in === 'header')) {
    for (const value of ['"99999999999999999999"', `"${2 ** 31}"`, 'W/"-1"', 'nonsense', 'x'.repeat(6000)]) {
      cases.push({
        name: `header ${parameter.name}: ${value.slice(0, 20)}`,
        request: { ...base, url: valid.url, headers: { ...base.headers, [parameter.name]: value } },
      });
    }
  }

  const json = operation.requestBody?.content['application/json'];
  const takesBody = operation.method !== 'GET';
  if (takesBody) {
    const jsonHeaders = { 'content-type': 'application/json' };
    for (const [what, text] of BAD_JSON)
      cases.push({ name: `body: ${what}`, request: { method: operation.method, url: valid.url, headers: jsonHeaders, payload: text } });
    cases.push({
      name: 'body: text/plain',
      request: { method: operation.method, url: valid.url, headers: { 'content-type': 'text/plain' }, payload: 'hello' },
    });
    cases.push({
      name: 'body: a form',
      request: { method: operation.method, url: valid.url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=%00' },
    });
    for (const [what, type, payload] of multipartBodies()) {
      cases.push({ name: `body: ${what}`, request: { method: operation.method, url: valid.url, headers: { 'content-type': type }, payload } });
    }
  }
  if (json) {
    const schema = resolve(document, json.schema);
    // only the required properties besides the bad one, so no other field's check stops the request first
    const good = minimalBody(document, schema) as Record<string, unknown>;
    const headers = { 'content-type': 'application/json' };
    for (const property of Object.keys(schema.properties ?? {})) {
      for (const [what, value] of BAD_VALUES) {
        cases.push({
          name: `body ${property}: ${what}`,
          request: { method: operation.method, url: valid.url, headers, payload: JSON.stringify({ ...good, [property]: value }) },
        });
      }
    }
    cases.push({
      name: 'body: an unknown NUL key',
      request: { method: operation.method, url: valid.url, headers, payload: JSON.stringify({ ...good, 'a\u0000': 1 }) },
    });
  }
  return cases;
}

/**
 * Framing only a raw socket can send, for an operation that takes a body: bodies cut off by a
 * client that gives up (JSON and multipart), a Content-Length beyond `bodyLimit` with no body
 * behind it, and a broken chunked encoding.
 */
export function rawCases(document: OpenApiDocument, operation: Operation, bodyLimit: number): RawCase[] {
  if (operation.method === 'GET') return [];
  const valid = validRequest(document, operation);
  const json = { 'content-type': 'application/json' };
  const boundary = 'rawboundary';
  const multipartHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\u0089PNG\r\n`;
  return [
    {
      name: 'raw: a JSON body cut off',
      request: { method: operation.method, url: valid.url, headers: json, payload: '{"a":"bcd', declaredLength: 4096 },
      halfClose: true,
    },
    {
      name: 'raw: a multipart body cut off in its file',
      request: {
        method: operation.method,
        url: valid.url,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: multipartHead,
        declaredLength: 64 * 1024,
      },
      halfClose: true,
    },
    {
      name: 'raw: a Content-Length over the body limit, no body',
      request: { method: operation.method, url: valid.url, headers: json, payload: '', declaredLength: bodyLimit * 4 },
      halfClose: false,
    },
    {
      name: 'raw: a chunked body with a bad chunk size',
      request: { method: operation.method, url: valid.url, headers: { ...json, 'transfer-encoding': 'chunked' }, rawBody: 'zz\r\n{}\r\n0\r\n\r\n' },
      halfClose: false,
    },
  ];
}
