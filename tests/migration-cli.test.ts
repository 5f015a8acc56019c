import { copyFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { migrations } from '../migrations/index.js';
import { schemaDiff } from './helpers/schema-diff.js';
import { repoRoot, run } from './helpers/spawn.js';

const tsx = path.join(repoRoot, 'node_modules/.bin/tsx');
const script = path.join(repoRoot, 'scripts/migration.ts');
const name = `parley_cli_${randomBytes(4).toString('hex')}`;
let url: string;

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const parsed = new URL(inject('adminDatabaseUrl'));
  parsed.pathname = `/${name}`;
  url = parsed.toString();
});
afterAll(() => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));

async function migration(command: string, args: string[] = []) {
  const spawned = run(tsx, [script, command, ...args], {
    cwd: mkdtempSync(path.join(os.tmpdir(), 'parley-mig-')),
    env: { DATABASE_URL: url, TSX_TSCONFIG_PATH: path.join(repoRoot, 'tsconfig.json') },
  });
  const code = await spawned.exit;
  return { code, output: spawned.output() };
}

describe('npm run migration:* on a configured database', () => {
  it('shows, runs, reverts and generates migrations', async () => {
    const names = migrations.map((migration) => migration.name);
    const listing = (marks: string[]) => names.map((name, index) => `${marks[index]} ${name}`).join('\n');
    const before = await migration('show');
    expect(before.code).toBe(0);
    expect(before.output).toContain(listing(names.map(() => '[ ]')));

    const applied = await migration('run');
    expect(applied.output).toContain(`applied: ${names.join(', ')}`);
    expect((await migration('run')).output).toContain('no pending migrations');
    expect((await migration('show')).output).toContain(listing(names.map(() => '[X]')));
    // the entities describe exactly what the migrations built, so migration:generate starts from a clean diff
    expect(await schemaDiff(url)).toEqual([]);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-gen-'));
    copyFileSync(path.join(repoRoot, 'migrations/index.ts'), path.join(dir, 'index.ts'));
    expect((await migration('generate', ['Nothing', `--dir=${dir}`])).output).toContain('entities match the database: nothing to generate');
    expect(readdirSync(dir)).toEqual(['index.ts']);

    const reverted = await migration('revert');
    expect(reverted.code).toBe(0);
    expect((await migration('show')).output).toContain(listing(names.map((_, index) => (index === names.length - 1 ? '[ ]' : '[X]'))));
    // generate writes what the entities need and the database lacks (what the reverted migration built), and registers it
    const missing = await schemaDiff(url);
    expect(missing.length).toBeGreaterThan(0);
    const generated = await migration('generate', ['CatchUp', `--dir=${dir}`]);
    expect(generated.code).toBe(0);
    const file = readdirSync(dir).find((entry) => entry.endsWith('-CatchUp.ts'));
    expect(generated.output).toContain(`${path.sep}${file}`);
    expect(generated.output).toMatch(/generated \S+-CatchUp\.ts/);
    const source = readFileSync(path.join(dir, file!), 'utf8');
    for (const query of missing) expect(source).toContain(`await queryRunner.query(${JSON.stringify(query)});`);
    expect(readFileSync(path.join(dir, 'index.ts'), 'utf8')).toMatch(
      new RegExp(`import \\{ CatchUp\\d+ \\} from '\\./\\d+-CatchUp\\.js';[\\s\\S]*${names.at(-1)}, CatchUp\\d+\\]`),
    );

    // and forward again: down() undid exactly what up() did
    expect((await migration('run')).output).toContain(`applied: ${names.at(-1)}`);
    expect(await schemaDiff(url)).toEqual([]);
  }, 180_000); // every migration runs, reverts and runs again in spawned CLIs: it grows with the migrations

  it('rejects an unknown command', async () => {
    const result = await migration('explode');
    expect(result.code).toBe(1);
    expect(result.output).toContain('unknown command "explode"');
  });
});
