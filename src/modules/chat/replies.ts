import type { Redis } from 'ioredis';
import type { Logger } from '../../infra/logger.js';

/** What a client hears of a reply, numbered from 1 so it can say where it stopped. */
export type ReplyEvent =
  | { seq: number; type: 'token'; text: string }
  | { seq: number; type: 'done'; messageId: string; content: string; promptTokens: number | null; replyTokens: number | null }
  | { seq: number; type: 'error'; code: string; message: string };

/** An event before it has its number. */
type WithoutSeq<E> = E extends unknown ? Omit<E, 'seq'> : never;
export type ReplyEventBody = WithoutSeq<ReplyEvent>;

export const isFinal = (event: ReplyEvent) => event.type !== 'token';

const streamKey = (messageId: string) => `chat:reply:{${messageId}}`;

/** One reply being written on this instance: its events so far, and who is listening. */
class LocalReply {
  readonly events: ReplyEvent[] = [];
  readonly listeners = new Set<() => void>();

  get finished(): boolean {
    const last = this.events.at(-1);
    return last !== undefined && isFinal(last);
  }
}

/**
 * Where replies stream to their listeners. The instance writing a reply hands each event to
 * the clients listening here at once, and appends it to a Redis stream kept for a while, so a
 * client that lost its connection can pick up where it stopped (Last-Event-ID), on any
 * instance: events it already has are not sent again.
 */
export class ReplyHub {
  private readonly local = new Map<string, LocalReply>();

  constructor(
    private readonly dependencies: { redis: Redis; logger: Logger },
    private readonly settings: { retentionSeconds: number; idleTimeoutMs: number },
  ) {}

  /** Starts the record of a reply written here; returns how to add its events. */
  open(messageId: string): (event: ReplyEventBody) => void {
    const reply = new LocalReply();
    this.local.set(messageId, reply);
    const key = streamKey(messageId);
    return (body) => {
      if (reply.finished) return;
      const event = { ...body, seq: reply.events.length + 1 };
      reply.events.push(event);
      for (const listener of reply.listeners) listener();
      // one connection keeps the order; the listeners here do not wait for Redis
      const write = this.dependencies.redis.multi().xadd(key, '*', 'e', JSON.stringify(event));
      if (event.seq === 1 || isFinal(event)) write.expire(key, this.settings.retentionSeconds);
      write.exec().catch((error: unknown) => this.dependencies.logger.warn({ err: error, messageId }, 'could not keep a reply event for resuming'));
      if (isFinal(event)) this.local.delete(messageId);
    };
  }

  /**
   * The reply's events after `afterSeq` until its last one, as they come. `stored` answers
   * when Redis keeps no events of it: `streaming` while its row says it is being written
   * (another instance has not said anything yet, or died), else the final event that the saved
   * message gives (the events expired), or null. Ends early when `signal` aborts.
   */
  async *follow(
    messageId: string,
    afterSeq: number,
    signal: AbortSignal,
    stored: () => Promise<ReplyEventBody | 'streaming' | null>,
  ): AsyncGenerator<ReplyEvent> {
    const here = this.local.get(messageId);
    if (here) {
      yield* this.followLocal(here, afterSeq, signal);
      return;
    }
    const kept = await this.readKept(messageId);
    if (kept === null) {
      const last = await stored();
      // the model has said nothing yet (it is still loading, or thinking): its first events come to Redis
      if (last === 'streaming') yield* this.followRemote(messageId, afterSeq, '0', signal);
      else if (last) yield { ...last, seq: afterSeq + 1 };
      return;
    }
    // the writer may be here now (it opened between the two reads): its memory has it all
    const opened = this.local.get(messageId);
    if (opened) {
      yield* this.followLocal(opened, afterSeq, signal);
      return;
    }
    const fresh = kept.events.filter((event) => event.seq > afterSeq);
    yield* fresh;
    // the reply has ended: nothing more, also for a client that had its last event (or claims more)
    if (isFinal(kept.events.at(-1)!)) return;
    yield* this.followRemote(messageId, fresh.at(-1)?.seq ?? afterSeq, kept.position, signal);
  }

  private async *followLocal(reply: LocalReply, afterSeq: number, signal: AbortSignal): AsyncGenerator<ReplyEvent> {
    let next = afterSeq;
    let wake: (() => void) | undefined;
    const listener = () => wake?.();
    reply.listeners.add(listener);
    const stop = () => wake?.();
    signal.addEventListener('abort', stop, { once: true });
    try {
      while (!signal.aborted) {
        while (next < reply.events.length) {
          const event = reply.events[next]!;
          next += 1;
          yield event;
          if (isFinal(event)) return;
        }
        // a client claiming more than the reply has (past its end) waits no longer than the reply
        if (reply.finished) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      reply.listeners.delete(listener);
      signal.removeEventListener('abort', stop);
    }
  }

  /**
   * The events Redis kept of the reply, and the stream position after the last of them (to wait
   * for more from), or null when it kept nothing. A reply is a few thousand events at most.
   */
  private async readKept(messageId: string): Promise<{ events: ReplyEvent[]; position: string } | null> {
    const entries = await this.dependencies.redis.xrange(streamKey(messageId), '-', '+');
    if (!entries.length) return null;
    return { events: entries.map(([, fields]) => JSON.parse(fields[1]!) as ReplyEvent), position: entries.at(-1)![0] };
  }

  /** Waits on Redis for the events another instance writes; a writer silent too long is gone. */
  private async *followRemote(messageId: string, afterSeq: number, from: string, signal: AbortSignal): AsyncGenerator<ReplyEvent> {
    // The blocking read waits up to the idle timeout, far longer than the second any other command
    // may take: that limit is lifted here, and the BLOCK time (with a grace) bounds a dead connection.
    const reader = this.dependencies.redis.duplicate({ commandTimeout: undefined, blockingTimeout: this.settings.idleTimeoutMs });
    const stop = () => reader.disconnect();
    signal.addEventListener('abort', stop, { once: true });
    let last = afterSeq;
    let position = from;
    try {
      while (!signal.aborted) {
        const answer = await reader.xread('BLOCK', this.settings.idleTimeoutMs, 'STREAMS', streamKey(messageId), position);
        if (!answer) {
          yield { seq: last + 1, type: 'error', code: 'reply_interrupted', message: 'The reply stopped coming; ask again' };
          return;
        }
        for (const [, entries] of answer) {
          for (const [id, fields] of entries) {
            position = id;
            const event = JSON.parse(fields[1]!) as ReplyEvent;
            if (event.seq > last) {
              last = event.seq;
              yield event;
            }
            if (isFinal(event)) return;
          }
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      signal.removeEventListener('abort', stop);
      reader.disconnect();
    }
  }

  /** Replies being written here now. */
  get writing(): number {
    return this.local.size;
  }
}
