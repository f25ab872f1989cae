/**
 * `npm test` after the type check: the whole suite on the default PostgreSQL (15), then the core suites
 * (the migrator, the catalog, the engine, security, the REST API) on every other major pgflare supports.
 * Each run is its own vitest process with its own throwaway server (test/global-setup.ts reads
 * PGFLARE_TEST_PG). Every version runs even after one fails; the exit code says whether all passed.
 *
 * PGFLARE_TEST_VERSIONS=14,18 runs only those versions (the full suite for 15, the core for the others).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_EMBEDDED_VERSION, EMBEDDED_VERSIONS, embeddedBinariesPackage, embeddedInstalled } from '../src/runtime/node/embedded.ts';

const CORE = ['test/migrate', 'test/sql/catalog.test.ts', 'test/engine', 'test/security', 'test/api'];

const root = join(import.meta.dirname, '..');
const requested = process.env.PGFLARE_TEST_VERSIONS?.split(',').map((v) => v.trim()).filter(Boolean);
const unknown = (requested ?? []).filter((v) => !(EMBEDDED_VERSIONS as readonly string[]).includes(v));
if (unknown.length) {
  console.error(`PGFLARE_TEST_VERSIONS: no embedded PostgreSQL ${unknown.join(', ')} (have ${EMBEDDED_VERSIONS.join(', ')})`);
  process.exit(2);
}
// The other majors' binaries are optionalDependencies for linux-x64 (package.json): on another platform
// a developer's `npm test` runs the majors it has and names the rest; CI, and a version asked for by
// name, must not be skipped quietly.
const missing = (requested ?? EMBEDDED_VERSIONS).filter((v) => !embeddedInstalled(v));
if (missing.length) {
  const what = `PostgreSQL ${missing.join(', ')}: binaries not installed (${missing.map(embeddedBinariesPackage).join(', ')}; test/README.md says how to add them)`;
  if (requested || process.env.CI) {
    console.error(`${what}; failing${requested ? '' : ' because CI is set'}`);
    process.exit(2);
  }
  console.log(`${what}, skipped`);
}
const chosen = (requested ?? EMBEDDED_VERSIONS).filter(embeddedInstalled);
// The default version first: it runs everything, and a broken change shows up there soonest.
const order = [...chosen].sort((a, b) => Number(b === DEFAULT_EMBEDDED_VERSION) - Number(a === DEFAULT_EMBEDDED_VERSION) || Number(a) - Number(b));

/** CPU seconds of the finished children so far (Linux: cutime + cstime of /proc/self/stat), else null. */
function childCpuSeconds(): number | null {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

const runs: { version: string; files: string; ok: boolean; seconds: number; cpu: number | null }[] = [];
for (const version of order) {
  const files = version === DEFAULT_EMBEDDED_VERSION ? [] : CORE;
  console.log(`\n=== PostgreSQL ${version}: ${files.length ? files.join(' ') : 'the whole suite'} ===`);
  const started = Date.now();
  const cpuBefore = childCpuSeconds();
  const r = spawnSync(join(root, 'node_modules', '.bin', 'vitest'), ['run', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PGFLARE_TEST_PG: version },
  });
  if (r.error) throw r.error;
  const cpuAfter = childCpuSeconds();
  const cpu = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
  runs.push({ version, files: files.length ? 'core' : 'all', ok: r.status === 0, seconds: (Date.now() - started) / 1000, cpu });
}

console.log('\n=== PostgreSQL versions ===');
for (const r of runs) {
  const cpu = r.cpu === null ? '' : `, ${r.cpu.toFixed(0)} s CPU`;
  console.log(`PostgreSQL ${r.version} (${r.files}): ${r.ok ? 'passed' : 'FAILED'} in ${r.seconds.toFixed(0)} s${cpu}`);
}
process.exit(runs.every((r) => r.ok) ? 0 : 1);
