import { entities, migrations } from '../../src/database-schema.js';
import { createDataSource } from '../../src/infra/database.js';

/** The SQL TypeORM would run to make `url`'s schema match the entities; empty when they agree. */
export async function schemaDiff(url: string): Promise<string[]> {
  const dataSource = createDataSource({ url, poolSize: 1, entities, migrations });
  await dataSource.initialize();
  try {
    const sql = await dataSource.driver.createSchemaBuilder().log();
    return sql.upQueries.map((query) => query.query);
  } finally {
    await dataSource.destroy();
  }
}
