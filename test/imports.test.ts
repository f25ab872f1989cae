/**
 * No import cycles in src/: every relative import (type-only ones too, since a cycle of types is still
 * two modules that cannot be read one after the other) is followed, and any cycle fails with its path.
 * Generic on purpose: it reads whatever files src/ holds, with node:fs and a regex over import lines.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** `import … from '…'`, `export … from '…'`, `import '…'` (not dynamic import(), which is lazy). */
const IMPORT = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;

function resolveImport(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const p of [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  return null;
}

export function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    const deps = new Set<string>();
    for (const m of text.matchAll(IMPORT)) {
      const target = resolveImport(f, m[1]);
      if (target?.startsWith(SRC)) deps.add(target);
    }
    graph.set(f, [...deps]);
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as the list of files around it (first repeated last). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('imports', () => {
  it('the checker sees a cycle, type-only and multi-line imports included', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c', 'a']]);
    const app = join(SRC, 'api', 'app.ts');
    const deps = importGraph([app]).get(app)!.map((p) => relative(SRC, p));
    // app.ts imports the route modules (multi-line or not) and kit.ts (values and types).
    expect(deps).toEqual(expect.arrayContaining(['api/hooks.ts', 'api/kit.ts', 'api/workflows.ts', 'engine/db.ts']));
  });

  it('src/ has no import cycle', () => {
    const graph = importGraph(sourceFiles(SRC));
    expect(graph.size).toBeGreaterThan(20);
    expect(cycles(graph).map((c) => c.map((p) => relative(SRC, p)).join(' → '))).toEqual([]);
  });
});
