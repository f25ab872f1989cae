/**
 * Bundles a worker entry the way wrangler does for `nodejs_compat` (one ES module; `node:*` and
 * `cloudflare:*` left to the runtime), so tests can load it into real workerd through Miniflare.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

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
    conditions: ['workerd', 'worker', 'browser', 'import'],
    mainFields: ['module', 'main'],
    external: ['node:*', 'cloudflare:*'],
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
