import {
  ApiError,
  CheckoutPaymentIntent,
  Client,
  Environment,
  OrdersController,
  PaymentsController,
  PaypalExperienceUserAction,
  PaypalWalletContextShippingPreference,
  type Money,
  type Order,
  type OrdersCapture,
} from '@paypal/paypal-server-sdk';
import { minorUnitDigits } from '../../shared/money.js';
import { RerouteAgent } from '../reroute-agent.js';
import {
  PaymentProviderError,
  WebhookVerificationError,
  type CaptureResult,
  type CheckoutRequest,
  type CheckoutSession,
  type PaymentEffect,
  type PaymentProvider,
  type RefundRequest,
  type RefundResult,
  type VerifiedEvent,
  type WebhookHeaders,
} from './provider.js';

export interface PayPalSettings {
  clientId: string;
  clientSecret: string;
  mode: 'sandbox' | 'live';
  /** The id PayPal gave the webhook subscription (developer dashboard): signatures are verified against it. */
  webhookId: string;
  /** Where PayPal sends the buyer after approving, and after cancelling. */
  returnUrl: string;
  cancelUrl: string;
  /**
   * Overrides the mode's base URL: every connection of the SDK goes to this host and port instead
   * (http://127.0.0.1:PORT in plain TCP, https://paypal.internal over TLS to that host); the SDK's
   * own URLs and Host header are unchanged.
   */
  apiUrl?: string;
  /** Per request to PayPal; 10 s unless told. */
  timeoutMs?: number;
  /** The name PayPal shows the buyer instead of the account's business name. */
  brandName?: string;
  /** How far paypal-transmission-time may be from now, either way; 300 s unless told. */
  toleranceSeconds?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_TOLERANCE_SECONDS = 300;
/** Refresh the access token this long before PayPal says it expires. */
const TOKEN_EXPIRY_MARGIN_SECONDS = 60;
/** PayPal's limit on description, custom_id, invoice_id and brand_name. */
const MAX_TEXT_LENGTH = 127;
/** Currencies PayPal takes without decimals (whatever their ISO 4217 exponent: TWD has cents there). */
const ZERO_DECIMAL_CURRENCIES = new Set(['JPY', 'KRW', 'HUF', 'TWD']);
const VERIFY_WEBHOOK_PATH = '/v1/notifications/verify-webhook-signature';
const TOKEN_PATH = '/v1/oauth2/token';
const TRANSMISSION_HEADERS = ['paypal-transmission-id', 'paypal-transmission-time', 'paypal-transmission-sig', 'paypal-cert-url', 'paypal-auth-algo'] as const;

function decimalsOf(currency: string): number {
  return ZERO_DECIMAL_CURRENCIES.has(currency.toUpperCase()) ? 0 : 2;
}

/**
 * Parley's integer minor units (the currency's ISO 4217 exponent: cents for USD and for TWD, yen
 * for JPY) as PayPal's decimal string: 1999 USD → "19.99", 1500 JPY → "1500", 15000 TWD → "150"
 * (PayPal takes TWD without decimals). An amount PayPal cannot state (TWD cents) is refused.
 */
export function toPayPalValue(amountMinor: number, currency: string): string {
  if (!Number.isSafeInteger(amountMinor) || amountMinor <= 0) throw new RangeError(`amountMinor must be a positive integer, got ${amountMinor}`);
  const exponent = minorUnitDigits(currency);
  const digits = String(amountMinor).padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  const decimals = decimalsOf(currency);
  if (/[1-9]/.test(fraction.slice(decimals))) {
    throw new PaymentProviderError('rejected', 'paypal', `PayPal takes ${currency.toUpperCase()} with ${decimals} decimals at most`, 'DECIMAL_PRECISION');
  }
  const kept = fraction.slice(0, decimals).padEnd(decimals, '0');
  return kept ? `${whole}.${kept}` : whole;
}

/** toPayPalValue for a request: an amount PayPal cannot take is its refusal, not a crash. */
function payPalAmount(amountMinor: number, currency: string): string {
  try {
    return toPayPalValue(amountMinor, currency);
  } catch (error) {
    if (error instanceof RangeError) throw new PaymentProviderError('rejected', 'paypal', error.message, 'AMOUNT_NOT_SUPPORTED');
    throw error;
  }
}

/** PayPal's decimal string back to Parley's integer minor units (see toPayPalValue); undefined when it is not one. */
export function fromPayPalValue(value: string, currency: string): number | undefined {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (!match || !/^[A-Za-z]{3}$/.test(currency)) return undefined;
  const exponent = minorUnitDigits(currency);
  if ((match[2] ?? '').replace(/0+$/, '').length > exponent) return undefined;
  const fraction = (match[2] ?? '').padEnd(exponent, '0').slice(0, exponent);
  const minor = Number(match[1]) * 10 ** exponent + (fraction ? Number(fraction) : 0);
  return Number.isSafeInteger(minor) ? minor : undefined;
}

function truncate(text: string, length = MAX_TEXT_LENGTH): string {
  const codePoints = [...text];
  return codePoints.length > length ? codePoints.slice(0, length).join('') : text;
}

function parseApiUrl(apiUrl: string): URL {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    throw new Error(`PayPal apiUrl is not a URL: ${apiUrl}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
    throw new Error(`PayPal apiUrl must be http(s)://host[:port] with no path, got ${apiUrl}`);
  }
  return url;
}

interface PayPalErrorBody {
  name?: unknown;
  message?: unknown;
  debug_id?: unknown;
  details?: Array<{ issue?: unknown; description?: unknown }>;
  error?: unknown;
  error_description?: unknown;
}

/** The SDK loads `result` only for the statuses an operation declares; other answers keep their body text. */
function errorBody(error: ApiError<unknown>): PayPalErrorBody {
  if (typeof error.result === 'object' && error.result !== null) return error.result;
  if (typeof error.body !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(error.body);
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

const nonEmpty = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

const isTokenRequest = (error: ApiError<unknown>): boolean => new URL(error.request.url).pathname === TOKEN_PATH;

/**
 * PayPal's answer or the network failure as a PaymentProviderError. The message holds only the
 * status, PayPal's error code, its description and debug_id: never the request, whose headers
 * carry the client secret (Basic) or the access token (Bearer).
 */
function toProviderError(operation: string, error: unknown): PaymentProviderError {
  if (error instanceof ApiError) {
    const body = errorBody(error);
    const code = nonEmpty(body.details?.[0]?.issue) ?? nonEmpty(body.name) ?? nonEmpty(body.error);
    const description = nonEmpty(body.details?.[0]?.description) ?? nonEmpty(body.message) ?? nonEmpty(body.error_description);
    const debugId = nonEmpty(body.debug_id) ?? nonEmpty(error.headers['paypal-debug-id']);
    const kind = error.statusCode === 429 || error.statusCode >= 500 ? 'unavailable' : 'rejected';
    const what = isTokenRequest(error) ? `${operation} (access token request)` : operation;
    const message = [`PayPal ${what} failed: HTTP ${error.statusCode}`, code, description && `(${description})`, debugId && `debug_id ${debugId}`];
    return new PaymentProviderError(kind, 'paypal', message.filter(Boolean).join(' '), code);
  }
  // Network errors carry a code (ECONNREFUSED, ECONNABORTED for a timeout…); anything else is an answer the SDK could not
  // read, whose message may quote it (a token response holds the access token): only the error's name is kept.
  const code = nonEmpty((error as { code?: unknown } | null)?.code);
  const reason = code ? `${code} (PayPal unreachable or no answer in time)` : `${error instanceof Error ? error.name : 'error'} (unreadable answer)`;
  return new PaymentProviderError('unavailable', 'paypal', `PayPal ${operation} failed: ${reason}`);
}

/** PayPal refusing a token it issued (revoked or rotated early), on any call but the token request itself. */
const isRefusedToken = (error: unknown): boolean => error instanceof ApiError && error.statusCode === 401 && !isTokenRequest(error);

function captureStatus(status: string | undefined): CaptureResult['status'] {
  switch (status) {
    case 'COMPLETED':
    case 'PARTIALLY_REFUNDED':
    case 'REFUNDED':
      return 'paid'; // money was taken; refunds come as their own events
    case 'DECLINED':
    case 'FAILED':
      return 'failed';
    default:
      return 'pending';
  }
}

function refundStatus(status: string | undefined): RefundResult['status'] {
  switch (status) {
    case 'COMPLETED':
      return 'succeeded';
    case 'CANCELLED':
    case 'FAILED':
      return 'failed';
    default:
      return 'pending';
  }
}

function amountOf(money: Money | undefined): { amountMinor?: number; currency?: string } {
  if (!money) return {};
  return { amountMinor: fromPayPalValue(money.value, money.currencyCode), currency: money.currencyCode.toLowerCase() };
}

function captureResult(order: Order): CaptureResult {
  const capture: OrdersCapture | undefined = order.purchaseUnits?.[0]?.payments?.captures?.[0];
  if (!capture?.id) throw new PaymentProviderError('unavailable', 'paypal', `PayPal answered order ${order.id ?? '?'} without its capture`);
  return { providerPaymentId: capture.id, status: captureStatus(capture.status), ...amountOf(capture.amount) };
}

type Json = Record<string, unknown>;

const objectAt = (value: unknown, key: string): Json | undefined => {
  const child = typeof value === 'object' && value !== null ? (value as Json)[key] : undefined;
  return typeof child === 'object' && child !== null && !Array.isArray(child) ? (child as Json) : undefined;
};
const firstOf = (value: unknown, key: string): Json | undefined => {
  const list = typeof value === 'object' && value !== null ? (value as Json)[key] : undefined;
  const first: unknown = Array.isArray(list) ? list[0] : undefined;
  return typeof first === 'object' && first !== null ? (first as Json) : undefined;
};
const stringAt = (value: Json | undefined, key: string): string | undefined => nonEmpty(value?.[key]);

/** An amount of a webhook resource ({ currency_code, value }) in minor units. */
function webhookAmount(money: Json | undefined): { amountMinor: number; currency: string } | undefined {
  const currency = stringAt(money, 'currency_code');
  const value = stringAt(money, 'value');
  const amountMinor = currency && value ? fromPayPalValue(value, currency) : undefined;
  return currency && amountMinor !== undefined ? { amountMinor, currency: currency.toLowerCase() } : undefined;
}

/** The capture a refund belongs to: its `up` link, …/v2/payments/captures/{id}. */
function refundedCaptureId(refund: Json): string | undefined {
  const links = Array.isArray(refund.links) ? (refund.links as unknown[]) : [];
  for (const entry of links) {
    const linkObject = typeof entry === 'object' && entry !== null ? (entry as Json) : undefined;
    const href = stringAt(linkObject, 'href');
    if (stringAt(linkObject, 'rel') !== 'up' || !href) continue;
    const captureId = /\/v2\/payments\/captures\/([^/?#]+)\/?$/.exec(href)?.[1];
    if (captureId) return decodeURIComponent(captureId);
  }
  return undefined;
}

const compact = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;

/** What a verified PayPal event means for an order. */
function effectOf(eventType: string, resource: Json | undefined): PaymentEffect {
  if (!resource) return { kind: 'ignored' };
  switch (eventType) {
    case 'CHECKOUT.ORDER.APPROVED':
      return {
        kind: 'approved',
        ref: compact({ orderId: stringAt(firstOf(resource, 'purchase_units'), 'custom_id'), providerSessionId: stringAt(resource, 'id') }),
      };
    case 'PAYMENT.CAPTURE.COMPLETED':
    case 'PAYMENT.CAPTURE.DENIED': {
      const captureId = stringAt(resource, 'id');
      const ref = compact({
        orderId: stringAt(resource, 'custom_id'),
        providerSessionId: stringAt(objectAt(objectAt(resource, 'supplementary_data'), 'related_ids'), 'order_id'),
        providerPaymentId: captureId,
      });
      if (eventType === 'PAYMENT.CAPTURE.DENIED')
        return compact({ kind: 'failed', ref, reason: stringAt(objectAt(resource, 'status_details'), 'reason') ?? 'DENIED' });
      return compact({ kind: 'paid', ref, providerPaymentId: captureId, ...webhookAmount(objectAt(resource, 'amount')) });
    }
    case 'PAYMENT.CAPTURE.REFUNDED': {
      const refundId = stringAt(resource, 'id');
      const amount = webhookAmount(objectAt(resource, 'amount'));
      if (!refundId || !amount) throw new WebhookVerificationError('PAYMENT.CAPTURE.REFUNDED without a refund id and amount');
      const total = webhookAmount(objectAt(objectAt(resource, 'seller_payable_breakdown'), 'total_refunded_amount'));
      return compact({
        kind: 'refunded',
        ref: compact({ orderId: stringAt(resource, 'custom_id'), providerPaymentId: refundedCaptureId(resource) }),
        refundId,
        amountMinor: amount.amountMinor,
        totalRefundedMinor: total?.amountMinor,
        currency: amount.currency,
      });
    }
    case 'CUSTOMER.DISPUTE.CREATED': {
      const captureId = stringAt(firstOf(resource, 'disputed_transactions'), 'seller_transaction_id');
      const disputeId = stringAt(resource, 'dispute_id');
      if (!captureId || !disputeId) return { kind: 'ignored' };
      return compact({ kind: 'disputed', ref: { providerPaymentId: captureId }, disputeId, reason: stringAt(resource, 'reason') });
    }
    default:
      return { kind: 'ignored' };
  }
}

function transmissionHeaders(headers: WebhookHeaders): Record<(typeof TRANSMISSION_HEADERS)[number], string> {
  const found = {} as Record<(typeof TRANSMISSION_HEADERS)[number], string>;
  for (const name of TRANSMISSION_HEADERS) {
    const value = headers[name];
    if (typeof value !== 'string' || value.trim() === '') throw new WebhookVerificationError(`PayPal webhook without a single ${name} header`);
    found[name] = value.trim();
  }
  return found;
}

/** A PayPal session: one SDK client, its access token cached until shortly before expiry. */
interface Session {
  client: Client;
  orders: OrdersController;
  payments: PaymentsController;
  /** The SDK keeps a failed token request as its token for good: such a session is replaced. */
  readonly tokenFailed: boolean;
}

export function createPayPalProvider(settings: PayPalSettings): PaymentProvider {
  for (const key of ['clientId', 'clientSecret', 'webhookId', 'returnUrl', 'cancelUrl'] as const) {
    if (!settings[key]) throw new Error(`PayPal ${key} is required`);
  }
  const timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const toleranceMs = (settings.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS) * 1000;
  const agent = settings.apiUrl ? new RerouteAgent(parseApiUrl(settings.apiUrl)) : undefined;

  function openSession(): Session {
    const token = { failed: false };
    const client = new Client({
      environment: settings.mode === 'live' ? Environment.Production : Environment.Sandbox,
      timeout: timeoutMs,
      clientCredentialsAuthCredentials: {
        oAuthClientId: settings.clientId,
        oAuthClientSecret: settings.clientSecret,
        oAuthClockSkew: TOKEN_EXPIRY_MARGIN_SECONDS,
        oAuthTokenProvider: async (_lastToken, manager) => {
          try {
            return await manager.fetchToken();
          } catch (error) {
            token.failed = true;
            throw error;
          }
        },
      },
      // Our callers retry (job queue, PayPal's webhook redelivery): the SDK must not on its own.
      httpClientOptions: { timeout: timeoutMs, retryConfig: { maxNumberOfRetries: 0 }, ...(agent ? { httpsAgent: agent } : {}) },
      // An HTTPS_PROXY in the environment would make axios bypass the rerouting agent.
      ...(agent ? { unstable_httpClientOptions: { proxy: false } } : {}),
    });
    return {
      client,
      orders: new OrdersController(client),
      payments: new PaymentsController(client),
      get tokenFailed() {
        return token.failed;
      },
    };
  }

  let session = openSession();

  /** Runs one PayPal operation; a refused token is dropped and the operation tried once more (each carries its PayPal-Request-Id). */
  async function call<T>(operation: string, run: (current: Session) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      if (session.tokenFailed) session = openSession();
      const current = session;
      try {
        return await run(current);
      } catch (error) {
        if (attempt === 1 && isRefusedToken(error)) {
          if (session === current) session = openSession();
          continue;
        }
        if (error instanceof PaymentProviderError || error instanceof WebhookVerificationError) throw error;
        throw toProviderError(operation, error);
      }
    }
  }

  /** PayPal's verify-webhook-signature (not in the SDK), through the SDK's transport and token; `body` is sent as is. */
  async function postVerification(current: Session, body: string): Promise<string> {
    const request = current.client.getRequestBuilderFactory()('POST', VERIFY_WEBHOOK_PATH);
    request.header('Content-Type', 'application/json');
    request.header('Accept', 'application/json');
    request.text(body);
    request.authenticate([{ oauth2: true }]);
    try {
      return (await request.callAsText()).result;
    } catch (error) {
      // PayPal refusing the request itself (malformed transmission headers) says the delivery is not authentic.
      if (error instanceof ApiError && error.statusCode === 400) {
        const code = errorBody(error).name;
        throw new WebhookVerificationError(`PayPal refused to verify the webhook: ${typeof code === 'string' ? code : 'HTTP 400'}`);
      }
      throw error;
    }
  }

  async function verifySignature(rawBody: Buffer, headers: WebhookHeaders): Promise<void> {
    const transmission = transmissionHeaders(headers);
    const sentAt = Date.parse(transmission['paypal-transmission-time']);
    if (Number.isNaN(sentAt)) throw new WebhookVerificationError('PayPal webhook with an unreadable paypal-transmission-time');
    if (Math.abs(Date.now() - sentAt) > toleranceMs) throw new WebhookVerificationError('PayPal webhook transmission time outside the tolerance');
    // PayPal checks the event byte for byte: the raw body is spliced in, never re-serialised.
    const fields = JSON.stringify({
      auth_algo: transmission['paypal-auth-algo'],
      cert_url: transmission['paypal-cert-url'],
      transmission_id: transmission['paypal-transmission-id'],
      transmission_sig: transmission['paypal-transmission-sig'],
      transmission_time: transmission['paypal-transmission-time'],
      webhook_id: settings.webhookId,
    });
    const body = `${fields.slice(0, -1)},"webhook_event":${rawBody.toString('utf8')}}`;
    const answer = await call('webhook verification', (current) => postVerification(current, body));
    let status: unknown;
    try {
      status = (JSON.parse(answer) as { verification_status?: unknown }).verification_status;
    } catch {
      throw new PaymentProviderError('unavailable', 'paypal', 'PayPal webhook verification failed: the answer is not JSON');
    }
    if (status === 'FAILURE') throw new WebhookVerificationError('PayPal says the webhook signature is not valid');
    if (status !== 'SUCCESS')
      throw new PaymentProviderError('unavailable', 'paypal', 'PayPal webhook verification failed: no verification_status in the answer');
  }

  return {
    name: 'paypal',

    async createCheckout(request: CheckoutRequest): Promise<CheckoutSession> {
      const currencyCode = request.currency.toUpperCase();
      if (!/^[A-Z]{3}$/.test(currencyCode)) throw new RangeError(`currency must be an ISO 4217 code, got ${request.currency}`);
      const value = payPalAmount(request.amountMinor, currencyCode);
      const { result: order } = await call('order creation', (current) =>
        current.orders.createOrder({
          paypalRequestId: `checkout:${request.orderId}`,
          body: {
            intent: CheckoutPaymentIntent.Capture,
            purchaseUnits: [
              {
                customId: request.orderId,
                invoiceId: request.orderId,
                description: truncate(request.description),
                amount: { currencyCode, value },
              },
            ],
            paymentSource: {
              paypal: {
                ...(request.customerEmail ? { emailAddress: request.customerEmail } : {}),
                experienceContext: {
                  ...(settings.brandName ? { brandName: truncate(settings.brandName) } : {}),
                  returnUrl: settings.returnUrl,
                  cancelUrl: settings.cancelUrl,
                  userAction: PaypalExperienceUserAction.PayNow,
                  shippingPreference: PaypalWalletContextShippingPreference.NoShipping,
                },
              },
            },
          },
        }),
      );
      const approval = order.links?.find((link) => link.rel === 'payer-action') ?? order.links?.find((link) => link.rel === 'approve');
      if (!order.id || !approval)
        throw new PaymentProviderError('unavailable', 'paypal', `PayPal answered order creation without an order id or approval link`);
      return { providerSessionId: order.id, url: approval.href };
    },

    async capture(providerSessionId: string, orderId: string): Promise<CaptureResult> {
      try {
        const { result } = await call('capture', (current) =>
          current.orders.captureOrder({ id: providerSessionId, paypalRequestId: `capture:${orderId}`, prefer: 'return=representation' }),
        );
        return captureResult(result);
      } catch (error) {
        if (!(error instanceof PaymentProviderError) || error.providerCode !== 'ORDER_ALREADY_CAPTURED') throw error;
      }
      // Captured before (PayPal forgot the request id, or another request id did it): its capture is the answer.
      const { result } = await call('order lookup', (current) => current.orders.getOrder({ id: providerSessionId }));
      return captureResult(result);
    },

    async refund(request: RefundRequest): Promise<RefundResult> {
      const currencyCode = request.currency.toUpperCase();
      const { result } = await call('refund', (current) =>
        current.payments.refundCapturedPayment({
          captureId: request.providerPaymentId,
          paypalRequestId: `refund:${request.refundRequestId}`,
          prefer: 'return=representation',
          body: {
            amount: { currencyCode, value: payPalAmount(request.amountMinor, currencyCode) },
            customId: request.orderId,
            invoiceId: request.orderId,
          },
        }),
      );
      if (!result.id) throw new PaymentProviderError('unavailable', 'paypal', 'PayPal answered the refund without a refund id');
      return { providerRefundId: result.id, status: refundStatus(result.status) };
    },

    async parseAndVerifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedEvent> {
      const bodyText = rawBody.toString('utf8');
      if (!Buffer.from(bodyText, 'utf8').equals(rawBody)) throw new WebhookVerificationError('PayPal webhook body is not UTF-8');
      let payload: unknown;
      try {
        payload = JSON.parse(bodyText);
      } catch {
        throw new WebhookVerificationError('PayPal webhook body is not JSON');
      }
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
        throw new WebhookVerificationError('PayPal webhook body is not a JSON object');
      const event = payload as Json;
      const eventId = stringAt(event, 'id');
      const type = stringAt(event, 'event_type');
      if (!eventId || !type) throw new WebhookVerificationError('PayPal webhook without id or event_type');
      await verifySignature(rawBody, headers);
      return { eventId, type, effect: effectOf(type, objectAt(event, 'resource')), payload };
    },
  };
}
