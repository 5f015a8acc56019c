import 'reflect-metadata';
import { migrations } from '../migrations/index.js';
import { IdempotencyKey } from './http/idempotency/entity.js';
import { moduleEntities } from './modules/index.js';

/**
 * Every entity and migration, in one list shared by the server and the TypeORM CLI
 * (data-source.ts): the modules' tables, and the HTTP layer's Idempotency-Key records.
 */
export const entities = [...moduleEntities, IdempotencyKey];

export { migrations };
