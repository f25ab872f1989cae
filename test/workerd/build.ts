/**
 * Bundles a worker entry the way wrangler does for `nodejs_compat` (one ES module; `node:*` and
 * `cloudflare:*` left to the runtime), so tests can load it into real workerd through Miniflare.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { builtinModules } from 'node:module';
import { build, type Plugin } from 'esbuild';

/**
 * Node built-ins as wrangler's nodejs_compat bundling treats them: a bare name (`events`, `util` in
 * node-postgres) is the `node:` module, and a CommonJS require() of one becomes a static import (an ES
 * module output cannot require() an external).
 */
const nodeBuiltins: Plugin = {
  name: 'node-builtins',
  setup(b) {
    const names = new Set(builtinModules.filter((m) => !m.startsWith('_')));
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (!names.has(name)) return undefined;
      if (args.kind === 'require-call') return { path: name, namespace: 'node-require' };
      return { path: `node:${name}`, external: true };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-require' }, (args) => ({
      contents: `import lib from 'node:${args.path}'; module.exports = lib;`,
      loader: 'js',
    }));
  },
};

export const ROOT = resolve(import.meta.dirname, '..', '..');
/** Same as wrangler.toml. */
export const COMPATIBILITY_DATE = '2026-04-20';
export const COMPATIBILITY_FLAGS = ['nodejs_compat'];

export async function bundleWorker(entry: string, opts: { minify?: boolean } = {}): Promise<{ path: string; bytes: Uint8Array; exports: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgflare-worker-'));
  const outfile = join(dir, 'worker.mjs');
  const result = await build({
    entryPoints: [resolve(ROOT, entry)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    // As wrangler: esbuild adds 'import' or 'require' by how a module is loaded (node-postgres require()s pg-pool).
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['node:*', 'cloudflare:*'],
    plugins: [nodeBuiltins],
    minify: opts.minify ?? false,
    sourcemap: false,
    write: true,
    metafile: true,
    logLevel: 'silent',
  });
  if (result.errors.length) throw new Error(result.errors.map((e) => e.text).join('\n'));
  const { readFileSync } = await import('node:fs');
  const exports = Object.values(result.metafile!.outputs).flatMap((o) => o.exports);
  return { path: outfile, bytes: readFileSync(outfile), exports };
}
