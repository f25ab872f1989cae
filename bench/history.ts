/**
 * `npm run bench -- --history N` (issue 20, item 1): pgflare with N finished instances of history.
 *
 * A second database of the same server gets the history (bench/history-load.ts); the bench's own
 * database stays empty. Both are migrated alike, and each measurement takes turns between them
 * (empty, history, history, empty, …) so a change in the shared machine's load hits both. Measured:
 *   - W1 (a chain of sequential steps on a Node worker at concurrency 1, ms/step) and the W2 drain
 *     (one-step instances drained at concurrency 8, steps/s), history ÷ empty;
 *   - p50 of df.list_instances (first page, by status, by label, second page), df.status and the REST
 *     list (GET /v1/instances through the Hono app of src/api, in process), on the history database;
 *   - the step latency (engine.runOnce at concurrency 1, one-step instances) while the retention prune
 *     (pruneHistoryBatches, the Node worker's batches) deletes the older half of the history, against
 *     the same steps with no prune running, in alternating segments.
 * The bench's own instances are created after the history's newest, and only those are cleared.
 */
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { createApp } from '../src/api/app.ts';
import { pruneHistoryBatches, type PruneRun } from '../src/engine/maintenance.ts';
import { DEFAULT_QUEUE_VACUUM_STEPS } from '../src/engine/queue-vacuum.ts';
import { DEFAULT_BATCH_SIZE } from '../src/engine/batch.ts';
import { migrate } from '../src/migrate/runner.ts';
import { checkpoint, connect, median, nowMs, percentile, round, sizes, sleep, waitFor, type BenchContext, type Measurement } from './common.ts';
import { chainExpression, engineLogger, stallGuard, type EngineAvailability } from './engine.ts';
import { loadHistory, type HistoryLoad } from './history-load.ts';
import { backendCpu, nodeCpu, postmasterOf, serverCpu } from './cpu.ts';

export interface HistoryOptions {
  /** Finished instances to load. */
  rows: number;
  /** Days the history is spread over; the prune keeps the newest `retentionDays` of them. */
  days: number;
  retentionDays: number;
  /** Alternating rounds of the W1/W2 comparison (each round runs both databases). */
  rounds: number;
  /** Length of each idle and each pruning segment of the prune phase (four segments). */
  segmentSeconds: number;
  /** Instances per prune transaction (the Node worker's batch). */
  pruneBatch: number;
}

type Side = 'empty' | 'history';
interface Target {
  db: BenchContext;
  side: Side;
  /** Bench instances are newer than this; history is older. */
  since: Date;
}

const HISTORY_DB = 'pgflare_bench_history';
const METRIC = {
  w1: (side: Side, n: number) => `W1 chain of ${n}, ${side}: ms/step`,
  w2: (side: Side, n: number) => `W2 drain of ${n}, ${side}: steps/s`,
};

const swapDatabase = (url: string) => {
  const u = new URL(url);
  u.pathname = `/${HISTORY_DB}`;
  return u.toString();
};

/**
 * The history database beside the bench's, as the same owner: kept from an earlier run (a kept
 * --data-dir) when that run loaded the same number of instances over the same days, else created,
 * migrated and loaded. A kept one is migrated too (new migrations apply on top of the history).
 */
async function historyDatabase(ctx: BenchContext, owner: string, rows: number, days: number): Promise<{ hist: BenchContext; load: HistoryLoad }> {
  const hist = { ...ctx, ownerUrl: swapDatabase(ctx.ownerUrl), superUrl: swapDatabase(ctx.superUrl) };
  const admin = await connect(ctx.superUrl);
  let kept: HistoryLoad | null = null;
  try {
    if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [HISTORY_DB])).rowCount) kept = await keptLoad(hist.superUrl, rows, days);
    if (!kept) {
      await admin.query(`DROP DATABASE IF EXISTS ${HISTORY_DB}`);
      await admin.query(`CREATE DATABASE ${HISTORY_DB} OWNER ${owner}`);
    }
  } finally {
    await admin.end();
  }
  const db = createPgDb({ connectionString: hist.ownerUrl, max: 1 });
  try {
    await migrate(db);
  } finally {
    await db.end();
  }
  const c = await connect(hist.ownerUrl);
  await c.query('CREATE TABLE IF NOT EXISTS bench_w2_ids (id text)');
  await c.end();
  if (kept) {
    ctx.log(`history: reusing the ${kept.instances} instances loaded on ${kept.before.toISOString()} (${round(kept.bytes / 2 ** 30, 2)} GiB then; each run's prune removed some of the oldest)`);
    return { hist, load: kept };
  }
  const load = await loadHistory(hist, rows, owner, days);
  const s = await connect(hist.superUrl);
  try {
    await s.query('CREATE TABLE bench_history_load (instances int, days int, load jsonb)');
    await s.query('INSERT INTO bench_history_load VALUES ($1, $2, $3)', [rows, days, JSON.stringify(load)]);
  } finally {
    await s.end();
  }
  return { hist, load };
}

/** The load recorded in a kept history database, if it was of `rows` instances over `days` days. */
async function keptLoad(url: string, rows: number, days: number): Promise<HistoryLoad | null> {
  const c = await connect(url);
  try {
    const r = await c.query<{ load: HistoryLoad & { before: string } }>(
      `SELECT load FROM bench_history_load WHERE instances = $1 AND days = $2`,
      [rows, days],
    ).catch(() => ({ rows: [] }));
    const load = r.rows[0]?.load;
    return load ? { ...load, before: new Date(load.before) } : null;
  } finally {
    await c.end();
  }
}

/** Deletes the bench's own instances (newer than the history), then vacuums and checkpoints. */
async function clearOwn(t: Target): Promise<void> {
  const c = await connect(t.db.ownerUrl);
  try {
    await c.query('DELETE FROM df.instances WHERE created_at > $1', [t.since]);
    await c.query('TRUNCATE bench_w2_ids');
    await c.query('VACUUM df.instances, df.nodes, df.scopes, df.events').catch(() => undefined);
  } finally {
    await c.end();
  }
  await checkpoint(t.db);
}

/** Wall ms per step, and CPU ms per step of the server and of this process. */
interface Sample {
  value: number;
  serverCpu: number;
  nodeCpu: number;
}

/** Runs `fn`, returning CPU milliseconds per item of the server (all its processes) and of this process. */
async function cpuOf(c: import('pg').Client, items: number, fn: () => Promise<void>): Promise<{ serverCpu: number; nodeCpu: number }> {
  const pm = await postmasterOf(c);
  const [s0, n0] = [serverCpu(pm), nodeCpu()];
  await fn();
  return { serverCpu: ((serverCpu(pm) - s0) * 1000) / items, nodeCpu: ((nodeCpu() - n0) * 1000) / items };
}

async function chain(t: Target, avail: EngineAvailability, n: number): Promise<Sample> {
  await clearOwn(t);
  const c = await connect(t.db.ownerUrl);
  // The retention timer off: the prune is measured on its own, below.
  const worker = await avail.worker!.startNodeWorker({ connectionString: t.db.ownerUrl, concurrency: 1, log: engineLogger(t.db), pruneIntervalMs: 0 } as never);
  try {
    await sleep(300);
    const graph = (await c.query<{ g: string }>(`SELECT ${chainExpression(n)} AS g`)).rows[0].g;
    const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
    const t0 = nowMs();
    let wall = 0;
    const cpu = await cpuOf(c, n, async () => {
      await waitFor(
        async () => {
          const s = (await c.query<{ s: string }>('SELECT df.status($1) AS s', [id])).rows[0].s;
          if (s === 'failed' || s === 'cancelled') throw new Error(`history W1 instance ${id} ${s}`);
          return s === 'completed';
        },
        600_000,
        10,
        'history W1 chain',
      );
      wall = nowMs() - t0;
    });
    return { value: wall / n, ...cpu };
  } finally {
    await worker.stop();
    await c.end();
  }
}

async function startOneStep(url: string, n: number): Promise<void> {
  const c = await connect(url);
  try {
    for (let done = 0; done < n; done += 5000) {
      await c.query(`INSERT INTO bench_w2_ids (id) SELECT df.start('SELECT 1') FROM generate_series(1, $1)`, [Math.min(5000, n - done)]);
    }
  } finally {
    await c.end();
  }
}

async function drain(t: Target, avail: EngineAvailability, n: number): Promise<Sample> {
  await clearOwn(t);
  await startOneStep(t.db.ownerUrl, n);
  await checkpoint(t.db);
  const db = createPgDb({ connectionString: t.db.ownerUrl, max: 10, applicationName: 'pgflare-bench-engine' });
  const watcher = await connect(t.db.ownerUrl);
  const open = async () => (await watcher.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status IN ('pending', 'running')`)).rows[0].n;
  try {
    const engine = avail.engine!.createEngine({ db, workerId: 'bench', log: engineLogger(t.db), queueVacuumSteps: DEFAULT_QUEUE_VACUUM_STEPS, batchSize: DEFAULT_BATCH_SIZE });
    const progress = stallGuard(t.db, `history W2 drain (${t.side})`);
    const t0 = nowMs();
    let steps = 0;
    let wall = 0;
    const cpu = await cpuOf(watcher, n, async () => {
      while ((await open()) > 0) {
        const k = await engine.drain({ concurrency: 8, maxSteps: 2000 });
        steps += k;
        progress(steps);
        if (k === 0) await sleep(20);
      }
      wall = nowMs() - t0;
    });
    return { value: n / (wall / 1000), ...cpu };
  } finally {
    await watcher.end();
    await db.end();
  }
}

/** p50/p99 wall ms of `samples` calls of `fn`, after 3 unmeasured ones, and CPU ms per call from `cpu()` (seconds). */
async function latency(samples: number, cpu: () => number, fn: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number; cpuMs: number }> {
  const xs: number[] = [];
  for (let i = -3; i < 0; i++) await fn(i);
  const c0 = cpu();
  for (let i = 0; i < samples; i++) {
    const t0 = nowMs();
    await fn(i);
    xs.push(nowMs() - t0);
  }
  return { p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), cpuMs: round(((cpu() - c0) * 1000) / samples) };
}

const READS: [string, string, 'cursor' | null][] = [
  ['df.list_instances() (100 newest)', 'SELECT * FROM df.list_instances()', null],
  [`df.list_instances('completed', 100)`, `SELECT * FROM df.list_instances('completed', 100)`, null],
  [`df.list_instances('running', 100)`, `SELECT * FROM df.list_instances('running', 100)`, null],
  [`df.list_instances(label => 'nightly')`, `SELECT * FROM df.list_instances(label => 'nightly')`, null],
  [`df.list_instances('failed', 100, 'hook:github')`, `SELECT * FROM df.list_instances('failed', 100, 'hook:github', NULL)`, null],
  ['df.list_instances page 2 (after_cursor)', 'SELECT * FROM df.list_instances(NULL, 100, NULL, $1)', 'cursor'],
];

/**
 * The read paths, each `samples` times on one session: wall p50/p99 and the CPU per call of that
 * session's backend (for the REST list: of the whole server plus this process, which runs the app).
 */
async function reads(t: Target, owner: string, samples: number): Promise<Measurement[]> {
  const c = await connect(t.db.ownerUrl);
  const out: Measurement[] = [];
  const row = (name: string, r: { p50: number; p99: number; cpuMs: number }, cpuWhat: string): Measurement => ({
    contender: 'pgflare', metric: `${name}, ${t.side}: p50 ms`, value: r.p50, unit: 'ms', better: 'lower',
    detail: { p99: r.p99, cpuMsPerCall: r.cpuMs, side: t.side }, note: `${cpuWhat} CPU ${r.cpuMs} ms/call`,
  });
  try {
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const backend = () => backendCpu(pid);
    // Instances of either kind (the empty side has only the bench's own): any status lookup is one row.
    const ids = (await c.query<{ id: string }>(`SELECT id FROM df.instances TABLESAMPLE SYSTEM (5) LIMIT $1`, [samples])).rows.map((r) => r.id);
    if (!ids.length) ids.push('00000000');
    const second = (await c.query<{ k: string }>(`SELECT next_cursor AS k FROM df.list_instances(NULL, 100, NULL, NULL) OFFSET 99`)).rows[0]?.k ?? null;
    for (const [name, sql, arg] of READS) {
      out.push(row(name, await latency(samples, backend, () => c.query(sql, arg ? [second] : [])), 'backend'));
    }
    out.push(row('df.status(id)', await latency(samples, backend, (i) => c.query('SELECT df.status($1)', [ids[Math.max(0, i) % ids.length]])), 'backend'));

    const pm = await postmasterOf(c);
    const db = createPgDb({ connectionString: t.db.ownerUrl, max: 2, applicationName: 'pgflare-bench-api' });
    try {
      const token = 'bench-history-static-token';
      const app = createApp({ db, staticTokens: [{ token, role: owner }] });
      const get = async (path: string) => {
        const res = await app.request(path, { headers: { authorization: `Bearer ${token}` } });
        if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
        await res.json();
      };
      const both = () => serverCpu(pm) + nodeCpu();
      out.push(row('GET /v1/instances (100 newest)', await latency(samples, both, () => get('/v1/instances')), 'server + Node'));
      out.push(row('GET /v1/instances?status=failed', await latency(samples, both, () => get('/v1/instances?status=failed')), 'server + Node'));
    } finally {
      await db.end();
    }
  } finally {
    await c.end();
  }
  return out;
}

/**
 * Step latency (engine.runOnce, concurrency 1, over a backlog of one-step instances) in four segments,
 * idle / pruning / idle / pruning. The prune runs pruneHistoryBatches in its own session and stops at
 * the end of its segment.
 */
async function stepsDuringPrune(t: Target, avail: EngineAvailability, o: HistoryOptions): Promise<Measurement[]> {
  await clearOwn(t);
  const perSegment = 40_000;
  await startOneStep(t.db.ownerUrl, perSegment);
  await checkpoint(t.db);
  const db = createPgDb({ connectionString: t.db.ownerUrl, max: 2, applicationName: 'pgflare-bench-engine' });
  const pruner = await connect(t.db.ownerUrl, 'pgflare-bench-prune');
  const idle: number[] = [];
  const pruning: number[] = [];
  const runs: PruneRun[] = [];
  let pruneMs = 0;
  try {
    const engine = avail.engine!.createEngine({ db, workerId: 'bench', log: engineLogger(t.db), queueVacuumSteps: DEFAULT_QUEUE_VACUUM_STEPS, batchSize: 1 });
    for (const segment of ['idle', 'prune', 'idle', 'prune'] as const) {
      const end = nowMs() + o.segmentSeconds * 1000;
      let stop = false;
      const p0 = nowMs();
      const prune = segment === 'prune'
        ? pruneHistoryBatches(pruner as never, { retentionDays: o.retentionDays, keep: 10_000, batch: o.pruneBatch, stop: () => stop }).then((r) => {
            runs.push(r);
            pruneMs += nowMs() - p0;
          })
        : Promise.resolve();
      const into = segment === 'idle' ? idle : pruning;
      while (nowMs() < end) {
        const t0 = nowMs();
        const r = await engine.runOnce();
        if (r === null) break;
        into.push(nowMs() - t0);
      }
      stop = true;
      await prune;
    }
  } finally {
    await pruner.end();
    await db.end();
  }
  const deleted = runs.reduce((a, r) => a + r.deleted, 0);
  const batches = runs.reduce((a, r) => a + r.batches, 0);
  const p = (xs: number[], q: number) => round(percentile(xs, q));
  const note = `${deleted} instances pruned in ${batches} batches of ≤ ${o.pruneBatch}, ${round(deleted / (pruneMs / 1000), 0)} instances/s while pruning`;
  t.db.log(`history prune: idle p50 ${p(idle, 50)} p99 ${p(idle, 99)} ms (${idle.length} steps); pruning p50 ${p(pruning, 50)} p99 ${p(pruning, 99)} ms (${pruning.length} steps); ${note}`);
  return [
    { contender: 'pgflare', metric: 'step (runOnce) latency, idle: p99 ms', value: p(idle, 99), unit: 'ms', better: 'lower', detail: { p99: p(idle, 99), p50: p(idle, 50), steps: idle.length } },
    {
      contender: 'pgflare', metric: 'step (runOnce) latency, during the prune: p99 ms', value: p(pruning, 99), unit: 'ms', better: 'lower',
      detail: { p99: p(pruning, 99), p50: p(pruning, 50), steps: pruning.length, deleted, batches, ratio: round(p(pruning, 99) / p(idle, 99), 2) }, note,
    },
  ];
}

export async function historyBench(ctx: BenchContext, avail: EngineAvailability, owner: string, o: HistoryOptions): Promise<Measurement[]> {
  if (!avail.engine || !avail.worker) throw new Error(`history: the engine and the Node worker are needed (${avail.engineWhy ?? avail.workerWhy})`);
  const { hist, load } = await historyDatabase(ctx, owner, o.rows, o.days);
  const since = load.before;
  const sides: Target[] = [{ db: ctx, side: 'empty', since }, { db: hist, side: 'history', since }];
  const { chain: n1, drainItems: n2 } = sizes(ctx.quick);
  const w1: Record<Side, Sample[]> = { empty: [], history: [] };
  const w2: Record<Side, Sample[]> = { empty: [], history: [] };
  for (let r = 0; r < o.rounds; r++) {
    // ABBA: each side goes first in every other round.
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const t of order) w1[t.side].push(await chain(t, avail, n1));
    for (const t of order) w2[t.side].push(await drain(t, avail, n2));
    const last = (xs: Sample[]) => `${round(xs.at(-1)!.value, 1)} (CPU ${round(xs.at(-1)!.serverCpu, 2)} + ${round(xs.at(-1)!.nodeCpu, 2)} ms/step)`;
    ctx.log(`history round ${r + 1}: W1 ms/step empty ${last(w1.empty)} history ${last(w1.history)}; W2 steps/s empty ${last(w2.empty)} history ${last(w2.history)}`);
  }
  const out: Measurement[] = [];
  const summary = (xs: Sample[], digits: number) => ({
    value: round(median(xs.map((x) => x.value)), digits),
    serverCpu: round(median(xs.map((x) => x.serverCpu)), 3),
    nodeCpu: round(median(xs.map((x) => x.nodeCpu)), 3),
  });
  for (const [w, xs, metric, unit, better, digits] of [
    ['W1', w1, METRIC.w1, 'ms/step', 'lower', 3],
    ['W2', w2, METRIC.w2, 'steps/s', 'higher', 1],
  ] as const) {
    const e = summary(xs.empty, digits);
    const h = summary(xs.history, digits);
    for (const [side, m] of [['empty', e], ['history', h]] as const) {
      const speed = better === 'higher' ? h.value / e.value : e.value / h.value;
      const cpu = (e.serverCpu + e.nodeCpu) / (h.serverCpu + h.nodeCpu);
      out.push({
        contender: 'pgflare', metric: metric(side, w === 'W1' ? n1 : n2), value: m.value, unit, better,
        detail: { repeats: xs[side].map((x) => round(x.value, digits)), serverCpuMsPerStep: m.serverCpu, nodeCpuMsPerStep: m.nodeCpu, speedRatio: round(speed, 2), cpuRatio: round(cpu, 2) },
        note: `CPU/step server ${m.serverCpu} + Node ${m.nodeCpu} ms` +
          (side === 'history' ? `; history vs empty: speed ${round(speed, 2)}×, CPU/step empty ÷ history ${round(cpu, 2)}× (target ≥ 0.95)` : ''),
      });
    }
  }
  for (const t of sides) {
    await clearOwn(t);
    out.push(...(await reads(t, owner, ctx.quick ? 50 : 200)));
  }
  out.push(...(await stepsDuringPrune(sides[1], avail, o)));
  out[0].detail = { ...out[0].detail, load };
  return out;
}

export interface HistoryTarget {
  target: string;
  status: 'met' | 'not met' | 'n/a';
  detail: string;
}

/** The issue's targets for the rows historyBench returns. */
export function historyTargets(ms: Measurement[]): HistoryTarget[] {
  const t: HistoryTarget[] = [];
  const check = (target: string, ok: boolean, detail: string) => t.push({ target, status: ok ? 'met' : 'not met', detail });
  for (const w of ['W1', 'W2']) {
    const e = ms.find((m) => m.metric.startsWith(w) && m.metric.includes(', empty'));
    const h = ms.find((m) => m.metric.startsWith(w) && m.metric.includes(', history'));
    const speed = h?.detail?.speedRatio as number | undefined;
    if (e?.value == null || h?.value == null || speed === undefined) continue;
    check(`${w} with history ≥ 0.95× empty`, speed >= 0.95, `${h.value} vs ${e.value} ${h.unit}: ${speed}×; CPU per step empty ÷ history ${h.detail?.cpuRatio as number}×`);
  }
  const reads = ms.filter((m) => m.unit === 'ms' && m.metric.includes(', history: p50'));
  const slow = reads.filter((m) => m.value == null || m.value >= 5);
  const cpu = (m: Measurement) => m.detail?.cpuMsPerCall as number;
  if (reads.length) {
    check(
      'df.list_instances, df.status, GET /v1/instances p50 < 5 ms with history',
      slow.length === 0,
      (slow.length ? `over: ${slow.map((m) => `${m.metric.split(', history')[0]} ${m.value} ms`).join('; ')}` : `highest p50 ${Math.max(...reads.map((m) => m.value!))} ms`) +
        `; highest CPU per call ${Math.max(...reads.map(cpu))} ms`,
    );
  }
  const idle = ms.find((m) => m.metric.startsWith('step (runOnce) latency, idle'))?.value;
  const pruning = ms.find((m) => m.metric.startsWith('step (runOnce) latency, during'))?.value;
  if (idle != null && pruning != null) check('step p99 during the prune ≤ 2× idle', pruning <= 2 * idle, `${pruning} vs ${idle} ms; ${round(pruning / idle, 2)}×`);
  return t;
}
