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
    expect(readers).toEqual(['src/main.ts', 'src/start.ts']);
  });
});
