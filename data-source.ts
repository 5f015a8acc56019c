import { loadConfig } from './src/config/load.js';
import { entities, migrations } from './src/database-schema.js';
import { createDataSource } from './src/infra/database.js';

/**
 * For the TypeORM CLI (`npx typeorm-ts-node-esm -d data-source.ts ...` or through tsx) on a
 * configured DATABASE_URL. The npm run migration:* scripts do the same and also handle the
 * embedded database.
 */
const config = loadConfig({ env: process.env, cwd: process.cwd() });
if (!config.DATABASE_URL) {
  throw new Error('data-source.ts needs DATABASE_URL; `npm run migration:*` also works on the embedded database');
}

export default createDataSource({ url: config.DATABASE_URL, poolSize: 2, entities, migrations });
