import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/spawn.js';

const src = path.join(repoRoot, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/g)].map((match) => match[1] ?? match[2]!);
}

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe('module boundaries', () => {
  it('a module reaches another module only through its service', () => {
    const violations: string[] = [];
    for (const file of files(path.join(src, 'modules'))) {
      const ownModule = path.relative(path.join(src, 'modules'), file).split(path.sep)[0];
      for (const specifier of imports(file).filter((s) => s.startsWith('.'))) {
        const target = path.relative(src, path.resolve(path.dirname(file), specifier));
        const [top, module, ...rest] = target.split(path.sep);
        if (top !== 'modules' || module === ownModule) continue;
        if (rest.join('/') !== 'service.js') violations.push(`${path.relative(repoRoot, file)} imports ${specifier}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("a module locks rows only of its own tables (another module's rows are locked through its service)", () => {
    const modules = path.join(src, 'modules');
    const owner = new Map<string, string>();
    for (const file of files(modules)) {
      for (const [, table] of readFileSync(file, 'utf8').matchAll(/@Entity\('(\w+)'\)/g)) owner.set(table!, path.relative(modules, file).split(path.sep)[0]!);
    }
    const violations: string[] = [];
    for (const file of files(modules)) {
      const module = path.relative(modules, file).split(path.sep)[0];
      for (const [sql] of withoutComments(readFileSync(file, 'utf8')).matchAll(/'[^'\n]*\bFOR (?:NO KEY UPDATE|UPDATE|SHARE|KEY SHARE)\b[^'\n]*'/g)) {
        for (const [, table] of sql.matchAll(/\bFROM (\w+)/g)) {
          if (owner.get(table!) !== module) violations.push(`${path.relative(repoRoot, file)} locks ${table}: ${sql}`);
        }
      }
    }
    expect(owner.get('users')).toBe('users');
    expect(violations).toEqual([]);
  });

  it('shared and infra code never depend on a module', () => {
    const violations = [...files(path.join(src, 'shared')), ...files(path.join(src, 'infra'))].flatMap((file) =>
      imports(file)
        .filter((specifier) => specifier.includes('/modules/'))
        .map((specifier) => `${path.relative(repoRoot, file)} imports ${specifier}`),
    );
    expect(violations).toEqual([]);
  });

  it('only the entry points and scripts read process.env', () => {
    const readers = files(src)
      .filter((file) => withoutComments(readFileSync(file, 'utf8')).includes('process.env'))
      .map((file) => path.relative(repoRoot, file));
    expect(readers).toEqual(['src/main.ts', 'src/start.ts', 'src/worker.ts']);
  });
});
