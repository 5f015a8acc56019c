import { Ollama, type ChatResponse } from 'ollama';
import { afterEach, describe, expect, it } from 'vitest';
import { replyTo, startFakeOllama, tokensOf, type FakeOllama } from './helpers/fake-ollama.js';

const fakes: FakeOllama[] = [];
async function fake(options?: Parameters<typeof startFakeOllama>[0]) {
  const started = await startFakeOllama(options);
  fakes.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

const messages = [
  { role: 'system', content: 'You are a patient English partner.' },
  { role: 'user', content: 'I goed to the park' },
];
const reply = replyTo('I goed to the park');
const tokens = tokensOf(reply);

async function collect(stream: AsyncIterable<ChatResponse>) {
  const parts: ChatResponse[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

describe('fake Ollama, through the real ollama client', () => {
  it('streams the reply token by token, then a done line with the eval counts', async () => {
    const server = await fake();
    const client = new Ollama({ host: server.url });
    const parts = await collect(await client.chat({ model: 'llama3.2', messages, stream: true }));

    expect(tokens.length).toBeGreaterThan(3);
    expect(parts.slice(0, -1).map((p) => p.message.content)).toEqual(tokens);
    expect(parts.slice(0, -1).every((p) => !p.done && p.model === 'llama3.2' && p.message.role === 'assistant')).toBe(true);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'stop', message: { role: 'assistant', content: '' }, eval_count: tokens.length });
    expect(parts.at(-1)!.prompt_eval_count).toBeGreaterThan(0);

    const chat = await server.chat(0);
    await expect(chat.ended).resolves.toBe('done');
    expect(chat).toMatchObject({ model: 'llama3.2', behaviour: 'reply', stream: true, messages, sent: tokens });
    expect(server.requests).toEqual([expect.objectContaining({ method: 'POST', path: '/api/chat', body: { model: 'llama3.2', messages, stream: true } })]);
    expect(server.requests[0]!.headers['content-type']).toBe('application/json');
  });

  it('answers in one object when stream is false', async () => {
    const server = await fake();
    const response = await new Ollama({ host: server.url }).chat({ model: 'llama3.2:latest', messages, stream: false });
    expect(response).toMatchObject({ model: 'llama3.2:latest', done: true, message: { role: 'assistant', content: reply }, eval_count: tokens.length });
    expect(server.chats[0]!.outcome).toBe('done');
  });

  it('lists its models as /api/tags does', async () => {
    const server = await fake({ models: ['llama3.2:latest', 'mistral:7b'] });
    const { models } = await new Ollama({ host: server.url }).list();
    expect(models.map((m) => m.name)).toEqual(['llama3.2:latest', 'mistral:7b']);
    expect(models[1]).toMatchObject({ model: 'mistral:7b', details: { format: 'gguf' } });
    expect(models[1]!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/api/tags' });
  });

  it('with an API key, refuses requests without its bearer token', async () => {
    const server = await fake({ apiKey: 'sk-test-123' });
    await expect(new Ollama({ host: server.url }).list()).rejects.toMatchObject({ name: 'ResponseError', status_code: 401, error: 'unauthorized' });
    const wrong = new Ollama({ host: server.url, headers: { Authorization: 'Bearer sk-other' } });
    await expect(wrong.chat({ model: 'llama3.2', messages })).rejects.toMatchObject({ status_code: 401 });
    expect(server.chats).toHaveLength(0);

    const right = new Ollama({ host: server.url, headers: { Authorization: 'Bearer sk-test-123' } });
    await expect(right.list()).resolves.toHaveProperty('models');
    const parts = await collect(await right.chat({ model: 'llama3.2', messages, stream: true }));
    expect(parts.map((p) => p.message.content).join('')).toBe(reply);
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer sk-test-123');
  });

  it('slow: holds every token (and so the headers) until the test releases it', async () => {
    const server = await fake();
    const client = new Ollama({ host: server.url });
    const started = client.chat({ model: 'slow', messages, stream: true });
    const chat = await server.chat(0);
    expect(chat.sent).toEqual([]);

    chat.release();
    const iterator = (await started)[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toMatchObject({ message: { content: tokens[0] }, done: false });
    expect(chat.sent).toEqual([tokens[0]]);

    chat.release(2);
    expect((await iterator.next()).value).toMatchObject({ message: { content: tokens[1] } });
    expect((await iterator.next()).value).toMatchObject({ message: { content: tokens[2] } });
    expect(chat.sent).toHaveLength(3);

    chat.release(Infinity);
    const rest: string[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value.message.content);
    expect(rest.join('')).toBe(tokens.slice(3).join(''));
    await expect(chat.ended).resolves.toBe('done');
    expect(chat.firstTokenAt).toBeGreaterThanOrEqual(chat.receivedAt);
  });

  it('slow with slowTokenMs: the tokens come on their own', async () => {
    const server = await fake({ slowTokenMs: 1 });
    const parts = await collect(await new Ollama({ host: server.url }).chat({ model: 'slow:latest', messages, stream: true }));
    expect(parts.map((p) => p.message.content).join('')).toBe(reply);
    const response = await new Ollama({ host: server.url }).chat({ model: 'slow', messages, stream: false });
    expect(response.message.content).toBe(reply);
  });

  it('sees the client abort a stream: the upstream cancellation', async () => {
    const server = await fake();
    const started = new Ollama({ host: server.url }).chat({ model: 'slow', messages, stream: true });
    const chat = await server.chat(0);
    chat.release();
    const stream = await started;
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ message: { content: tokens[0] } });

    stream.abort();
    await expect(iterator.next()).rejects.toMatchObject({ name: 'AbortError' });
    await expect(chat.ended).resolves.toBe('aborted');
    expect(chat.sent).toEqual([tokens[0]]);
  });

  it('drop: a few tokens, then the connection is cut and the client fails', async () => {
    const server = await fake({ dropAfterTokens: 2 });
    const received: string[] = [];
    const reading = (async () => {
      for await (const part of await new Ollama({ host: server.url }).chat({ model: 'drop', messages, stream: true })) received.push(part.message.content);
    })();
    await expect(reading).rejects.toThrow();
    expect(received).toEqual(tokens.slice(0, 2));
    const chat = await server.chat(0);
    expect(chat.outcome).toBe('dropped');

    await expect(new Ollama({ host: server.url }).chat({ model: 'drop', messages, stream: false })).rejects.toThrow();
    expect(server.chats[1]!.outcome).toBe('dropped');
  });

  it('fail: 500 with the model crashed error, streaming or not', async () => {
    const server = await fake();
    const client = new Ollama({ host: server.url });
    await expect(client.chat({ model: 'fail', messages, stream: true })).rejects.toMatchObject({
      name: 'ResponseError',
      status_code: 500,
      error: 'model crashed',
    });
    await expect(client.chat({ model: 'fail', messages })).rejects.toMatchObject({ status_code: 500, error: 'model crashed' });
    expect(server.chats.map((c) => c.outcome)).toEqual(['failed', 'failed']);
  });

  it('missing: 404 as for a model never pulled', async () => {
    const server = await fake();
    await expect(new Ollama({ host: server.url }).chat({ model: 'missing', messages })).rejects.toMatchObject({
      status_code: 404,
      error: expect.stringContaining('not found'),
    });
  });

  it('hang: no headers ever; the client giving up is seen as an abort', async () => {
    const server = await fake();
    const controller = new AbortController();
    const client = new Ollama({ host: server.url, fetch: (input, init) => fetch(input, { ...init, signal: controller.signal }) });
    const pending = client.chat({ model: 'hang', messages, stream: true });
    const chat = await server.chat(0);
    expect(chat.behaviour).toBe('hang');
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await expect(chat.ended).resolves.toBe('aborted');
    expect(chat.sent).toEqual([]);
  });
});
