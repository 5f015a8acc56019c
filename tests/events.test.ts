import { describe, expect, it } from 'vitest';
import { DomainEventError, EventBus } from '../src/infra/events.js';

declare module '../src/infra/events.js' {
  interface DomainEvents {
    'test.happened': { id: string };
    'test.other': { n: number };
  }
}

describe('domain event bus', () => {
  it('runs every handler of an event, in subscription order, and only that event', async () => {
    const bus = new EventBus();
    const seen: string[] = [];
    bus.on('test.happened', ({ id }) => void seen.push(`first:${id}`));
    bus.on('test.happened', async ({ id }) => {
      await Promise.resolve();
      seen.push(`second:${id}`);
    });
    bus.on('test.other', ({ n }) => void seen.push(`other:${n}`));
    await bus.publish('test.happened', { id: 'a' });
    expect(seen).toEqual(['first:a', 'second:a']);
  });

  it('runs the later handlers when one fails, then rejects with its error', async () => {
    const bus = new EventBus();
    const seen: string[] = [];
    const failure = new Error('subscriber down');
    bus.on('test.happened', () => {
      throw failure;
    });
    bus.on('test.happened', ({ id }) => void seen.push(id));
    await expect(bus.publish('test.happened', { id: 'b' })).rejects.toBe(failure);
    expect(seen).toEqual(['b']);
  });

  it('reports every failure when several handlers fail', async () => {
    const bus = new EventBus();
    bus.on('test.other', () => Promise.reject(new Error('one')));
    bus.on('test.other', () => Promise.reject(new Error('two')));
    const error = await bus.publish('test.other', { n: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainEventError);
    expect((error as DomainEventError).errors.map((e: Error) => e.message)).toEqual(['one', 'two']);
  });

  it('stops calling a handler once unsubscribed; publishing with no subscriber is a no-op', async () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const off = bus.on('test.other', ({ n }) => void seen.push(n));
    await bus.publish('test.other', { n: 1 });
    off();
    await bus.publish('test.other', { n: 2 });
    await bus.publish('test.happened', { id: 'nobody listens' });
    expect(seen).toEqual([1]);
  });
});
