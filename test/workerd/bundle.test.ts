/**
 * The deployable worker stays within Workers' size limit: 3 MB compressed on the Free plan (10 MB Paid),
 * per Cloudflare's Workers limits page. Checked on wrangler's own bundle (`wrangler deploy --dry-run`,
 * what `wrangler deploy` would upload) and on a minified esbuild bundle of the same entry.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bundleWorker, ROOT } from './build.ts';

const FREE_PLAN_LIMIT = 3_000_000;
const gz = (bytes: Uint8Array) => gzipSync(bytes, { level: 9 }).length;

describe('worker bundle', () => {
  it('wrangler deploy --dry-run builds it, under the Free plan limit', async () => {
    const out = mkdtempSync(join(tmpdir(), 'pgflare-wrangler-'));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'deploy', '--dry-run', '--outdir', out],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' }, timeout: 60_000 },
    );
    expect(stdout).toContain('env.QUEUE (pgflare-steps)');
    expect(gz(readFileSync(join(out, 'index.js')))).toBeLessThan(FREE_PLAN_LIMIT);
  });

  it('minified, it is a small fraction of the limit and exports only its handlers', async () => {
    const { bytes, exports } = await bundleWorker('src/runtime/worker/index.ts', { minify: true });
    // workerd treats every named export of the main module as an entrypoint: only `default` may exist.
    expect(exports).toEqual(['default']);
    // Today ≈ 220 KB; a jump past 750 KB means something large slipped into the worker.
    expect(gz(bytes)).toBeLessThan(FREE_PLAN_LIMIT / 4);
  });
});
