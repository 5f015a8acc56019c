import { entities, migrations } from '../../src/database-schema.js';
import { createDataSource, pendingSchemaChanges } from '../../src/infra/database.js';

/** The SQL TypeORM would run to make `url`'s schema match the entities; empty when they agree. */
export async function schemaDiff(url: string): Promise<string[]> {
  const dataSource = createDataSource({ url, poolSize: 1, entities, migrations });
  await dataSource.initialize();
  try {
    return (await pendingSchemaChanges(dataSource)).up;
  } finally {
    await dataSource.destroy();
  }
}
