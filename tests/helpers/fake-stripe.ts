import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/** A form-encoded body as Stripe reads it: `a[b][0][c]=x` → `{ a: { b: [{ c: 'x' }] } }`; every leaf stays the string sent. */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormParams = { [key: string]: FormValue };

/** Stripe's error body: `{ error: { type, code?, message, param?, … } }`. */
export interface StripeErrorBody {
  type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
}

/** A Checkout Session the fake holds: what the SDK sent (parsed) and the object as it is now. */
export interface FakeCheckoutSession {
  id: string;
  params: FormParams;
  idempotencyKey: string | undefined;
  session: Stripe.Checkout.Session;
}

/** What a request to the fake was answered. */
export interface FakeStripeRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  stripeVersion: string | undefined;
  status: number;
  /** Answered from the idempotency store (Stripe's `Idempotent-Replayed: true`). */
  replayed: boolean;
}

/** The two events Stripe sends for one refund. */
export interface RefundEvents {
  refund: Stripe.Refund;
  chargeRefunded: Stripe.ChargeRefundedEvent;
  refundCreated: Stripe.RefundCreatedEvent;
}

export interface RefundEventOptions {
  /**
   * Include `refunds` in the charge. Since API version 2022-11-15 Stripe sends it only when the
   * charge is expanded, which a webhook never does; older endpoint versions had it.
   */
  withRefundList?: boolean;
}

type RefundStatus = 'succeeded' | 'pending' | 'requires_action' | 'failed' | 'canceled';

/** A succeeded (or settling) payment: the PaymentIntent and its one charge. */
interface FakePayment {
  paymentIntentId: string;
  chargeId: string;
  paymentMethodId: string;
  amount: number;
  currency: string;
  /** The PaymentIntent's metadata, which Stripe copies onto the charge at confirmation. */
  metadata: Record<string, string>;
  customerEmail: string | null;
  created: number;
  settled: boolean;
  /** Oldest first. */
  refunds: Stripe.Refund[];
}

interface StoredAnswer {
  fingerprint: string;
  status: number;
  body: string;
  requestId: string;
}

interface HandlerAnswer {
  status: number;
  body: unknown;
  /** Stripe saves the result once the endpoint has started executing, not for a request that failed validation. */
  store: boolean;
}

interface ScriptedAnswer {
  status: number;
  error?: StripeErrorBody;
  stall?: boolean;
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `prefix` then random letters and digits, as Stripe's ids look (`pi_3Q…`, `cs_test_a1…`). */
function randomId(prefix: string, length = 24): string {
  return prefix + Array.from(randomBytes(length), (byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Parses Stripe's form encoding (literal brackets, numeric indices for arrays) into nested objects. */
export function parseStripeForm(body: string): FormParams {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!match) continue;
    const path = [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((part) => part[1]!)];
    if (path.some((segment) => segment === '__proto__' || segment === 'constructor' || segment === 'prototype')) continue;
    let node = root;
    path.forEach((segment, index) => {
      const name = segment === '' ? String(Object.keys(node).length) : segment;
      if (index === path.length - 1) {
        node[name] = value;
      } else {
        const next = node[name];
        node = typeof next === 'object' && next !== null ? (next as Record<string, unknown>) : (node[name] = {});
      }
    });
  }
  const arrays = (value: unknown): FormValue => {
    if (typeof value === 'string') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length > 0 && entries.every(([name]) => /^\d+$/.test(name))) {
      return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, item]) => arrays(item));
    }
    return Object.fromEntries(entries.map(([name, item]) => [name, arrays(item)]));
  };
  return arrays(root) as FormParams;
}

class ParamError extends Error {
  constructor(
    readonly param: string,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A business refusal from inside the endpoint: its answer is stored under the idempotency key. */
class EndpointError extends Error {
  constructor(
    readonly status: number,
    readonly body: StripeErrorBody,
  ) {
    super(body.message);
  }
}

function asObject(value: FormValue | undefined, param: string): { [key: string]: FormValue } {
  if (value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ParamError(param, `Invalid object`, 'parameter_invalid_object');
  return value;
}

function asString(value: FormValue | undefined, param: string, required = false): string | undefined {
  if (value === undefined || value === '') {
    if (required) throw new ParamError(param, `Missing required param: ${param}.`, 'parameter_missing');
    return undefined;
  }
  if (typeof value !== 'string') throw new ParamError(param, `Invalid string: ${JSON.stringify(value)}`, 'parameter_invalid_string');
  return value;
}

function asInteger(value: FormValue | undefined, param: string, required = false): number | undefined {
  const text = asString(value, param, required);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new ParamError(param, `Invalid integer: ${text}`, 'parameter_invalid_integer');
  return Number(text);
}

function asMetadata(value: FormValue | undefined, param: string): Record<string, string> {
  const metadata = asObject(value, param);
  return Object.fromEntries(
    Object.entries(metadata).map(([key, item]) => {
      const text = asString(item, `${param}[${key}]`) ?? '';
      if (key.length > 40) throw new ParamError(`${param}[${key}]`, 'Metadata keys can have up to 40 characters.', 'parameter_invalid_string');
      if (text.length > 500) throw new ParamError(`${param}[${key}]`, 'Metadata values can have up to 500 characters.', 'parameter_invalid_string');
      return [key, text];
    }),
  );
}

function rejectUnknown(params: FormParams, known: ReadonlySet<string>): void {
  const unknown = Object.keys(params).find((name) => !known.has(name));
  if (unknown) throw new ParamError(unknown, `Received unknown parameter: ${unknown}`, 'parameter_unknown');
}

/** The Checkout Session parameters the fake understands; anything else is refused as Stripe refuses an unknown one. */
const CHECKOUT_PARAMS = new Set([
  'mode',
  'allowed_payment_method_types',
  'line_items',
  'success_url',
  'cancel_url',
  'client_reference_id',
  'customer_email',
  'metadata',
  'payment_intent_data',
  'expires_at',
  'locale',
  'expand',
]);
const REFUND_PARAMS = new Set(['payment_intent', 'charge', 'amount', 'metadata', 'reason', 'expand']);

function money(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

function defaultError(status: number): StripeErrorBody {
  if (status === 429) {
    return {
      type: 'invalid_request_error',
      code: 'rate_limit',
      message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
    };
  }
  if (status === 402) return { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' };
  if (status >= 500) return { type: 'api_error', message: 'An unknown error occurred' };
  return { type: 'invalid_request_error', message: `Scripted ${status} from the fake Stripe` };
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

/** Signs any payload as Stripe signs a webhook delivery, with the SDK's own test helper. */
export function signStripePayload(payload: string, secret: string, timestamp = nowSeconds()): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

/**
 * A webhook delivery of `event`: the body as Stripe sends it (JSON indented by two spaces) and
 * its `Stripe-Signature` header. `timestamp` is in seconds (now unless told).
 */
export function signStripeEvent(event: object, secret: string, timestamp = nowSeconds()): { body: string; header: string } {
  const body = JSON.stringify(event, null, 2);
  return { body, header: signStripePayload(body, secret, timestamp) };
}

/**
 * Stripe's REST API for what Parley's provider calls — POST /v1/checkout/sessions and POST
 * /v1/refunds — on 127.0.0.1: Bearer key checked, form bodies parsed with bracket keys, answers
 * and errors in Stripe's shapes, Idempotency-Key honoured (same key and body: the first answer
 * again, marked replayed; same key, other body: 400 idempotency_error). It also builds the
 * webhook events real Stripe would send for what happened to its sessions and payments.
 */
export async function startFakeStripe({ secretKey }: { secretKey: string }) {
  const sessions: FakeCheckoutSession[] = [];
  const payments = new Map<string, FakePayment>();
  const paymentsBySession = new Map<string, FakePayment>();
  const idempotency = new Map<string, StoredAnswer>();
  const requests: FakeStripeRequest[] = [];
  const scripted: ScriptedAnswer[] = [];
  let refundStatus: RefundStatus = 'succeeded';
  /** The Idempotency-Key each refund was created with: its events carry it in `request`. */
  const refundKeys = new Map<string, string>();

  function sessionById(id: string): FakeCheckoutSession {
    const found = sessions.find((entry) => entry.id === id);
    if (!found) throw new Error(`fake Stripe has no checkout session ${id}`);
    return found;
  }

  function paymentById(paymentIntentId: string): FakePayment {
    const payment = payments.get(paymentIntentId);
    if (!payment) throw new Error(`fake Stripe has no payment ${paymentIntentId}`);
    return payment;
  }

  function event<T extends Stripe.Event>(type: T['type'], object: T['data']['object'], idempotencyKey: string | null = null): T {
    return {
      id: randomId('evt_1', 23),
      object: 'event',
      api_version: Stripe.API_VERSION,
      created: nowSeconds(),
      data: { object: structuredClone(object) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: idempotencyKey ? randomId('req_', 14) : null, idempotency_key: idempotencyKey },
      type,
    } as T;
  }

  function createCheckoutSession(params: FormParams, idempotencyKey: string | undefined): Stripe.Checkout.Session {
    rejectUnknown(params, CHECKOUT_PARAMS);
    const mode = asString(params.mode, 'mode', true);
    if (mode !== 'payment') throw new ParamError('mode', `The fake Stripe supports mode=payment only, not ${mode}.`, 'parameter_invalid_string');
    const lineItems = params.line_items;
    if (!Array.isArray(lineItems) || lineItems.length === 0) throw new ParamError('line_items', 'Missing required param: line_items.', 'parameter_missing');
    const priced = lineItems.map((item, index) => {
      const param = `line_items[${index}]`;
      const line = asObject(item, param);
      const priceData = asObject(line.price_data, `${param}[price_data]`);
      const productData = asObject(priceData.product_data, `${param}[price_data][product_data]`);
      asString(productData.name, `${param}[price_data][product_data][name]`, true);
      return {
        currency: asString(priceData.currency, `${param}[price_data][currency]`, true)!,
        total: asInteger(priceData.unit_amount, `${param}[price_data][unit_amount]`, true)! * asInteger(line.quantity, `${param}[quantity]`, true)!,
      };
    });
    const currency = priced[0]!.currency;
    if (priced.some((line) => line.currency !== currency)) {
      throw new ParamError('line_items', 'All line items must use the same currency.', 'parameter_invalid_string');
    }
    const amount = priced.reduce((sum, line) => sum + line.total, 0);
    const allowed = params.allowed_payment_method_types;
    const methodTypes = Array.isArray(allowed) ? allowed.map((type, index) => asString(type, `allowed_payment_method_types[${index}]`, true)!) : ['card'];
    const paymentIntentData = asObject(params.payment_intent_data, 'payment_intent_data');
    asMetadata(paymentIntentData.metadata, 'payment_intent_data[metadata]');
    const created = nowSeconds();
    const id = randomId('cs_test_a1', 56);
    const session: Stripe.Checkout.Session = {
      id,
      object: 'checkout.session',
      adaptive_pricing: { enabled: false },
      after_expiration: null,
      allow_promotion_codes: null,
      allowed_payment_method_types: Array.isArray(allowed) ? methodTypes : null,
      amount_subtotal: amount,
      amount_total: amount,
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      billing_address_collection: null,
      cancel_url: asString(params.cancel_url, 'cancel_url') ?? null,
      client_reference_id: asString(params.client_reference_id, 'client_reference_id') ?? null,
      client_secret: null,
      collected_information: null,
      consent: null,
      consent_collection: null,
      created,
      currency,
      currency_conversion: null,
      custom_fields: [],
      custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
      customer: null,
      customer_account: null,
      customer_creation: 'if_required',
      customer_details: null,
      customer_email: asString(params.customer_email, 'customer_email') ?? null,
      discounts: [],
      expires_at: asInteger(params.expires_at, 'expires_at') ?? created + 24 * 3600,
      integration_identifier: null,
      invoice: null,
      invoice_creation: null,
      livemode: false,
      locale: asString(params.locale, 'locale') ?? null,
      managed_payments: null,
      metadata: asMetadata(params.metadata, 'metadata'),
      mode: 'payment',
      origin_context: null,
      // Since API version 2022-08-01 the PaymentIntent is made when the buyer confirms, not with the session.
      payment_intent: null,
      payment_link: null,
      payment_method_collection: 'if_required',
      payment_method_configuration_details: null,
      payment_method_options: { card: { request_three_d_secure: 'automatic' } },
      payment_method_types: methodTypes,
      payment_status: 'unpaid',
      permissions: null,
      phone_number_collection: { enabled: false },
      recovered_from: null,
      saved_payment_method_options: null,
      setup_intent: null,
      shipping_address_collection: null,
      shipping_cost: null,
      shipping_options: [],
      status: 'open',
      submit_type: null,
      subscription: null,
      success_url: asString(params.success_url, 'success_url') ?? null,
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: 'hosted',
      url: `https://checkout.stripe.com/c/pay/${id}`,
      wallet_options: null,
    };
    sessions.push({ id, params, idempotencyKey, session });
    return session;
  }

  function refundObject(payment: FakePayment, amount: number, metadata: Record<string, string>, reason: string | undefined, status: RefundStatus) {
    const refund: Stripe.Refund = {
      id: randomId('re_3', 23),
      object: 'refund',
      amount,
      balance_transaction: status === 'succeeded' || status === 'pending' ? randomId('txn_3', 23) : null,
      charge: payment.chargeId,
      created: nowSeconds(),
      currency: payment.currency,
      customer: null,
      customer_account: null,
      destination_details: {
        type: 'card',
        card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' },
      },
      metadata,
      payment_intent: payment.paymentIntentId,
      payment_method: payment.paymentMethodId,
      reason: reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status,
      transfer_reversal: null,
      ...(status === 'failed' ? { failure_reason: 'declined' } : {}),
    };
    payment.refunds.push(refund);
    return refund;
  }

  /** What a refund takes from the charge: Stripe counts pending refunds, not failed or canceled ones. */
  function refunded(payment: FakePayment, upTo = payment.refunds.length): number {
    return payment.refunds
      .slice(0, upTo)
      .filter((refund) => refund.status !== 'failed' && refund.status !== 'canceled')
      .reduce((sum, refund) => sum + refund.amount, 0);
  }

  function createRefund(params: FormParams, idempotencyKey: string | undefined): Stripe.Refund {
    rejectUnknown(params, REFUND_PARAMS);
    const paymentIntentId = asString(params.payment_intent, 'payment_intent');
    const chargeId = asString(params.charge, 'charge');
    if (!paymentIntentId && !chargeId)
      throw new ParamError('payment_intent', 'One of the following params should be provided for this request: payment_intent or charge.', 'parameter_missing');
    const requested = asInteger(params.amount, 'amount');
    const metadata = asMetadata(params.metadata, 'metadata');
    const reason = asString(params.reason, 'reason');
    const payment = paymentIntentId ? payments.get(paymentIntentId) : [...payments.values()].find((candidate) => candidate.chargeId === chargeId);
    if (!payment) {
      const [param, id] = paymentIntentId ? ['payment_intent', paymentIntentId] : ['charge', chargeId!];
      throw new EndpointError(400, { type: 'invalid_request_error', code: 'resource_missing', param, message: `No such ${param}: '${id}'` });
    }
    if (!payment.settled) {
      throw new EndpointError(400, {
        type: 'invalid_request_error',
        message: `This PaymentIntent (${payment.paymentIntentId}) does not have a successful charge to refund.`,
      });
    }
    const remaining = payment.amount - refunded(payment);
    if (remaining === 0) {
      throw new EndpointError(400, {
        type: 'invalid_request_error',
        code: 'charge_already_refunded',
        message: `Charge ${payment.chargeId} has already been refunded.`,
      });
    }
    const amount = requested ?? remaining;
    if (amount < 1) throw new ParamError('amount', 'Invalid positive integer', 'parameter_invalid_integer');
    if (amount > remaining) {
      // Stripe gives this one no code: only the message and the param say what went wrong.
      throw new EndpointError(400, {
        type: 'invalid_request_error',
        param: 'amount',
        message: `Refund amount (${money(amount, payment.currency)}) is greater than unrefunded amount on charge (${money(remaining, payment.currency)})`,
      });
    }
    const refund = refundObject(payment, amount, metadata, reason, refundStatus);
    if (idempotencyKey) refundKeys.set(refund.id, idempotencyKey);
    return refund;
  }

  function handle(method: string, path: string, params: FormParams, idempotencyKey: string | undefined): HandlerAnswer {
    try {
      if (method === 'POST' && path === '/v1/checkout/sessions') return { status: 200, body: createCheckoutSession(params, idempotencyKey), store: true };
      if (method === 'POST' && path === '/v1/refunds') return { status: 200, body: createRefund(params, idempotencyKey), store: true };
      return {
        status: 404,
        body: {
          error: { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}). The fake Stripe serves only what Parley calls.` },
        },
        store: false,
      };
    } catch (error) {
      if (error instanceof EndpointError) return { status: error.status, body: { error: error.body }, store: true };
      if (error instanceof ParamError) {
        return { status: 400, body: { error: { type: 'invalid_request_error', code: error.code, param: error.param, message: error.message } }, store: false };
      }
      throw error;
    }
  }

  function answer(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    response.writeHead(status, {
      'content-type': 'application/json',
      'request-id': headers['request-id'] ?? randomId('req_', 14),
      'stripe-version': Stripe.API_VERSION,
      ...headers,
    });
    response.end(body);
  }

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', 'http://fake').pathname;
    const idempotencyKey = typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : undefined;
    const stripeVersion = typeof request.headers['stripe-version'] === 'string' ? request.headers['stripe-version'] : undefined;
    const record = (status: number, replayed = false) => requests.push({ method, path, idempotencyKey, stripeVersion, status, replayed });
    const body = await readBody(request);

    // Scripted failures stand for Stripe's edge (a load balancer's 503, a rate limiter): nothing behind it ran or was stored.
    const script = scripted.shift();
    if (script?.stall) {
      record(0);
      return;
    }
    if (script) {
      record(script.status);
      answer(response, script.status, JSON.stringify({ error: script.error ?? defaultError(script.status) }));
      return;
    }

    const authorization = request.headers.authorization;
    if (authorization !== `Bearer ${secretKey}`) {
      const given = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
      // Stripe masks all but the last four characters of a wrong key.
      const message = given
        ? `Invalid API Key provided: ${given.slice(0, 8)}${'*'.repeat(Math.max(0, given.length - 12))}${given.slice(-4)}`
        : "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').";
      record(401);
      answer(response, 401, JSON.stringify({ error: { type: 'invalid_request_error', message } }), { 'www-authenticate': 'Bearer realm="Stripe"' });
      return;
    }

    const fingerprint = `${method} ${path} ${body}`;
    const stored = idempotencyKey ? idempotency.get(idempotencyKey) : undefined;
    if (stored) {
      if (stored.fingerprint !== fingerprint) {
        record(400);
        const message = `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`;
        answer(response, 400, JSON.stringify({ error: { type: 'idempotency_error', message } }));
        return;
      }
      record(stored.status, true);
      answer(response, stored.status, stored.body, { 'idempotent-replayed': 'true', 'original-request': stored.requestId, 'idempotency-key': idempotencyKey! });
      return;
    }

    const contentType = request.headers['content-type'] ?? '';
    const params = method === 'POST' && contentType.startsWith('application/x-www-form-urlencoded') ? parseStripeForm(body) : {};
    const result = handle(method, path, params, idempotencyKey);
    const requestId = randomId('req_', 14);
    const text = JSON.stringify(result.body, null, 2);
    if (idempotencyKey && result.store) idempotency.set(idempotencyKey, { fingerprint, status: result.status, body: text, requestId });
    record(result.status);
    answer(response, result.status, text, { 'request-id': requestId, ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) });
  }

  const server = createServer((request, response) => {
    serve(request, response).catch((error: Error) => {
      if (!response.headersSent) answer(response, 500, JSON.stringify({ error: { type: 'api_error', message: `fake Stripe broke: ${error.message}` } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function settle(entry: FakeCheckoutSession, payment: FakePayment): void {
    payment.settled = true;
    entry.session.payment_status = 'paid';
  }

  function chargeOf(payment: FakePayment, amountRefunded: number, refundList: Stripe.Refund[] | undefined): Stripe.Charge {
    return {
      id: payment.chargeId,
      object: 'charge',
      amount: payment.amount,
      amount_captured: payment.amount,
      amount_refunded: amountRefunded,
      application: null,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: randomId('txn_3', 23),
      billing_details: { address: null, email: payment.customerEmail, name: null, phone: null, tax_id: null },
      calculated_statement_descriptor: 'PARLEY',
      captured: true,
      created: payment.created,
      currency: payment.currency,
      customer: null,
      description: null,
      disputed: false,
      failure_balance_transaction: null,
      failure_code: null,
      failure_message: null,
      fraud_details: {},
      livemode: false,
      metadata: { ...payment.metadata },
      on_behalf_of: null,
      outcome: {
        advice_code: null,
        network_advice_code: null,
        network_decline_code: null,
        network_status: 'approved_by_network',
        reason: null,
        risk_level: 'normal',
        risk_score: 12,
        seller_message: 'Payment complete.',
        type: 'authorized',
      },
      paid: true,
      payment_intent: payment.paymentIntentId,
      payment_method: payment.paymentMethodId,
      payment_method_details: {
        type: 'card',
        // A card's details run to dozens of fields; these are the ones anyone reads.
        card: {
          brand: 'visa',
          country: 'US',
          exp_month: 12,
          exp_year: 2034,
          funding: 'credit',
          last4: '4242',
          network: 'visa',
        } as Stripe.Charge.PaymentMethodDetails.Card,
      },
      receipt_email: payment.customerEmail,
      receipt_number: null,
      receipt_url: `https://pay.stripe.com/receipts/payment/${randomId('CAcaFwoVYWNjdF8', 40)}`,
      refunded: amountRefunded === payment.amount,
      ...(refundList
        ? { refunds: { object: 'list' as const, data: [...refundList].reverse(), has_more: false, url: `/v1/charges/${payment.chargeId}/refunds` } }
        : {}),
      review: null,
      shipping: null,
      source: null,
      source_transfer: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: 'succeeded',
      transfer_data: null,
      transfer_group: null,
    };
  }

  function eventsForRefund(payment: FakePayment, refund: Stripe.Refund, options: RefundEventOptions): RefundEvents {
    const upTo = payment.refunds.indexOf(refund) + 1;
    const charge = chargeOf(payment, refunded(payment, upTo), options.withRefundList ? payment.refunds.slice(0, upTo) : undefined);
    // A Dashboard refund has a key of the Dashboard's own.
    const idempotencyKey = refundKeys.get(refund.id) ?? randomUUID();
    return {
      refund: structuredClone(refund),
      chargeRefunded: event<Stripe.ChargeRefundedEvent>('charge.refunded', charge, idempotencyKey),
      refundCreated: event<Stripe.RefundCreatedEvent>('refund.created', refund, idempotencyKey),
    };
  }

  return {
    /** Base URL for the provider's `apiUrl`. */
    url,
    /** Every Checkout Session created, oldest first, with the parameters as sent. */
    sessions: sessions as readonly FakeCheckoutSession[],
    /** Every request answered (scripted failures and refusals included), in arrival order. */
    requests: requests as readonly FakeStripeRequest[],
    /** Refunds made on a PaymentIntent (through the API or refundEvents), oldest first. */
    refundsOf(paymentIntentId: string): Stripe.Refund[] {
      return structuredClone(paymentById(paymentIntentId).refunds);
    },
    /**
     * The next `times` requests, whatever they are, get `status` with Stripe's error body for it
     * (or `error`), as Stripe's edge would answer: nothing is run or stored under their idempotency key.
     */
    failNext(status: number, times = 1, error?: StripeErrorBody): void {
      for (let i = 0; i < times; i += 1) scripted.push({ status, ...(error ? { error } : {}) });
    },
    /** The next `times` requests are read and never answered (until close). */
    stallNext(times = 1): void {
      for (let i = 0; i < times; i += 1) scripted.push({ status: 0, stall: true });
    },
    /** The status new refunds are created with (succeeded unless told). */
    setRefundStatus(status: RefundStatus): void {
      refundStatus = status;
    },
    /**
     * The buyer pays on Stripe's page: the session completes, its PaymentIntent `pi_…` and charge
     * exist, and the `checkout.session.completed` event is returned. `delayed` stands for a method
     * that settles later (bank debit): the session completes `unpaid` until settleDelayedPayment.
     */
    pay(sessionId: string, { delayed = false }: { delayed?: boolean } = {}): Stripe.CheckoutSessionCompletedEvent {
      const entry = sessionById(sessionId);
      if (entry.session.status !== 'open') throw new Error(`checkout session ${sessionId} is ${entry.session.status}, not open`);
      const paymentIntentData = entry.params.payment_intent_data;
      const metadataParam = typeof paymentIntentData === 'object' && !Array.isArray(paymentIntentData) ? paymentIntentData.metadata : undefined;
      const payment: FakePayment = {
        paymentIntentId: randomId('pi_3', 23),
        chargeId: randomId('ch_3', 23),
        paymentMethodId: randomId('pm_1', 23),
        amount: entry.session.amount_total ?? 0,
        currency: entry.session.currency ?? 'usd',
        metadata: asMetadata(metadataParam, 'payment_intent_data[metadata]'),
        customerEmail: entry.session.customer_email ?? 'buyer@example.com',
        created: nowSeconds(),
        settled: false,
        refunds: [],
      };
      payments.set(payment.paymentIntentId, payment);
      paymentsBySession.set(sessionId, payment);
      Object.assign(entry.session, {
        status: 'complete',
        payment_intent: payment.paymentIntentId,
        customer_details: {
          address: { city: null, country: 'US', line1: null, line2: null, postal_code: '94103', state: null },
          business_name: null,
          email: payment.customerEmail,
          individual_name: null,
          name: 'Test Buyer',
          phone: null,
          tax_exempt: 'none',
          tax_ids: [],
        },
        url: null,
      } satisfies Partial<Stripe.Checkout.Session>);
      if (!delayed) settle(entry, payment);
      return event<Stripe.CheckoutSessionCompletedEvent>('checkout.session.completed', entry.session);
    },
    /** A delayed payment settles: `checkout.session.async_payment_succeeded` (then refundable) or `_failed`. */
    settleDelayedPayment(
      sessionId: string,
      outcome: 'succeeded' | 'failed',
    ): Stripe.CheckoutSessionAsyncPaymentSucceededEvent | Stripe.CheckoutSessionAsyncPaymentFailedEvent {
      const entry = sessionById(sessionId);
      const payment = paymentsBySession.get(sessionId);
      if (!payment || payment.settled) throw new Error(`checkout session ${sessionId} has no payment waiting to settle`);
      if (outcome === 'succeeded') {
        settle(entry, payment);
        return event<Stripe.CheckoutSessionAsyncPaymentSucceededEvent>('checkout.session.async_payment_succeeded', entry.session);
      }
      return event<Stripe.CheckoutSessionAsyncPaymentFailedEvent>('checkout.session.async_payment_failed', entry.session);
    },
    /** The buyer never paid: the session expires and `checkout.session.expired` is returned. */
    expiredEvent(sessionId: string): Stripe.CheckoutSessionExpiredEvent {
      const entry = sessionById(sessionId);
      if (entry.session.status !== 'open') throw new Error(`checkout session ${sessionId} is ${entry.session.status}, not open`);
      Object.assign(entry.session, { status: 'expired', url: null } satisfies Partial<Stripe.Checkout.Session>);
      return event<Stripe.CheckoutSessionExpiredEvent>('checkout.session.expired', entry.session);
    },
    /**
     * Someone refunds `amount` of a paid PaymentIntent outside Parley (the Dashboard): the refund
     * is recorded and both events Stripe sends are returned: `charge.refunded` (the charge with
     * `amount_refunded` as the running total) and `refund.created`.
     */
    refundEvents(paymentIntentId: string, amount: number, options: RefundEventOptions = {}): RefundEvents {
      const payment = paymentById(paymentIntentId);
      if (!payment.settled) throw new Error(`payment ${paymentIntentId} has not settled`);
      if (amount > payment.amount - refunded(payment)) throw new Error(`refunding ${amount} would exceed payment ${paymentIntentId}`);
      return eventsForRefund(payment, refundObject(payment, amount, {}, 'requested_by_customer', 'succeeded'), options);
    },
    /** The events of a refund already made (through the API): its charge shows the running total as of that refund. */
    refundEventsFor(refundId: string, options: RefundEventOptions = {}): RefundEvents {
      for (const payment of payments.values()) {
        const refund = payment.refunds.find((candidate) => candidate.id === refundId);
        if (refund) return eventsForRefund(payment, refund, options);
      }
      throw new Error(`fake Stripe has no refund ${refundId}`);
    },
    /** The buyer's bank opens a dispute on the payment's charge: `charge.dispute.created`. */
    disputeEvent(paymentIntentId: string, reason = 'fraudulent'): Stripe.ChargeDisputeCreatedEvent {
      const payment = paymentById(paymentIntentId);
      const dispute: Stripe.Dispute = {
        id: randomId('dp_1', 23),
        object: 'dispute',
        amount: payment.amount,
        balance_transactions: [],
        charge: payment.chargeId,
        created: nowSeconds(),
        currency: payment.currency,
        enhanced_eligibility_types: [],
        // Evidence is dozens of empty fields until the merchant answers.
        evidence: { customer_email_address: payment.customerEmail } as Stripe.Dispute.Evidence,
        evidence_details: {
          due_by: nowSeconds() + 7 * 24 * 3600,
          enhanced_eligibility: {},
          has_evidence: false,
          past_due: false,
          submission_count: 0,
          submission_method: null,
        } as unknown as Stripe.Dispute.EvidenceDetails,
        intended_submission_method: null,
        is_charge_refundable: false,
        livemode: false,
        // Stripe does not copy the payment's metadata onto a dispute.
        metadata: {},
        payment_intent: payment.paymentIntentId,
        reason,
        status: 'needs_response',
      };
      return event<Stripe.ChargeDisputeCreatedEvent>('charge.dispute.created', dispute);
    },
    /** Any other event, shaped as Stripe sends it (for the types Parley ignores, or hand-made objects). */
    event(type: Stripe.Event.Type, object: object): Stripe.Event {
      return event(type, object as Stripe.Event['data']['object']);
    },
    close(): Promise<void> {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

export type FakeStripe = Awaited<ReturnType<typeof startFakeStripe>>;
