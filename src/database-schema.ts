import 'reflect-metadata';
import { migrations } from '../migrations/index.js';
import { IdempotencyKey } from './http/idempotency/entity.js';
import { LockFence } from './infra/locks.js';
import { moduleEntities } from './modules/index.js';

/**
 * Every entity and migration, in one list shared by the server and the TypeORM CLI
 * (data-source.ts): the modules' tables, the HTTP layer's Idempotency-Key records and the
 * distributed locks' fencing counters.
 */
export const entities = [...moduleEntities, IdempotencyKey, LockFence];

export { migrations };
