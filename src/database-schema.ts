import 'reflect-metadata';
import { migrations } from '../migrations/index.js';
import { moduleEntities } from './modules/index.js';

/**
 * Every entity and migration, in one list shared by the server and the TypeORM CLI
 * (data-source.ts). The entities come from the modules' definitions.
 */
export const entities = [...moduleEntities];

export { migrations };
