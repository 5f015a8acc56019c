import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { inject } from 'vitest';
import type { App } from '../../src/app.js';
import { injectAs, login, PASSWORD, uniqueEmail, type Pair } from './auth.js';
import type { TestApp } from './app.js';

/** The local provider's webhook secret, as the server generated it in the shared keys folder. */
export function localWebhookSecret(): string {
  return readFileSync(path.join(inject('keysDir'), 'local-payments-webhook.secret'), 'utf8').trim();
}

/** A local-provider event body and its `parley-signature` header, as the provider itself sends them. */
export function signLocalEvent(event: Record<string, unknown>, options: { secret?: string; timestamp?: number } = {}): { body: string; signature: string } {
  const body = JSON.stringify(event);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const hmac = createHmac('sha256', options.secret ?? localWebhookSecret())
    .update(`${timestamp}.${body}`)
    .digest('hex');
  return { body, signature: `t=${timestamp},v1=${hmac}` };
}

/** An admin account, made as the operator's command line makes one, signed in. */
export async function registerAdmin(t: TestApp): Promise<Pair & { email: string }> {
  const email = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(email, PASSWORD);
  return { ...(await login(t.app, email)), email };
}

export interface CourseBody {
  title?: string;
  level?: 'beginner' | 'intermediate' | 'advanced';
  price?: { amount: number; currency: string };
  published?: boolean;
}

/** A course created through the admin API (published, $19.99 unless told otherwise). */
export async function createCourse(app: App, admin: Pair, body: CourseBody = {}): Promise<{ id: string; title: string }> {
  const res = await injectAs(app, admin, {
    method: 'POST',
    url: '/courses',
    payload: { title: `Course ${randomUUID().slice(0, 6)}`, level: 'beginner', price: { amount: 1999, currency: 'usd' }, published: true, ...body },
  });
  if (res.statusCode !== 201) throw new Error(`course not created: ${res.statusCode} ${res.body}`);
  return res.json();
}

export function checkout(app: App, buyer: Pair, courseId: string, key: string | null = randomUUID()): Promise<LightMyRequestResponse> {
  return injectAs(app, buyer, {
    method: 'POST',
    url: '/payments/create-checkout-session',
    headers: key === null ? {} : { 'idempotency-key': key },
    payload: { courseId },
  });
}

export async function order(app: App, buyer: Pair, orderId: string): Promise<{ status: string; refunded: { amount: number }; paidAt: string | null }> {
  const res = await injectAs(app, buyer, { method: 'GET', url: `/payments/orders/${orderId}` });
  if (res.statusCode !== 200) throw new Error(`order not read: ${res.statusCode} ${res.body}`);
  return res.json();
}
