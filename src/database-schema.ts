import { migrations } from '../migrations/index.js';

/**
 * Every entity and migration of every module, in one list shared by the server and the
 * TypeORM CLI (data-source.ts).
 */
export const entities = [];

export { migrations };
