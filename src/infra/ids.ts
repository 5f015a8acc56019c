import { randomUUID } from 'node:crypto';

/** The source of new ids, injected so tests can predict them. */
export interface IdGenerator {
  uuid(): string;
}

export const randomIds: IdGenerator = { uuid: () => randomUUID() };
