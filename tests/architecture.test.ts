import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modules } from '../src/modules/index.js';
import { repoRoot } from './helpers/spawn.js';

const src = path.join(repoRoot, 'src');
const modulesDir = path.join(src, 'modules');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : [];
  });
}

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

/** Every relative import and re-export of a file (type-only ones too: they are dependencies of the design). */
function imports(file: string): string[] {
  const text = withoutComments(readFileSync(file, 'utf8'));
  return [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/g)].map((match) => match[1] ?? match[2]!);
}

/** The module a file belongs to, or undefined for the catalogue and the contract themselves. */
function moduleOf(file: string): string | undefined {
  const parts = path.relative(modulesDir, file).split(path.sep);
  return parts.length > 1 ? parts[0] : undefined;
}

const moduleFolders = readdirSync(modulesDir).filter((name) => statSync(path.join(modulesDir, name)).isDirectory());

/** Tables by owning module: entities declare theirs; a module may claim an entity-less table with `// owns table: <name>`. */
function tableOwners(): Map<string, string> {
  const owner = new Map<string, string>();
  for (const file of files(modulesDir)) {
    const module = moduleOf(file);
    if (!module) continue;
    const text = readFileSync(file, 'utf8');
    for (const [, table] of text.matchAll(/@Entity\('(\w+)'\)/g)) owner.set(table!, module);
    for (const [, table] of text.matchAll(/\/\/ owns table: (\w+)/g)) owner.set(table!, module);
  }
  return owner;
}

/** SQL string literals (single-quoted or template) of a file. */
function sqlLiterals(file: string): string[] {
  const text = withoutComments(readFileSync(file, 'utf8'));
  return [...text.matchAll(/'(?:[^'\\\n]|\\.)*'|`[^`]*`/g)].map(([literal]) => literal).filter((literal) => /\b(SELECT|UPDATE|INSERT|DELETE)\b/.test(literal));
}

describe('the module contract', () => {
  it('every module folder has an index.ts and is in the catalogue under its own name', () => {
    const missingIndex = moduleFolders.filter((name) => !statSync(path.join(modulesDir, name, 'index.ts'), { throwIfNoEntry: false }));
    expect(missingIndex).toEqual([]);
    expect(Object.keys(modules).sort()).toEqual([...moduleFolders].sort());
    for (const [key, definition] of Object.entries(modules)) expect(definition.name).toBe(key);
  });

  it("a module reaches another only through the other's index.ts", () => {
    const violations: string[] = [];
    for (const file of files(modulesDir)) {
      const own = moduleOf(file);
      if (!own) continue;
      for (const specifier of imports(file).filter((s) => s.startsWith('.'))) {
        const target = path.relative(modulesDir, path.resolve(path.dirname(file), specifier));
        if (target.startsWith('..')) continue;
        const [module, ...rest] = target.split(path.sep);
        if (rest.length === 0) {
          if (module !== 'kit.js') violations.push(`${path.relative(repoRoot, file)} imports ${specifier}`);
          continue;
        }
        if (module !== own && rest.join('/') !== 'index.js') violations.push(`${path.relative(repoRoot, file)} imports ${specifier}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("a routes file calls its own module's service only (another module's schemas are fine)", () => {
    const violations: string[] = [];
    for (const file of files(modulesDir).filter((file) => path.basename(file) === 'routes.ts')) {
      const text = withoutComments(readFileSync(file, 'utf8'));
      for (const [statement, names, specifier] of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g)) {
        if (!/^\.\.\/[a-z-]+\/index\.js$/.test(specifier!)) continue;
        if (/\b\w+Service\b/.test(names!)) violations.push(`${path.relative(repoRoot, file)}: ${statement}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('code outside the modules uses them through the catalogue or their index.ts only', () => {
    const outside = files(src).filter((file) => !file.startsWith(modulesDir + path.sep));
    const violations = outside.flatMap((file) =>
      imports(file)
        .filter((specifier) => specifier.includes('modules/'))
        .filter((specifier) => !/modules\/(index|kit|[a-z-]+\/index)\.js$/.test(specifier))
        .map((specifier) => `${path.relative(repoRoot, file)} imports ${specifier}`),
    );
    expect(violations).toEqual([]);
  });

  it('shared, infra and the HTTP plugins never depend on a module', () => {
    const violations = ['shared', 'infra', 'http'].flatMap((dir) =>
      files(path.join(src, dir)).flatMap((file) =>
        imports(file)
          .filter((specifier) => specifier.includes('/modules/'))
          .map((specifier) => `${path.relative(repoRoot, file)} imports ${specifier}`),
      ),
    );
    expect(violations).toEqual([]);
  });

  it('the modules depend on each other without cycles', () => {
    const edges = new Map<string, Set<string>>(moduleFolders.map((name) => [name, new Set()]));
    for (const file of files(modulesDir)) {
      const own = moduleOf(file);
      if (!own) continue;
      for (const specifier of imports(file).filter((s) => s.startsWith('.'))) {
        const other = moduleOf(path.resolve(path.dirname(file), specifier));
        if (other && other !== own) edges.get(own)!.add(other);
      }
    }
    const cycles: string[] = [];
    const visit = (module: string, trail: string[]) => {
      if (trail.includes(module)) return cycles.push([...trail.slice(trail.indexOf(module)), module].join(' -> '));
      for (const next of edges.get(module) ?? []) visit(next, [...trail, module]);
    };
    for (const module of moduleFolders) visit(module, []);
    expect(cycles).toEqual([]);
    // The check sees real edges: admin uses users.
    expect(edges.get('admin')?.has('users')).toBe(true);
  });

  it("a module's SQL names only its own tables", () => {
    const owner = tableOwners();
    expect(owner.get('users')).toBe('users');
    expect(owner.get('activity_logs')).toBe('audit');
    const violations: string[] = [];
    const seen = new Set<string>();
    for (const file of files(modulesDir)) {
      const module = moduleOf(file);
      if (!module) continue;
      for (const sql of sqlLiterals(file)) {
        for (const [, table] of sql.matchAll(/\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)/gi)) {
          seen.add(`${module}:${table}`);
          const tableOwner = owner.get(table!);
          if (tableOwner && tableOwner !== module) violations.push(`${path.relative(repoRoot, file)} uses ${table}: ${sql.slice(0, 120)}`);
        }
      }
    }
    expect(violations).toEqual([]);
    // The scan reads real queries: the call history's and the activity log's own.
    expect(seen).toContain('calls:call_sessions');
    expect(seen).toContain('audit:activity_logs');
  });

  it('a module with a repository reaches its tables only there (repository.ts, or a part of it named *-repository.ts)', () => {
    const withRepository = moduleFolders.filter((name) => statSync(path.join(modulesDir, name, 'repository.ts'), { throwIfNoEntry: false }));
    expect(withRepository).toContain('users');
    const violations: string[] = [];
    for (const module of withRepository) {
      const entities = readFileSync(path.join(modulesDir, module, 'entities.ts'), 'utf8');
      const tables = [...entities.matchAll(/@Entity\('(\w+)'\)/g)].map((match) => match[1]!);
      const classes = [...entities.matchAll(/@Entity\('\w+'\)[\s\S]*?export class (\w+)/g)].map((match) => match[1]!);
      expect(classes).toHaveLength(tables.length);
      const sql = new RegExp(`\\b(?:FROM|JOIN|UPDATE|INTO) (?:${tables.join('|')})\\b`);
      const typeorm = new RegExp(
        `\\b(?:getRepository|insert|update|delete|create|findOne|find|findBy|exists|count|save|upsert)\\(\\s*(?:${classes.join('|')})\\b`,
      );
      const ownRepository = (file: string) => path.dirname(file) === path.join(modulesDir, module) && /(?:^|-)repository\.ts$/.test(path.basename(file));
      for (const file of files(src).filter((file) => !ownRepository(file))) {
        const text = withoutComments(readFileSync(file, 'utf8'));
        if (sql.test(text) || typeorm.test(text)) violations.push(`${path.relative(repoRoot, file)} reaches ${tables.join(', ')}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('only the entry points and scripts read process.env', () => {
    const readers = files(src)
      .filter((file) => withoutComments(readFileSync(file, 'utf8')).includes('process.env'))
      .map((file) => path.relative(repoRoot, file));
    expect(readers).toEqual(['src/main.ts', 'src/start.ts', 'src/worker.ts']);
  });
});
