import 'reflect-metadata';
import { DataSource, type MixedList, type EntitySchema, type QueryRunner } from 'typeorm';

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own type for entity classes
  entities: MixedList<Function | string | EntitySchema>;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own type for migration classes
  migrations: MixedList<Function | string>;
}

export function createDataSource({ url, poolSize, entities, migrations }: DatabaseOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    extra: { max: poolSize, connectionTimeoutMillis: 5_000 },
    logging: false,
  });
}

/** An arbitrary, fixed key: every Parley instance serialises its migrations on it. */
const MIGRATION_LOCK_KEY = 4_250_503;

/**
 * Runs pending migrations while holding a PostgreSQL advisory lock, so instances that start
 * together apply each migration once instead of racing on the same DDL.
 */
export async function runMigrationsLocked(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((migration) => migration.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}

/**
 * The SQL that would bring the database to the entities (empty when they agree), and the SQL
 * that would undo it. TypeORM 1.1's schema reader (PostgresQueryRunner.loadTables) sends its
 * per-column queries from parallel callbacks over its one connection, which pg deprecates ("the
 * client is already executing a query") and pg 9 refuses: its query runner here takes them in turn.
 */
export async function pendingSchemaChanges(dataSource: DataSource): Promise<{ up: string[]; down: string[] }> {
  const createQueryRunner = dataSource.createQueryRunner.bind(dataSource);
  // the schema builder makes its own query runner
  dataSource.createQueryRunner = (mode) => queriesInTurn(createQueryRunner(mode));
  try {
    const sql = await dataSource.driver.createSchemaBuilder().log();
    return { up: sql.upQueries.map((query) => query.query), down: sql.downQueries.reverse().map((query) => query.query) };
  } finally {
    dataSource.createQueryRunner = createQueryRunner;
  }
}

/** Makes each query of `runner` wait for the one before it. */
function queriesInTurn(runner: QueryRunner): QueryRunner {
  const query = runner.query.bind(runner);
  let last: Promise<unknown> = Promise.resolve();
  runner.query = ((...args: Parameters<QueryRunner['query']>) => {
    const result = last.then(() => query(...args));
    last = result.catch(() => undefined);
    return result;
  }) as QueryRunner['query'];
  return runner;
}
