/**
 * The domain events modules publish, by name. Each module declares its own in its
 * `events.ts` by augmenting this interface, so publishers and subscribers are checked by
 * the compiler:
 *
 *   declare module '../../infra/events.js' {
 *     interface DomainEvents { 'report.resolved': { reportId: string; reporterId: string } }
 *   }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by declaration merging
export interface DomainEvents {}

export type DomainEventName = keyof DomainEvents;
export type DomainEventHandler<K extends DomainEventName> = (payload: DomainEvents[K]) => Promise<void> | void;

export class DomainEventError extends AggregateError {}

type StoredHandler = (payload: unknown) => Promise<void> | void;

/**
 * A typed in-process event bus. Publish after the transaction commits: a subscriber then sees
 * what the event says. Every handler runs, one after the other in subscription order, and
 * publish resolves once all have; when some failed it rejects with all their errors, so the
 * publisher decides what a failed reaction means for its caller. A reaction that must survive
 * a crash, or that the publisher must not wait for, enqueues a job instead of doing the work.
 */
export class EventBus {
  private readonly handlers = new Map<DomainEventName, StoredHandler[]>();

  on<K extends DomainEventName>(name: K, handler: DomainEventHandler<K>): () => void {
    const stored = handler as unknown as StoredHandler;
    const list = this.handlers.get(name) ?? [];
    list.push(stored);
    this.handlers.set(name, list);
    return () => {
      const index = list.indexOf(stored);
      if (index >= 0) list.splice(index, 1);
    };
  }

  async publish<K extends DomainEventName>(name: K, payload: DomainEvents[K]): Promise<void> {
    const errors: unknown[] = [];
    for (const handler of [...(this.handlers.get(name) ?? [])]) {
      try {
        await handler(payload);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length) throw new DomainEventError(errors, `${errors.length} handlers of ${String(name)} failed`);
  }
}
