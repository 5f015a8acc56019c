import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where PayPal's sandbox JSON points its links (the fake answers on loopback whatever the links say). */
const API_BASE = 'https://api.sandbox.paypal.com';
const CHECKOUT_BASE = 'https://www.sandbox.paypal.com';
const MERCHANT = { email_address: 'merchant@parley.test', merchant_id: 'PARLEYMERCHANT1' };
/** PayPal refuses decimals for these. */
const ZERO_DECIMAL_CURRENCIES = new Set(['JPY', 'KRW', 'HUF', 'TWD']);
const ACCESS_TOKEN_LIFETIME_S = 32_400;
const AUTH_ALGO = 'SHA256withRSA';

export interface PayPalMoney {
  currency_code: string;
  value: string;
}

export interface PayPalLink {
  href: string;
  rel: string;
  method: 'GET' | 'POST' | 'PATCH';
}

export type FakeCaptureStatus = 'COMPLETED' | 'PENDING' | 'DECLINED' | 'PARTIALLY_REFUNDED' | 'REFUNDED';

export interface FakeCapture {
  id: string;
  status: FakeCaptureStatus;
  status_details?: { reason: string };
  amount: PayPalMoney;
  final_capture: boolean;
  seller_protection: { status: string; dispute_categories: string[] };
  seller_receivable_breakdown: { gross_amount: PayPalMoney; paypal_fee: PayPalMoney; net_amount: PayPalMoney };
  custom_id?: string;
  invoice_id?: string;
  links: PayPalLink[];
  create_time: string;
  update_time: string;
}

export interface FakeRefund {
  id: string;
  status: 'COMPLETED';
  amount: PayPalMoney;
  seller_payable_breakdown: { gross_amount: PayPalMoney; paypal_fee: PayPalMoney; net_amount: PayPalMoney; total_refunded_amount: PayPalMoney };
  custom_id?: string;
  invoice_id?: string;
  note_to_payer?: string;
  links: PayPalLink[];
  create_time: string;
  update_time: string;
}

export interface FakePurchaseUnit {
  reference_id: string;
  amount: PayPalMoney;
  payee: typeof MERCHANT;
  description?: string;
  custom_id?: string;
  invoice_id?: string;
  soft_descriptor?: string;
  payments?: { captures: FakeCapture[] };
}

export interface FakePayer {
  name: { given_name: string; surname: string };
  email_address: string;
  payer_id: string;
  address: { country_code: string };
}

export interface FakeOrder {
  id: string;
  intent: 'CAPTURE' | 'AUTHORIZE';
  status: 'CREATED' | 'PAYER_ACTION_REQUIRED' | 'APPROVED' | 'COMPLETED';
  payment_source?: { paypal: Record<string, unknown> };
  purchase_units: FakePurchaseUnit[];
  payer?: FakePayer;
  create_time: string;
  update_time: string;
  links: PayPalLink[];
}

/** One request as the fake received it. */
export interface ReceivedPayPalRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook delivery as PayPal would POST it: the raw JSON body and the transmission headers (lower case, as Node gives them). */
export interface SignedWebhook {
  body: string;
  headers: Record<string, string>;
}

export interface SignOptions {
  /** The paypal-transmission-time to sign (default now): an old one makes a webhook that verifies but is stale. */
  transmissionTime?: Date;
}

interface Transmission {
  time: string;
  sig: string;
  certUrl: string;
  body: string;
}

interface ScriptedFailure {
  method?: string;
  path: string;
  status: number;
  remaining: number;
}

interface StoredResponse {
  status: number;
  body: unknown;
}

class PayPalHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`PayPal ${status}`);
  }
}

const ID_ALPHABET = '0123456789ABCDEFGHJKLMNPRSTUVWXY';

/** PayPal's 17-character upper-case ids (orders, captures, refunds). */
function paypalId(): string {
  return [...randomBytes(17)].map((byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

function isoSeconds(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function debugId(): string {
  return randomBytes(7).toString('hex').slice(0, 13);
}

const ERROR_NAMES: Record<number, { name: string; message: string }> = {
  400: { name: 'INVALID_REQUEST', message: 'Request is not well-formed, syntactically incorrect, or violates schema.' },
  403: { name: 'NOT_AUTHORIZED', message: 'Authorization failed due to insufficient permissions.' },
  404: { name: 'RESOURCE_NOT_FOUND', message: 'The specified resource does not exist.' },
  409: { name: 'CONFLICT', message: 'The server has detected a conflict while processing this request.' },
  422: { name: 'UNPROCESSABLE_ENTITY', message: 'The requested action could not be performed, semantically incorrect, or failed business validation.' },
  429: { name: 'RATE_LIMIT_REACHED', message: 'Too many requests. Blocked due to rate limiting.' },
  500: { name: 'INTERNAL_SERVER_ERROR', message: 'An internal server error occurred.' },
  502: { name: 'BAD_GATEWAY', message: 'The server received an invalid response from the upstream server.' },
  503: { name: 'SERVICE_UNAVAILABLE', message: 'Service Unavailable.' },
};

/** PayPal's REST error body: name, message, debug_id, details[].issue, an information link. */
function restError(status: number, issue?: string, description?: string, field?: string) {
  const { name, message } = ERROR_NAMES[status] ?? { name: 'INTERNAL_SERVER_ERROR', message: 'An internal server error occurred.' };
  return new PayPalHttpError(status, {
    name,
    message,
    debug_id: debugId(),
    ...(issue ? { details: [{ ...(field ? { field, location: 'body' } : {}), issue, description: description ?? issue }] } : {}),
    links: [{ href: `https://developer.paypal.com/api/rest/reference/orders/v2/errors/#${issue ?? name}`, rel: 'information_link', method: 'GET' }],
  });
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function parseJsonObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    throw restError(400, 'MALFORMED_REQUEST_JSON', 'The request JSON is not well formed.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw restError(400, 'MALFORMED_REQUEST_JSON', 'The request JSON is not an object.');
  return parsed as Record<string, unknown>;
}

function decimalsOf(currency: string): number {
  return ZERO_DECIMAL_CURRENCIES.has(currency) ? 0 : 2;
}

/** Checks an amount as PayPal does and returns it in minor units. */
function minorUnits(money: unknown, field: string): { currency: string; minor: number } {
  const { currency_code: currency, value } = (money ?? {}) as Partial<PayPalMoney>;
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency))
    throw restError(400, 'INVALID_CURRENCY_CODE', 'Currency code is invalid.', `${field}/currency_code`);
  if (typeof value !== 'string' || !/^\d{1,10}(\.\d+)?$/.test(value))
    throw restError(400, 'INVALID_PARAMETER_SYNTAX', 'The value of a field does not conform to the expected format.', `${field}/value`);
  const [whole, fraction = ''] = value.split('.');
  const decimals = decimalsOf(currency);
  if (decimals === 0 && fraction !== '') throw restError(422, 'DECIMALS_NOT_SUPPORTED', 'Currency code does not support decimals.', `${field}/value`);
  if (fraction.length > decimals)
    throw restError(422, 'DECIMAL_PRECISION', 'If the currency supports decimals, only two decimal place precision is supported.', `${field}/value`);
  return { currency, minor: Number(whole) * 10 ** decimals + Number(fraction.padEnd(decimals, '0') || '0') };
}

function money(minor: number, currency: string): PayPalMoney {
  const decimals = decimalsOf(currency);
  if (decimals === 0) return { currency_code: currency, value: String(minor) };
  return { currency_code: currency, value: `${Math.trunc(minor / 100)}.${String(minor % 100).padStart(2, '0')}` };
}

/** 3.49 % plus a fixed fee, PayPal's standard US rate. */
function paypalFee(grossMinor: number, currency: string): number {
  return Math.round((grossMinor * 349) / 10_000) + (decimalsOf(currency) === 0 ? 40 : 49);
}

/** JSON with every non-ASCII character as a \u escape, as an ASCII-only serialiser writes it: re-serialising it changes its bytes. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function endOfString(text: string, start: number): number {
  let index = start + 1;
  while (index < text.length) {
    if (text[index] === '\\') index += 2;
    else if (text[index] === '"') return index + 1;
    else index += 1;
  }
  return text.length;
}

function skipWhitespace(text: string, start: number): number {
  let index = start;
  while (index < text.length && ' \t\n\r'.includes(text[index]!)) index += 1;
  return index;
}

function endOfValue(text: string, start: number): number {
  const first = text[start];
  if (first === '"') return endOfString(text, start);
  if (first !== '{' && first !== '[') {
    let index = start;
    while (index < text.length && !',}] \t\n\r'.includes(text[index]!)) index += 1;
    return index;
  }
  let depth = 0;
  let index = start;
  while (index < text.length) {
    const char = text[index]!;
    if (char === '"') {
      index = endOfString(text, index);
      continue;
    }
    if (char === '{' || char === '[') depth += 1;
    if (char === '}' || char === ']') {
      depth -= 1;
      if (depth === 0) return index + 1;
    }
    index += 1;
  }
  return text.length;
}

/**
 * The exact text of a top-level member of a JSON object (already known to parse): PayPal verifies
 * the webhook_event it is given byte for byte, so the fake must see it as sent, not as re-parsed.
 */
function rawMember(json: string, key: string): string | undefined {
  let index = skipWhitespace(json, 0) + 1;
  for (;;) {
    index = skipWhitespace(json, index);
    if (json[index] !== '"') return undefined;
    const keyEnd = endOfString(json, index);
    const name = JSON.parse(json.slice(index, keyEnd)) as string;
    const valueStart = skipWhitespace(json, skipWhitespace(json, keyEnd) + 1);
    const valueEnd = endOfValue(json, valueStart);
    if (name === key) return json.slice(valueStart, valueEnd);
    index = skipWhitespace(json, valueEnd);
    if (json[index] !== ',') return undefined;
    index += 1;
  }
}

function link(href: string, rel: string, method: PayPalLink['method'] = 'GET'): PayPalLink {
  return { href, rel, method };
}

/**
 * PayPal's REST API as Parley uses it, on 127.0.0.1: OAuth2 client credentials, Orders v2 (create,
 * get, capture), Payments v2 refunds and the webhook signature verification, with PayPal's JSON
 * shapes, PayPal-Request-Id idempotency and error bodies. Webhooks are "sent" by the test through the
 * event builders; the fake verifies only what it signed itself.
 */
export async function startFakePayPal({ clientId, clientSecret, webhookId }: { clientId: string; clientSecret: string; webhookId: string }) {
  const orders = new Map<string, FakeOrder>();
  const captures = new Map<string, { capture: FakeCapture; orderId: string; refunds: FakeRefund[] }>();
  const pendingCaptureStatus = new Map<string, 'COMPLETED' | 'PENDING' | 'DECLINED'>();
  const idempotent = new Map<string, StoredResponse>();
  const tokens = new Map<string, number>(); // access token -> expiry (ms)
  const transmissions = new Map<string, Transmission>();
  const failures: ScriptedFailure[] = [];
  const stalls: Array<Omit<ScriptedFailure, 'status'>> = [];
  const stalled = new Set<ServerResponse>();
  const requests: ReceivedPayPalRequest[] = [];
  const signingKey = randomBytes(32);
  const certUrl = `${API_BASE}/v1/notifications/certs/CERT-360caa42-fca2a594-${randomBytes(4).toString('hex')}`;

  const matches = (rule: { method?: string; path: string }, method: string, path: string): boolean =>
    rule.method ? rule.method === method && rule.path === path : path.startsWith(rule.path);

  function take<T extends { method?: string; path: string; remaining: number }>(rules: T[], method: string, path: string): T | undefined {
    const rule = rules.find((candidate) => candidate.remaining > 0 && matches(candidate, method, path));
    if (rule) rule.remaining -= 1;
    return rule;
  }

  function parseTarget(target: string): { method?: string; path: string } {
    const [first, second] = target.trim().split(/\s+/);
    return second ? { method: first!.toUpperCase(), path: second } : { path: first! };
  }

  function requireBearer(request: IncomingMessage): void {
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const expiry = token ? tokens.get(token) : undefined;
    if (expiry === undefined || expiry < Date.now()) {
      throw new PayPalHttpError(401, { error: 'invalid_token', error_description: 'Authorization header does not have valid access token' });
    }
  }

  /** PayPal-Request-Id: a retry with the same id gets the first successful answer again, whatever its body. */
  async function idempotently(path: string, request: IncomingMessage, handle: () => StoredResponse): Promise<StoredResponse> {
    const requestId = request.headers['paypal-request-id'];
    const key = typeof requestId === 'string' ? `${path}\n${requestId}` : undefined;
    const stored = key ? idempotent.get(key) : undefined;
    if (stored) return stored;
    const response = handle();
    if (key) idempotent.set(key, response);
    return response;
  }

  const wantsRepresentation = (request: IncomingMessage): boolean => /return=representation/.test(String(request.headers.prefer ?? ''));

  function orderLinks(order: FakeOrder): PayPalLink[] {
    const self = link(`${API_BASE}/v2/checkout/orders/${order.id}`, 'self');
    const checkout = `${CHECKOUT_BASE}/checkoutnow?token=${order.id}`;
    switch (order.status) {
      case 'PAYER_ACTION_REQUIRED':
        return [self, link(checkout, 'payer-action')];
      case 'CREATED':
        return [self, link(checkout, 'approve'), link(self.href, 'update', 'PATCH'), link(`${self.href}/capture`, 'capture', 'POST')];
      case 'APPROVED':
        return [self, link(self.href, 'update', 'PATCH'), link(`${self.href}/capture`, 'capture', 'POST')];
      case 'COMPLETED':
        return [self];
    }
  }

  function handleToken(request: IncomingMessage, body: string): StoredResponse {
    const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
    if (request.headers.authorization !== expected) {
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client Authentication failed' } };
    }
    if (new URLSearchParams(body).get('grant_type') !== 'client_credentials') {
      return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Grant Type is NULL' } };
    }
    const accessToken = `A21AA${randomBytes(48).toString('base64url')}`;
    tokens.set(accessToken, Date.now() + ACCESS_TOKEN_LIFETIME_S * 1000);
    return {
      status: 200,
      body: {
        scope: 'https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund openid',
        access_token: accessToken,
        token_type: 'Bearer',
        app_id: 'APP-80W284485P519543T',
        expires_in: ACCESS_TOKEN_LIFETIME_S,
        nonce: `${new Date().toISOString()}${randomBytes(16).toString('base64url')}`,
      },
    };
  }

  function handleCreateOrder(request: IncomingMessage, body: string): StoredResponse {
    const input = parseJsonObject(body);
    if (input.intent !== 'CAPTURE' && input.intent !== 'AUTHORIZE')
      throw restError(400, 'INVALID_PARAMETER_VALUE', 'The value of a field is invalid.', '/intent');
    const units = input.purchase_units;
    if (!Array.isArray(units) || units.length === 0)
      throw restError(400, 'MISSING_REQUIRED_PARAMETER', 'A required field / parameter is missing.', '/purchase_units');
    const purchaseUnits = units.map((unit: Record<string, unknown>, index): FakePurchaseUnit => {
      const referenceId = typeof unit.reference_id === 'string' ? unit.reference_id : undefined;
      const { currency, minor } = minorUnits(unit.amount, `/purchase_units/@reference_id=='${referenceId ?? 'default'}'/amount`);
      const text = (name: string): Record<string, string> => (typeof unit[name] === 'string' ? { [name]: unit[name] } : {});
      return {
        reference_id: referenceId ?? (index === 0 ? 'default' : String(index)),
        amount: money(minor, currency),
        payee: MERCHANT,
        ...text('description'),
        ...text('custom_id'),
        ...text('invoice_id'),
        ...text('soft_descriptor'),
      };
    });
    const now = isoSeconds();
    const paymentSource = input.payment_source as { paypal?: Record<string, unknown> } | undefined;
    const order: FakeOrder = {
      id: paypalId(),
      intent: input.intent,
      status: paymentSource?.paypal ? 'PAYER_ACTION_REQUIRED' : 'CREATED',
      ...(paymentSource?.paypal ? { payment_source: { paypal: {} } } : {}),
      purchase_units: purchaseUnits,
      create_time: now,
      update_time: now,
      links: [],
    };
    order.links = orderLinks(order);
    orders.set(order.id, order);
    const minimal = { id: order.id, status: order.status, ...(order.payment_source ? { payment_source: order.payment_source } : {}), links: order.links };
    return { status: 200, body: wantsRepresentation(request) ? structuredClone(order) : minimal };
  }

  function orderOr404(id: string): FakeOrder {
    const order = orders.get(id);
    if (!order) throw restError(404, 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist. Please check the resource ID and try again.');
    return order;
  }

  function handleCapture(id: string): StoredResponse {
    const order = orderOr404(id);
    if (order.status === 'COMPLETED')
      throw restError(422, 'ORDER_ALREADY_CAPTURED', 'Order already captured. If intent=CAPTURE only one capture per order is allowed.');
    if (order.status !== 'APPROVED') {
      throw restError(422, 'ORDER_NOT_APPROVED', 'Payer has not yet approved the Order for payment. Please redirect the payer to the approve link.');
    }
    const unit = order.purchase_units[0]!;
    const now = isoSeconds();
    const captureId = paypalId();
    const status = pendingCaptureStatus.get(id) ?? 'COMPLETED';
    const currency = unit.amount.currency_code;
    const { minor } = minorUnits(unit.amount, 'amount');
    const fee = paypalFee(minor, currency);
    const capture: FakeCapture = {
      id: captureId,
      status,
      ...(status === 'PENDING' ? { status_details: { reason: 'PENDING_REVIEW' } } : {}),
      ...(status === 'DECLINED' ? { status_details: { reason: 'DECLINED_BY_RISK_FRAUD_FILTERS' } } : {}),
      amount: unit.amount,
      final_capture: true,
      seller_protection: { status: 'ELIGIBLE', dispute_categories: ['ITEM_NOT_RECEIVED', 'UNAUTHORIZED_TRANSACTION'] },
      seller_receivable_breakdown: { gross_amount: unit.amount, paypal_fee: money(fee, currency), net_amount: money(minor - fee, currency) },
      ...(unit.custom_id ? { custom_id: unit.custom_id } : {}),
      ...(unit.invoice_id ? { invoice_id: unit.invoice_id } : {}),
      links: [
        link(`${API_BASE}/v2/payments/captures/${captureId}`, 'self'),
        link(`${API_BASE}/v2/payments/captures/${captureId}/refund`, 'refund', 'POST'),
        link(`${API_BASE}/v2/checkout/orders/${order.id}`, 'up'),
      ],
      create_time: now,
      update_time: now,
    };
    unit.payments = { captures: [capture] };
    captures.set(captureId, { capture, orderId: order.id, refunds: [] });
    order.status = 'COMPLETED';
    order.update_time = now;
    order.links = orderLinks(order);
    return { status: 201, body: structuredClone(order) };
  }

  function refundCapture(captureId: string, input: Record<string, unknown>): FakeRefund {
    const entry = captures.get(captureId);
    if (!entry) throw restError(404, 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist. Please check the resource ID and try again.');
    const { capture, refunds } = entry;
    if (capture.status === 'REFUNDED') throw restError(422, 'CAPTURE_FULLY_REFUNDED', 'The capture has already been fully refunded.');
    if (capture.status !== 'COMPLETED' && capture.status !== 'PARTIALLY_REFUNDED') {
      throw restError(422, 'REFUND_NOT_ALLOWED', 'Refund cannot be issued for this capture in its current status.');
    }
    const currency = capture.amount.currency_code;
    const grossMinor = minorUnits(capture.amount, 'amount').minor;
    const refundedMinor = refunds.reduce((sum, refund) => sum + minorUnits(refund.amount, 'amount').minor, 0);
    const remaining = grossMinor - refundedMinor;
    let amountMinor = remaining;
    if (input.amount !== undefined) {
      const requested = minorUnits(input.amount, '/amount');
      if (requested.currency !== currency)
        throw restError(422, 'CURRENCY_MISMATCH', 'Refund must be in the same currency as the capture.', '/amount/currency_code');
      if (requested.minor > remaining) {
        throw restError(
          422,
          'REFUND_AMOUNT_EXCEEDED',
          'The refund amount must be less than or equal to the capture amount that has not yet been refunded.',
          '/amount/value',
        );
      }
      amountMinor = requested.minor;
    }
    const fee = Math.round((paypalFee(grossMinor, currency) * amountMinor) / grossMinor);
    const now = isoSeconds();
    const id = paypalId();
    const text = (name: string): Record<string, string> => (typeof input[name] === 'string' ? { [name]: input[name] } : {});
    const refund: FakeRefund = {
      id,
      status: 'COMPLETED',
      amount: money(amountMinor, currency),
      seller_payable_breakdown: {
        gross_amount: money(amountMinor, currency),
        paypal_fee: money(fee, currency),
        net_amount: money(amountMinor - fee, currency),
        total_refunded_amount: money(refundedMinor + amountMinor, currency),
      },
      ...text('custom_id'),
      ...text('invoice_id'),
      ...text('note_to_payer'),
      links: [link(`${API_BASE}/v2/payments/refunds/${id}`, 'self'), link(`${API_BASE}/v2/payments/captures/${captureId}`, 'up')],
      create_time: now,
      update_time: now,
    };
    refunds.push(refund);
    capture.status = refundedMinor + amountMinor === grossMinor ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
    capture.update_time = now;
    return refund;
  }

  function handleRefund(request: IncomingMessage, captureId: string, body: string): StoredResponse {
    const refund = refundCapture(captureId, parseJsonObject(body));
    return { status: 201, body: wantsRepresentation(request) ? structuredClone(refund) : { id: refund.id, status: refund.status, links: refund.links } };
  }

  function handleVerify(body: string): StoredResponse {
    const input = parseJsonObject(body);
    const fields = ['auth_algo', 'cert_url', 'transmission_id', 'transmission_sig', 'transmission_time', 'webhook_id'] as const;
    const missing = fields.find((field) => typeof input[field] !== 'string' || input[field] === '');
    const event = rawMember(body, 'webhook_event');
    if (missing || event === undefined) {
      return {
        status: 400,
        body: {
          name: 'VALIDATION_ERROR',
          message: 'Invalid request - see details',
          debug_id: debugId(),
          details: [{ field: missing ?? 'webhook_event', location: 'body', issue: 'Required field cannot be blank' }],
          links: [],
        },
      };
    }
    const sent = transmissions.get(input.transmission_id as string);
    const authentic =
      sent !== undefined &&
      input.webhook_id === webhookId &&
      input.auth_algo === AUTH_ALGO &&
      input.cert_url === sent.certUrl &&
      input.transmission_time === sent.time &&
      input.transmission_sig === sent.sig &&
      event === sent.body;
    return { status: 200, body: { verification_status: authentic ? 'SUCCESS' : 'FAILURE' } };
  }

  async function route(request: IncomingMessage, path: string, body: string): Promise<StoredResponse> {
    const method = request.method ?? 'GET';
    if (method === 'POST' && path === '/v1/oauth2/token') return handleToken(request, body);
    requireBearer(request);
    if (method === 'POST' && path === '/v2/checkout/orders') return idempotently(path, request, () => handleCreateOrder(request, body));
    if (method === 'POST' && path === '/v1/notifications/verify-webhook-signature') return handleVerify(body);
    const orderPath = /^\/v2\/checkout\/orders\/([^/]+)$/.exec(path);
    if (method === 'GET' && orderPath) return { status: 200, body: structuredClone(orderOr404(decodeURIComponent(orderPath[1]!))) };
    const capturePath = /^\/v2\/checkout\/orders\/([^/]+)\/capture$/.exec(path);
    if (method === 'POST' && capturePath) return idempotently(path, request, () => handleCapture(decodeURIComponent(capturePath[1]!)));
    const refundPath = /^\/v2\/payments\/captures\/([^/]+)\/refund$/.exec(path);
    if (method === 'POST' && refundPath) return idempotently(path, request, () => handleRefund(request, decodeURIComponent(refundPath[1]!), body));
    throw restError(404, 'INVALID_RESOURCE_ID', `no route ${method} ${path}`);
  }

  const server = createServer((request, response) => {
    void (async () => {
      const method = request.method ?? 'GET';
      const path = new URL(request.url ?? '/', 'http://fake').pathname;
      const body = await readBody(request);
      requests.push({ method, path, headers: request.headers, body });
      if (take(stalls, method, path)) {
        stalled.add(response);
        return;
      }
      const failure = take(failures, method, path);
      let answer: StoredResponse;
      if (failure) {
        answer = { status: failure.status, body: restError(failure.status).body };
      } else {
        try {
          answer = await route(request, path, body);
        } catch (error) {
          if (!(error instanceof PayPalHttpError)) throw error;
          answer = { status: error.status, body: error.body };
        }
      }
      response.writeHead(answer.status, { 'content-type': 'application/json', 'paypal-debug-id': debugId() });
      response.end(JSON.stringify(answer.body));
    })().catch((error: Error) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ name: 'INTERNAL_SERVER_ERROR', message: error.message, debug_id: debugId() }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  function signedWebhook(body: string, options: SignOptions = {}): SignedWebhook {
    const transmissionId = randomUUID();
    const time = isoSeconds(options.transmissionTime);
    const digest = createHash('sha256').update(body).digest('hex');
    const sig = createHmac('sha256', signingKey).update(`${transmissionId}|${time}|${webhookId}|${digest}`).digest('base64');
    transmissions.set(transmissionId, { time, sig, certUrl, body });
    return {
      body,
      headers: {
        'content-type': 'application/json',
        'paypal-transmission-id': transmissionId,
        'paypal-transmission-time': time,
        'paypal-transmission-sig': sig,
        'paypal-cert-url': certUrl,
        'paypal-auth-algo': AUTH_ALGO,
      },
    };
  }

  /** A whole webhook event around `resource`, as PayPal posts it, signed. */
  function webhookEvent(eventType: string, resourceType: string, resource: object, summary: string, options: SignOptions = {}): SignedWebhook {
    const id = `WH-${paypalId()}-${paypalId()}`;
    const event = {
      id,
      event_version: '1.0',
      create_time: new Date().toISOString(),
      resource_type: resourceType,
      resource_version: resourceType === 'dispute' ? '1.0' : '2.0',
      event_type: eventType,
      summary,
      resource,
      links: [
        { href: `${API_BASE}/v1/notifications/webhooks-events/${id}`, rel: 'self', method: 'GET', encType: 'application/json' },
        { href: `${API_BASE}/v1/notifications/webhooks-events/${id}/resend`, rel: 'resend', method: 'POST', encType: 'application/json' },
      ],
    };
    return signedWebhook(asciiJson(event), options);
  }

  function captureOf(orderId: string): { order: FakeOrder; capture: FakeCapture } {
    const order = orderOr404(orderId);
    const capture = order.purchase_units[0]?.payments?.captures[0];
    if (!capture) throw new Error(`order ${orderId} has not been captured`);
    return { order, capture };
  }

  function captureResource(order: FakeOrder, capture: FakeCapture) {
    return { ...structuredClone(capture), supplementary_data: { related_ids: { order_id: order.id } } };
  }

  return {
    /** Base URL of the fake (plain HTTP on loopback): the provider's `apiUrl`. */
    url: `http://127.0.0.1:${port}`,
    port,
    /** PayPal's orders by id, as the fake holds them (purchase units, payments.captures once captured). */
    orders,
    /** Every request received, in arrival order (token requests, refused ones and scripted failures included). */
    requests,
    /** Access tokens handed out, revoked ones included. */
    get issuedTokens(): string[] {
      return [...tokens.keys()];
    },
    /** The refunds PayPal recorded for a capture. */
    refundsOf(captureId: string): FakeRefund[] {
      return captures.get(captureId)?.refunds ?? [];
    },
    /** The buyer approves the order on PayPal's page; its capture will end in `captureStatus` (COMPLETED unless told). */
    approve(orderId: string, { captureStatus = 'COMPLETED' }: { captureStatus?: 'COMPLETED' | 'PENDING' | 'DECLINED' } = {}): void {
      const order = orderOr404(orderId);
      if (order.status !== 'CREATED' && order.status !== 'PAYER_ACTION_REQUIRED') throw new Error(`order ${orderId} is ${order.status}, not awaiting approval`);
      const payer: FakePayer = {
        name: { given_name: 'Ana', surname: 'Buyer' },
        email_address: 'buyer@parley.test',
        payer_id: 'QYR5Z8XDVJNXQ',
        address: { country_code: 'US' },
      };
      order.payer = payer;
      order.payment_source = {
        paypal: { email_address: payer.email_address, account_id: payer.payer_id, account_status: 'VERIFIED', name: payer.name, address: payer.address },
      };
      order.status = 'APPROVED';
      order.update_time = isoSeconds();
      order.links = orderLinks(order);
      pendingCaptureStatus.set(orderId, captureStatus);
    },
    /**
     * The next `times` requests matching `target` get `status` with PayPal's error body.
     * `target` is a path prefix (`/v1/oauth2/token`) or a method and an exact path (`POST /v2/checkout/orders`).
     */
    failNext(target: string, status: number, times = 1): void {
      failures.push({ ...parseTarget(target), status, remaining: times });
    },
    /** The next `times` requests matching `target` (as in failNext) are read and never answered, until close(). */
    stallNext(target: string, times = 1): void {
      stalls.push({ ...parseTarget(target), remaining: times });
    },
    /** PayPal keeps PayPal-Request-Id answers for a while only: forget them all. */
    forgetRequestIds(): void {
      idempotent.clear();
    },
    /** Access tokens stop being accepted (revoked early), as if PayPal rotated them. */
    revokeTokens(): void {
      for (const token of tokens.keys()) tokens.set(token, 0);
    },
    /** Signs `body` as PayPal would deliver it: verify-webhook-signature answers SUCCESS for exactly these headers and bytes. */
    signedWebhook,
    /** Any event type around any resource, signed (for the types Parley ignores). */
    webhookEvent,
    /** CHECKOUT.ORDER.APPROVED for an order the buyer approved (see approve). */
    orderApprovedEvent(orderId: string, options?: SignOptions): SignedWebhook {
      const order = orderOr404(orderId);
      return webhookEvent('CHECKOUT.ORDER.APPROVED', 'checkout-order', structuredClone(order), 'An order has been approved by buyer', options);
    },
    /** PAYMENT.CAPTURE.COMPLETED for the capture of a captured order. */
    captureCompletedEvent(orderId: string, options?: SignOptions): SignedWebhook {
      const { order, capture } = captureOf(orderId);
      const summary = `Payment completed for ${capture.amount.value} ${capture.amount.currency_code}`;
      const { status_details: _pendingReason, ...resource } = captureResource(order, capture);
      const completed = { ...resource, status: 'COMPLETED' };
      return webhookEvent('PAYMENT.CAPTURE.COMPLETED', 'capture', completed, summary, options);
    },
    /** PAYMENT.CAPTURE.DENIED for the capture of a captured order (the capture as PayPal reports it once denied). */
    captureDeniedEvent(orderId: string, options?: SignOptions): SignedWebhook {
      const { order, capture } = captureOf(orderId);
      const denied = { ...captureResource(order, capture), status: 'DECLINED', status_details: { reason: 'DECLINED_BY_RISK_FRAUD_FILTERS' } };
      return webhookEvent(
        'PAYMENT.CAPTURE.DENIED',
        'capture',
        denied,
        `A ${capture.amount.value} ${capture.amount.currency_code} capture payment was denied`,
        options,
      );
    },
    /**
     * PAYMENT.CAPTURE.REFUNDED, whose resource is the refund. With `value` (PayPal's decimal string),
     * a new refund of that amount made on PayPal's side (the merchant's dashboard); without, the
     * latest refund of the capture (one made through the API).
     */
    captureRefundedEvent(captureId: string, value?: string, options?: SignOptions): SignedWebhook {
      const entry = captures.get(captureId);
      if (!entry) throw new Error(`no capture ${captureId}`);
      const currency = entry.capture.amount.currency_code;
      const refund =
        value === undefined
          ? entry.refunds.at(-1)
          : refundCapture(captureId, {
              amount: { currency_code: currency, value },
              ...(entry.capture.custom_id ? { custom_id: entry.capture.custom_id } : {}),
              ...(entry.capture.invoice_id ? { invoice_id: entry.capture.invoice_id } : {}),
            });
      if (!refund) throw new Error(`capture ${captureId} has no refund`);
      return webhookEvent(
        'PAYMENT.CAPTURE.REFUNDED',
        'refund',
        structuredClone(refund),
        `A ${refund.amount.value} ${currency} capture payment was refunded`,
        options,
      );
    },
    /** CUSTOMER.DISPUTE.CREATED on a capture (its seller_transaction_id); without one, a dispute naming only the buyer's transaction. */
    disputeCreatedEvent(captureId?: string, options?: SignOptions): SignedWebhook {
      const entry = captureId ? captures.get(captureId) : undefined;
      const amount = entry?.capture.amount ?? { currency_code: 'USD', value: '10.00' };
      const now = new Date().toISOString();
      const disputeId = `PP-D-${Math.floor(10_000 + Math.random() * 89_999)}`;
      const resource = {
        dispute_id: disputeId,
        create_time: now,
        update_time: now,
        disputed_transactions: [
          {
            buyer_transaction_id: paypalId(),
            ...(captureId ? { seller_transaction_id: captureId } : {}),
            create_time: now,
            transaction_status: 'COMPLETED',
            gross_amount: amount,
            ...(entry?.capture.invoice_id ? { invoice_number: entry.capture.invoice_id } : {}),
            ...(entry?.capture.custom_id ? { custom: entry.capture.custom_id } : {}),
            buyer: { name: 'Ana Buyer' },
            seller: { email: MERCHANT.email_address, merchant_id: MERCHANT.merchant_id, name: 'Parley' },
          },
        ],
        reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
        status: 'OPEN',
        dispute_amount: amount,
        dispute_life_cycle_stage: 'INQUIRY',
        dispute_channel: 'INTERNAL',
        seller_response_due_date: new Date(Date.now() + 20 * 86_400_000).toISOString(),
        links: [{ href: `${API_BASE}/v1/customer/disputes/${disputeId}`, rel: 'self', method: 'GET' }],
      };
      return webhookEvent('CUSTOMER.DISPUTE.CREATED', 'dispute', resource, 'A new dispute opened with Case # ' + disputeId, options);
    },
    close(): Promise<void> {
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

export type FakePayPal = Awaited<ReturnType<typeof startFakePayPal>>;
