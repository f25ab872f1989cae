/**
 * pgflare benchmarks (issue 4, item 6): `npm run bench [-- --quick] [--only W1,W2,W3] [--duration-w2 60]`.
 *
 * Starts a throwaway embedded PostgreSQL, migrates a database as a non-superuser owner, installs
 * graphile-worker's schema beside it, runs each workload for each contender (floor, graphile-worker,
 * pgflare), prints one table per workload with ratios to the floor measured in this same run, and
 * writes bench/results/latest.json. See bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/runtime/node/embedded.ts';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { migrate } from '../src/migrate/runner.ts';
import { connect, formatWindows, round, sizes, table, type BenchContext, type Measurement, type Window } from './common.ts';
import { floorChain, floorSustained, floorThroughput, floorWakeup } from './floor.ts';
import { graphileChain, graphileDrain, graphileSetup, graphileSustained, graphileWakeup } from './graphile.ts';
import { engineChain, engineDrain, engineFanOut, engineFanOutRows, engineSustained, engineWakeup, loadEngine, unavailable } from './engine.ts';
import { W3_TABLES } from './w3.ts';
import { pairedWakeup } from './w3-paired.ts';
import { historyOptions, HISTORY_HELP, HISTORY_TITLE, historyTargets, runHistory } from './history-run.ts';

const OWNER = 'bench_owner';
const OWNER_PASSWORD = 'bench';
const DATABASE = 'pgflare_bench';

// `npm run bench -- workerd [options]`: the Workers runtime in local workerd vs Node (bench/workerd.ts).
if (process.argv[2] === 'workerd') {
  const { main: workerd } = await import('./workerd.ts');
  await workerd(process.argv.slice(3)).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
  process.exit(process.exitCode ?? 0);
}

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'W1,W2,W3' },
    quick: { type: 'boolean', default: false },
    'duration-w2': { type: 'string' },
    window: { type: 'string', default: '5' },
    'synchronous-commit': { type: 'string', default: 'off' },
    contenders: { type: 'string', default: 'floor,graphile,pgflare' },
    out: { type: 'string', default: join(import.meta.dirname, 'results', 'latest.json') },
    'data-dir': { type: 'string' },
    'shared-buffers': { type: 'string' },
    ...historyOptions,
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run bench -- [options]
  --only W1,W2,W3            workloads to run (default all)
  --quick                    small sizes, 10 s sustained phases: a smoke run (~2 min)
  --duration-w2 SECONDS      length of each sustained W2 phase (default 60; 10 with --quick)
  --window SECONDS           rate window of the sustained phases (default 5)
  --synchronous-commit on|off  server setting for every contender (default off; fsync stays on)
  --contenders floor,graphile,pgflare   subset of contenders (default all)
  --out FILE                 JSON results (default bench/results/latest.json)
  --shared-buffers SIZE      the server's shared_buffers (default PostgreSQL's, 128MB), e.g. 2GB for a large --history
  --data-dir DIR             the server's data directory, kept after the run (default: a throwaway one);
                             a later run with the same DIR reuses a --history load of the same size
${HISTORY_HELP}
npm run bench -- workerd [--help]   the Workers runtime in local workerd vs Node (bench/workerd.ts)`);
  process.exit(0);
}

const only = new Set(args.only.split(',').map((s) => s.trim().toUpperCase()));
if (Number(args.history ?? 0) > 0) only.add('H');
const contenders = new Set(args.contenders.split(',').map((s) => s.trim()));
const syncCommit = args['synchronous-commit'];
if (!['on', 'off'].includes(syncCommit)) throw new Error('--synchronous-commit must be on or off');

/** Server settings, the same for every contender. Durability stays on (fsync, full_page_writes). */
const SETTINGS: Record<string, string> = {
  synchronous_commit: syncCommit,
  // W3 reads the commit time of the starting transaction from the server.
  track_commit_timestamp: 'on',
  ...(args['shared-buffers'] ? { shared_buffers: args['shared-buffers'] } : {}),
};

function log(line: string) {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

async function main() {
  const ctxBase = {
    quick: args.quick,
    durationW2: Number(args['duration-w2'] ?? (args.quick ? 10 : 60)),
    windowSeconds: Number(args.window),
    log,
  };
  // A kept data directory lets a large --history load serve several runs (bench/history.ts).
  const keep = args['data-dir'] !== undefined;
  const dataDir = keep ? args['data-dir']! : mkdtempSync(join(tmpdir(), 'pgflare-bench-'));
  let server: EmbeddedServer | undefined;
  const measurements: Record<string, Measurement[]> = { W1: [], W2: [], W3: [], H: [] };
  const started = new Date();
  let pgVersion = '';
  const cleanUp = async () => {
    await server?.stop().catch(() => undefined);
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping the bench server`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  try {
    log(`starting PostgreSQL in ${dataDir} (${Object.entries(SETTINGS).map(([k, v]) => `${k}=${v}`).join(', ')})`);
    server = await startEmbeddedPostgres({ dataDir, settings: SETTINGS });
    const admin = await connect(server.superuserUrl);
    // A kept data directory has the role already; the bench's own database always starts empty.
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [OWNER]);
    if (!role.rowCount) await admin.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD '${OWNER_PASSWORD}'`);
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${OWNER}`);
    pgVersion = (await admin.query<{ v: string }>('SHOW server_version')).rows[0].v;
    await admin.end();

    const ctx: BenchContext = {
      ...ctxBase,
      ownerUrl: server.urlFor(DATABASE, OWNER, OWNER_PASSWORD),
      superUrl: server.urlFor(DATABASE),
    };
    const db = createPgDb({ connectionString: ctx.ownerUrl, max: 1 });
    try {
      const m = await migrate(db);
      log(`migrated: ${m.applied.length} migrations`);
    } finally {
      await db.end();
    }
    const c = await connect(ctx.ownerUrl);
    await c.query(W3_TABLES + ' CREATE TABLE IF NOT EXISTS bench_w2_ids (id text);');
    await c.end();
    if (contenders.has('graphile')) await graphileSetup(ctx);

    const avail = await loadEngine();
    if (contenders.has('pgflare')) {
      log(
        `pgflare engine: ${avail.engine ? `loaded from ${avail.enginePath}` : avail.engineWhy}; ` +
          `node worker: ${avail.worker ? 'loaded' : avail.workerWhy}`,
      );
    }

    // W3 interleaves graphile-worker's samples with pgflare's when both run (w3-paired.ts).
    const paired = contenders.has('graphile') && contenders.has('pgflare');
    type Step = [string, string, () => Promise<Measurement | Measurement[]>];
    const w3: Step[] = paired
      ? [['W3', 'graphile', () => pairedWakeup(ctx, avail)]]
      : [
          ['W3', 'graphile', () => graphileWakeup(ctx)],
          ['W3', 'pgflare', () => engineWakeup(ctx, avail)],
        ];
    const plan: Step[] = [
      ['W1', 'floor', () => floorChain(ctx)],
      ['W1', 'graphile', () => graphileChain(ctx)],
      ['W1', 'pgflare', () => engineChain(ctx, avail)],
      ['W2', 'floor', () => floorThroughput(ctx)],
      ['W2', 'graphile', () => graphileDrain(ctx)],
      ['W2', 'pgflare', () => engineDrain(ctx, avail)],
      ['W2', 'pgflare', () => engineFanOut(ctx, avail)],
      // Ten times the JOIN above, at most 9 999 branches (a graph has at most 10 000 nodes, as in
      // pg_durable; the JOIN is one), and a fan-out over the rows of a query.
      ['W2', 'pgflare', () => engineFanOut(ctx, avail, { fanOut: Math.min(sizes(args.quick).fanOut * 10, 9999) })],
      ['W2', 'pgflare', () => engineFanOutRows(ctx, avail)],
      ['W2', 'floor', () => floorSustained(ctx)],
      ['W2', 'graphile', () => graphileSustained(ctx)],
      ['W2', 'pgflare', () => engineSustained(ctx, avail)],
      ['W3', 'floor', () => floorWakeup(ctx)],
      ...w3,
    ];
    for (const [w, who, fn] of plan) {
      if (!only.has(w) || !contenders.has(who)) continue;
      log(`${w} ${who} …`);
      try {
        const m = await fn();
        measurements[w].push(...(Array.isArray(m) ? m : [m]));
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        log(`${w} ${who} FAILED: ${msg}`);
        measurements[w].push({
          contender: who as Measurement['contender'],
          metric: 'failed',
          value: null,
          unit: '',
          better: 'lower',
          note: `failed: ${msg}`,
        });
      }
    }
    if (only.has('H') && contenders.has('pgflare')) {
      try {
        measurements.H = await runHistory(ctx, avail, OWNER, args);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        log(`H FAILED: ${msg}`);
        measurements.H.push({ contender: 'pgflare', metric: 'failed', value: null, unit: '', better: 'lower', note: `failed: ${msg}` });
      }
    }
  } finally {
    await cleanUp();
  }

  const targets = evaluateTargets(measurements);
  console.log(report(measurements, targets, ctxBase));
  const out = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, postgres: pgVersion },
    settings: { ...SETTINGS, fsync: 'on (default)', autovacuum: 'default' },
    options: { quick: args.quick, durationW2: ctxBase.durationW2, windowSeconds: ctxBase.windowSeconds, only: [...only], contenders: [...contenders], history: args.history ?? null },
    sizes: sizes(args.quick),
    measurements,
    targets,
  };
  mkdirSync(join(args.out, '..'), { recursive: true });
  writeFileSync(args.out, JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${args.out}`);
}

interface Target {
  workload: string;
  target: string;
  status: 'met' | 'not met' | 'n/a';
  detail: string;
}

const find = (ms: Measurement[], who: Measurement['contender'], metricPrefix = '') =>
  ms.find((m) => m.contender === who && m.metric.startsWith(metricPrefix) && m.metric !== 'failed');

function evaluateTargets(ms: Record<string, Measurement[]>): Target[] {
  const t: Target[] = [];
  const check = (workload: string, target: string, a: number | null | undefined, b: number | null | undefined, ok: (a: number, b: number) => boolean, fmt: (a: number, b: number) => string) => {
    if (a == null || b == null) t.push({ workload, target, status: 'n/a', detail: 'a number is missing' });
    else t.push({ workload, target, status: ok(a, b) ? 'met' : 'not met', detail: fmt(a, b) });
  };
  if (ms.W1.length) {
    const floor = find(ms.W1, 'floor')?.value;
    const gw = find(ms.W1, 'graphile')?.value;
    const pf = find(ms.W1, 'pgflare')?.value;
    check('W1', 'pgflare ms/step ≤ 1.5 × floor (1 client)', pf, floor, (a, b) => a <= 1.5 * b, (a, b) => `${a} vs ${round(1.5 * b)} (= 1.5 × ${b}); ratio ${round(a / b, 2)}×`);
    check('W1', 'pgflare ms/step < graphile chain', pf, gw, (a, b) => a < b, (a, b) => `${a} vs ${b}; ratio ${round(a / b, 2)}×`);
  }
  if (ms.W2.length) {
    const gw = find(ms.W2, 'graphile', `${sizes(args.quick).drainItems} jobs`)?.value;
    const pf = find(ms.W2, 'pgflare', `${sizes(args.quick).drainItems} one-step`)?.value;
    check('W2', 'pgflare drain steps/s ≥ graphile drain jobs/s', pf, gw, (a, b) => a >= b, (a, b) => `${a} vs ${b}; ratio ${round(a / b, 2)}×`);
    // Issue 20 item 4: the drain (batches on: the worker's default batch size) at twice graphile-worker's.
    check('W2', 'pgflare drain (batched) ≥ 2 × graphile drain', pf, gw, (a, b) => a >= 2 * b, (a, b) => `${a} vs ${round(2 * b)} (= 2 × ${b}); ratio ${round(a / b, 2)}×`);
    // Issue 20 item 3: sustained median ≥ graphile-worker's, and no more decay than the floor's.
    const sus = (who: Measurement['contender']) => ms.W2.find((m) => m.contender === who && m.metric.includes('median window') && m.value != null);
    check('W2', 'pgflare sustained median ≥ graphile sustained median', sus('pgflare')?.value, sus('graphile')?.value, (a, b) => a >= b, (a, b) => `${a} vs ${b}; ratio ${round(a / b, 2)}×`);
    const lateEarly = (who: Measurement['contender']) => sus(who)?.detail?.lateOverEarly as number | null | undefined;
    check('W2', 'pgflare sustained late/early ≥ the floor\'s', lateEarly('pgflare'), lateEarly('floor'), (a, b) => a >= b, (a, b) => `${a} vs ${b}`);
    // Fan-out (issue 20 item 2): each JOIN and the fan-out over rows at ≥ 0.8× the one-step drain of the same run.
    for (const m of ms.W2.filter((x) => x.contender === 'pgflare' && /JOIN|per row/.test(x.metric))) {
      check('W2', `${m.metric.replace(/, concurrency 8: steps\/s$/, '')} ≥ 0.8 × pgflare drain`, m.value, pf, (a, b) => a >= 0.8 * b, (a, b) => `${a} vs ${b}; ratio ${round(a / b, 2)}×`);
    }
    const sustained = ms.W2.find((m) => m.contender === 'pgflare' && m.metric.includes('median window'));
    // Flat = no decay (late/early ≥ 0.9) and no dip or slow start (every window ≥ half the median).
    const flatTarget = 'pgflare sustained rate stays flat (late/early windows ≥ 0.9, every window ≥ ½ median)';
    if (sustained?.value == null) {
      t.push({ workload: 'W2', target: flatTarget, status: 'n/a', detail: 'a number is missing' });
    } else {
      const late = sustained.detail?.lateOverEarly as number | null;
      const windows = (sustained.detail?.windows as Window[] | undefined) ?? [];
      const low = windows.filter((w) => w.rate < sustained.value! / 2);
      const problems: string[] = [];
      if (late === null) problems.push('the first third of the windows completed nothing');
      else if (late < 0.9) problems.push(`late/early = ${late}`);
      if (low.length) problems.push(`windows below ½ median (${sustained.value! / 2}): ${low.map((w) => `${w.t}s:${Math.round(w.rate)}`).join(' ')}`);
      t.push({
        workload: 'W2',
        target: flatTarget,
        status: problems.length ? 'not met' : 'met',
        detail: problems.length ? problems.join('; ') : `late/early = ${late}, lowest window ${Math.min(...windows.map((w) => w.rate))}`,
      });
    }
  }
  for (const h of historyTargets(ms.H)) t.push({ workload: 'H', ...h });
  if (ms.W3.length) {
    const gw = find(ms.W3, 'graphile')?.value;
    const pf = find(ms.W3, 'pgflare')?.value;
    check('W3', 'pgflare p50 ≤ graphile p50', pf, gw, (a, b) => a <= b, (a, b) => `${a} ms vs ${b} ms; ratio ${round(a / b, 2)}×`);
  }
  return t;
}


const TITLES: Record<string, string> = {
  W1: 'W1 — one chain of sequential SELECT 1 steps (ms per step, lower is better)',
  W2: 'W2 — throughput at concurrency 8 (steps/s, higher is better)',
  W3: 'W3 — start committed → step begins on an idle worker (ms, lower is better)',
  H: HISTORY_TITLE,
};

/** Which floor row a contender's row is compared with. */
function floorFor(ms: Measurement[], m: Measurement): Measurement | undefined {
  if (m.metric.includes('median window')) return ms.find((x) => x.contender === 'floor' && x.metric.includes('median window'));
  return ms.find((x) => x.contender === 'floor' && !x.metric.includes('median window') && x.value != null);
}
function graphileFor(ms: Measurement[], m: Measurement): Measurement | undefined {
  if (m.metric.includes('JOIN') || m.metric.includes('per row')) return undefined;
  if (m.metric.includes('median window')) return ms.find((x) => x.contender === 'graphile' && x.metric.includes('median window'));
  return ms.find((x) => x.contender === 'graphile' && !x.metric.includes('median window') && x.value != null);
}

function report(ms: Record<string, Measurement[]>, targets: Target[], opts: { quick: boolean; durationW2: number }): string {
  const out: string[] = [''];
  out.push(
    `pgflare bench — ${opts.quick ? 'QUICK (smoke sizes)' : 'full'}; synchronous_commit=${syncCommit}, fsync on, default autovacuum; ` +
      `${cpus().length} cores shared with other work: numbers are noisy, repeats are medians.`,
  );
  for (const w of ['W1', 'W2', 'W3', 'H']) {
    const list = ms[w];
    if (!list.length) continue;
    out.push('', TITLES[w]);
    const rows = [['contender', 'measure', 'value', '× floor', '× graphile', 'notes']];
    for (const m of list) {
      const f = floorFor(list, m);
      const g = graphileFor(list, m);
      const ratio = (ref?: Measurement) =>
        m.value != null && ref?.value != null && ref !== m && m.contender !== ref.contender ? `${round(m.value / ref.value, 2)}×` : '';
      const notes: string[] = [];
      if (m.note) notes.push(m.note.split('\n')[0]);
      if (m.unit === 'ms' && m.detail) notes.push(`p99 ${m.detail.p99} ms`);
      if (m.detail?.lateOverEarly !== undefined) {
        notes.push(`windows ${m.detail.firstRate}→${m.detail.lastRate}, late/early ${m.detail.lateOverEarly}`);
      }
      if (Array.isArray(m.detail?.repeats)) notes.push(`repeats ${(m.detail.repeats as number[]).join(', ')}`);
      const drain = list.find((x) => x.contender === 'pgflare' && x.metric.includes('one-step instances started at once'));
      if (/JOIN|per row/.test(m.metric) && m.value != null && drain?.value) notes.push(`${round(m.value / drain.value, 2)}× pgflare drain (target ≥ 0.8×)`);
      rows.push([
        m.contender,
        m.metric,
        m.value == null ? 'n/a' : `${m.value} ${m.unit}`,
        m.contender === 'floor' ? '1' : ratio(f),
        m.contender === 'pgflare' ? ratio(g) : '',
        notes.join('; '),
      ]);
    }
    out.push(table(rows));
    for (const m of list) {
      const windows = m.detail?.windows as Window[] | undefined;
      if (m.metric.includes('median window') && windows?.length) out.push(`  ${m.contender} rate per ${ctxWindow()} s window: ${formatWindows(windows)}`);
      const claimMs = m.detail?.claimMsPerWindow as number[] | undefined;
      if (claimMs?.length) {
        const before = m.detail?.claimBefore as { buffers: number; ms: number } | undefined;
        const after = (m.detail?.tableState as { claim?: { buffers: number; ms: number } } | undefined)?.claim;
        out.push(
          `  floor mean claim-statement ms per window: ${claimMs.join(' ')}; one idle claim before/after the run: ` +
            `${before?.buffers}→${after?.buffers} buffers, ${before?.ms}→${after?.ms} ms`,
        );
      }
    }
    const tw = targets.filter((t) => t.workload === w);
    if (tw.length) {
      out.push('  targets:');
      for (const t of tw) out.push(`    [${t.status === 'met' ? 'met' : t.status === 'n/a' ? 'n/a' : 'NOT MET'}] ${t.target} — ${t.detail}`);
    }
  }
  return out.join('\n');
}

function ctxWindow() {
  return Number(args.window);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
