import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { entities, migrations } from '../src/database-schema.js';
import { createDataSource, pendingSchemaChanges, runMigrationsLocked } from '../src/infra/database.js';
import { startEmbeddedPostgres } from '../src/infra/embedded-postgres.js';
import { createLogger } from '../src/infra/logger.js';
import { cliConfig } from './cli-config.js';

/**
 * npm run migration:run | migration:revert | migration:show
 * npm run migration:generate -- AddThing   (or --name=AddThing, as `npm run ... --name=X` passes it)
 * npm run migration:create -- AddThing
 *   --dir=<folder> writes the file and updates <folder>/index.ts instead of migrations/
 *
 * Works on DATABASE_URL, or on the embedded PostgreSQL under DATA_DIR when it is unset.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [command = 'show', ...rest] = process.argv.slice(2);
const migrationsDir = path.resolve(rest.find((arg) => arg.startsWith('--dir='))?.slice(6) ?? path.join(root, 'migrations'));
const nameArgument = rest.find((arg) => !arg.startsWith('--')) ?? rest.find((arg) => arg.startsWith('--name='))?.slice(7) ?? process.env.npm_config_name;

function migrationName(): string {
  if (!nameArgument || !/^[A-Z][A-Za-z0-9]*$/.test(nameArgument)) {
    console.error('parley: give the migration a PascalCase name, e.g. npm run migration:create -- AddReportsTable');
    process.exit(1);
  }
  return nameArgument;
}

function writeMigration(name: string, up: string[], down: string[]): string {
  const timestamp = Date.now();
  const className = `${name}${timestamp}`;
  const file = `${timestamp}-${name}.ts`;
  const lines = (queries: string[]) => queries.map((query) => `    await queryRunner.query(${JSON.stringify(query)});`).join('\n');
  writeFileSync(
    path.join(migrationsDir, file),
    `import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ${className} implements MigrationInterface {
  name = '${className}';

  async up(queryRunner: QueryRunner): Promise<void> {
${lines(up)}
  }

  async down(queryRunner: QueryRunner): Promise<void> {
${lines(down)}
  }
}
`,
  );
  // Register it in migrations/index.ts, which the server and the CLI both read.
  const indexPath = path.join(migrationsDir, 'index.ts');
  const index = readFileSync(indexPath, 'utf8')
    .replace(/(\nexport const migrations = \[)/, `\nimport { ${className} } from './${file.replace(/\.ts$/, '.js')}';$1`)
    .replace(/(export const migrations = \[[^\]]*?)(,?\s*\];)/, `$1, ${className}];`);
  writeFileSync(indexPath, index);
  return file;
}

if (command === 'create') {
  console.log(`created ${path.relative(process.cwd(), path.join(migrationsDir, writeMigration(migrationName(), [], [])))}`);
  process.exit(0);
}

const config = cliConfig();
const logger = createLogger({ level: 'warn' });
const embedded = config.DATABASE_URL
  ? undefined
  : await startEmbeddedPostgres({ dataDir: path.resolve(config.DATA_DIR, 'postgres'), database: 'parley', logger });
const dataSource = createDataSource({ url: config.DATABASE_URL ?? embedded!.url, poolSize: 2, entities, migrations });
let exitCode = 0;
try {
  await dataSource.initialize();
  switch (command) {
    case 'run': {
      const applied = await runMigrationsLocked(dataSource);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'no pending migrations');
      break;
    }
    case 'revert':
      await dataSource.undoLastMigration({ transaction: 'each' });
      console.log('reverted the last migration');
      break;
    case 'show': {
      const [{ exists }] = await dataSource.query<[{ exists: boolean }]>("SELECT to_regclass('migrations') IS NOT NULL AS exists");
      const rows = exists ? await dataSource.query<Array<{ name: string }>>('SELECT name FROM migrations') : [];
      const done = new Set(rows.map((row) => row.name));
      for (const migration of dataSource.migrations) console.log(`${done.has(migration.name ?? '') ? '[X]' : '[ ]'} ${migration.name}`);
      break;
    }
    case 'generate': {
      const name = migrationName();
      const { up, down } = await pendingSchemaChanges(dataSource);
      if (!up.length) {
        console.log('entities match the database: nothing to generate');
        break;
      }
      const file = writeMigration(name, up, down);
      console.log(`generated ${path.relative(process.cwd(), path.join(migrationsDir, file))}`);
      break;
    }
    default:
      console.error(`parley: unknown command "${command}" (run, revert, show, generate, create)`);
      exitCode = 1;
  }
} catch (error) {
  console.error(`parley: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  if (dataSource.isInitialized) await dataSource.destroy();
  await embedded?.stop();
}
process.exit(exitCode);
