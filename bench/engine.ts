/**
 * The pgflare side. The engine and the Node worker are imported lazily, so the harness runs (and
 * prints "engine: not available") before they exist. Written against:
 *
 *   src/engine/index.ts          createEngine({ db, log?, workerId? }) → { runOnce(now?), drain({ concurrency?, until? }) }
 *   src/runtime/node/worker.ts   startNodeWorker({ connectionString, concurrency }) → { stop() }
 *
 *   W1  SELECT df.start(<chain of N 'SELECT 1' steps built with ~>>), Node worker at concurrency 1,
 *       time from the start's commit until df.status = 'completed' (ms per step)
 *   W2  N df.start('SELECT 1') instances started at once (INSERT … SELECT df.start(…) in batches of
 *       5,000), then engine.drain({ concurrency: 8 }) (steps/s); a sustained run with top-ups (rate per
 *       window); one instance whose JOIN fans out to N branches
 *   W3  start committed → the step's SQL begins, Node worker idle at concurrency 1
 */
import { createPgDb } from '../src/runtime/node/pg-db.ts';
// W2 drives the engine directly (drain), not the Node worker, with the worker's default queue vacuum
// (PGFLARE_QUEUE_VACUUM_STEPS) and batch size (PGFLARE_BATCH_SIZE), so the rate is the one `pgflare worker`
// would see.
import { DEFAULT_QUEUE_VACUUM_STEPS } from '../src/engine/queue-vacuum.ts';
import { DEFAULT_BATCH_SIZE } from '../src/engine/batch.ts';
import type { Db } from '../src/engine/db.ts';
import {
  checkpoint,
  connect,
  idleGapMs,
  median,
  nowMs,
  round,
  sizes,
  sleep,
  summariseWindows,
  waitFor,
  WindowSampler,
  type BenchContext,
  type Measurement,
  type Window,
} from './common.ts';
import { w3Latencies, W3_QUIET_MS } from './w3.ts';

interface Engine {
  /** Not called by the bench. */
  runOnce(now?: unknown): Promise<unknown>;
  /** `until` (the interface the bench was written against) or `maxSteps` (what src/engine/engine.ts
   * has) bound a call; the bench passes both, so a sustained phase can stop while work remains. Its
   * return value is informational only: throughput is counted from df.instances. */
  drain(opts?: { concurrency?: number; until?: () => boolean; maxSteps?: number }): Promise<number>;
}
interface EngineModule {
  createEngine(opts: { db: Db; log?: BenchLogger; workerId?: string; queueVacuumSteps?: number; batchSize?: number }): Engine;
}
interface BenchLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The engine's warnings and errors go to the bench log (a failing step would otherwise look like a stall). */
export function engineLogger(ctx: BenchContext): BenchLogger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    ctx.log(`  engine ${level}: ${msg}${fields ? ' ' + JSON.stringify(fields, (_k, v) => (v instanceof Error ? v.message : v)) : ''}`);
  return { debug: process.env.BENCH_DEBUG ? at('debug') : () => {}, info() {}, warn: at('warn'), error: at('error') };
}
interface NodeWorker {
  stop(): Promise<void> | void;
}
interface WorkerModule {
  startNodeWorker(opts: { connectionString: string; concurrency: number; log?: BenchLogger }): NodeWorker | Promise<NodeWorker>;
}

export interface EngineAvailability {
  engine?: EngineModule;
  worker?: WorkerModule;
  /** Why a part is missing, for the printed table. */
  engineWhy?: string;
  workerWhy?: string;
}

// Paths held in variables so the type checker does not resolve modules that do not exist yet. The
// environment can point them elsewhere (absolute paths), e.g. to bench an experimental engine.
const ENGINE_PATH = process.env.PGFLARE_BENCH_ENGINE_MODULE ?? '../src/engine/index.ts';
const WORKER_PATH = process.env.PGFLARE_BENCH_WORKER_MODULE ?? '../src/runtime/node/worker.ts';
const ENGINE_FALLBACK_PATH = '../src/engine/engine.ts';

async function tryImport<T>(path: string, exportName: string): Promise<{ mod?: T; why?: string }> {
  try {
    const mod = (await import(path)) as Record<string, unknown>;
    if (typeof mod[exportName] !== 'function') return { why: `${path} has no ${exportName}()` };
    return { mod: mod as T };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(path.replace(/^\.\.\//, ''))) {
      return { why: 'not available (module does not exist yet)' };
    }
    return { why: `failed to load ${path}: ${e.message ?? String(err)}` };
  }
}

export async function loadEngine(): Promise<EngineAvailability & { enginePath?: string }> {
  let [e, w] = await Promise.all([
    tryImport<EngineModule>(ENGINE_PATH, 'createEngine'),
    tryImport<WorkerModule>(WORKER_PATH, 'startNodeWorker'),
  ]);
  let enginePath = ENGINE_PATH;
  if (!e.mod && !process.env.PGFLARE_BENCH_ENGINE_MODULE) {
    // Until src/engine/index.ts exists, the engine core module itself.
    const direct = await tryImport<EngineModule>(ENGINE_FALLBACK_PATH, 'createEngine');
    if (direct.mod) [e, enginePath] = [direct, ENGINE_FALLBACK_PATH];
  }
  return { engine: e.mod, worker: w.mod, engineWhy: e.why, workerWhy: w.why, enginePath };
}

/** Smaller (or larger) workloads than sizes(quick), e.g. for bench/workerd.ts. */
export type SizeOverrides = Partial<ReturnType<typeof sizes>>;

export function unavailable(metric: string, unit: string, better: 'lower' | 'higher', why: string): Measurement {
  return { contender: 'pgflare', metric, value: null, unit, better, note: `engine: ${why}` };
}

/** Sequential steps as a balanced tree of `~>` (sequence is associative; a left-deep chain of 1,000
 * would exceed df.start's nesting limit of 256). Built by the SQL DSL, once, outside the timing. */
export function chainExpression(n: number): string {
  const build = (k: number): string => (k === 1 ? `'SELECT 1'` : `(${build(k >> 1)} ~> ${build(k - (k >> 1))})`);
  return build(n);
}

export async function clearInstances(ctx: BenchContext): Promise<void> {
  const c = await connect(ctx.ownerUrl);
  try {
    // The owner sees its own rows through RLS; the bench owner started every instance.
    await c.query('DELETE FROM df.instances');
    await c.query('VACUUM ANALYZE df.instances, df.nodes').catch(() => undefined);
  } finally {
    await c.end();
  }
  await checkpoint(ctx);
}

async function startWorker(avail: EngineAvailability, ctx: BenchContext, concurrency: number): Promise<NodeWorker> {
  const w = await avail.worker!.startNodeWorker({ connectionString: ctx.ownerUrl, concurrency, log: engineLogger(ctx) });
  await sleep(300); // let it connect and LISTEN
  return w;
}

/** W1: one instance of N sequential SELECT 1 steps on an otherwise idle Node worker. */
export async function engineChain(ctx: BenchContext, avail: EngineAvailability, size: SizeOverrides = {}): Promise<Measurement> {
  const { chain, chainRepeats } = { ...sizes(ctx.quick), ...size };
  const metric = `one instance of ${chain} sequential steps: ms per step`;
  if (!avail.worker) return unavailable(metric, 'ms/step', 'lower', `worker ${avail.workerWhy}`);
  const c = await connect(ctx.ownerUrl);
  const perStep: number[] = [];
  try {
    const graph = (await c.query<{ g: string }>(`SELECT ${chainExpression(chain)} AS g`)).rows[0].g;
    for (let r = 0; r < chainRepeats; r++) {
      await clearInstances(ctx);
      const worker = await startWorker(avail, ctx, 1);
      try {
        const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
        const t0 = nowMs();
        const progress = stallGuard(ctx, `W1 instance ${id}`);
        let checkedAt = nowMs();
        await waitFor(
          async () => {
            const s = (await c.query<{ s: string }>('SELECT df.status($1) AS s', [id])).rows[0].s;
            if (s === 'failed' || s === 'cancelled') throw new Error(`W1 instance ${id} ${s}`);
            if (s !== 'completed' && nowMs() - checkedAt > 2000) {
              // Progress check every 2 s only: counting the instance's nodes is not free.
              checkedAt = nowMs();
              const q = `SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND status = 'completed'`;
              progress((await c.query<{ n: number }>(q, [id])).rows[0].n);
            }
            return s === 'completed';
          },
          3_600_000,
          10,
          'W1 instance completion',
        );
        perStep.push((nowMs() - t0) / chain);
      } finally {
        await worker.stop();
      }
    }
  } finally {
    await c.end();
  }
  const value = round(median(perStep));
  ctx.log(`pgflare W1: chain of ${chain}: ${value} ms/step (repeats ${perStep.map((x) => round(x)).join(', ')})`);
  return { contender: 'pgflare', metric, value, unit: 'ms/step', better: 'lower', detail: { repeats: perStep.map((x) => round(x)), concurrency: 1 } };
}

/**
 * Returns a progress callback that throws when the number it is fed has not grown for `stallSeconds`
 * (an engine that stops making progress fails the row instead of hanging the bench).
 */
export function stallGuard(ctx: BenchContext, what: string, stallSeconds = 30): (n: number) => void {
  let best = -Infinity;
  let at = nowMs();
  return (n) => {
    if (n > best) {
      best = n;
      at = nowMs();
    } else if (nowMs() - at > stallSeconds * 1000) {
      throw new Error(`${what}: no progress for ${stallSeconds} s`);
    }
  };
}

/** Starts `n` one-step instances in transactions of up to 5,000 df.start calls each. */
export async function startMany(url: string, n: number, query = 'SELECT 1'): Promise<void> {
  const c = await connect(url);
  try {
    for (let done = 0; done < n; done += 5000) {
      const k = Math.min(5000, n - done);
      await c.query('INSERT INTO bench_w2_ids (id) SELECT df.start($1) FROM generate_series(1, $2)', [query, k]);
    }
  } finally {
    await c.end();
  }
}

export async function countCompleted(c: Awaited<ReturnType<typeof connect>>): Promise<number> {
  return (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status = 'completed'`)).rows[0].n;
}
export async function countOpen(c: Awaited<ReturnType<typeof connect>>): Promise<number> {
  return (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status IN ('pending', 'running')`)).rows[0].n;
}

/** W2: N instances started at once, drained by engine.drain({ concurrency: 8 }). */
export async function engineDrain(ctx: BenchContext, avail: EngineAvailability, size: SizeOverrides = {}): Promise<Measurement> {
  const { drainItems } = { ...sizes(ctx.quick), ...size };
  const metric = `${drainItems} one-step instances started at once, concurrency 8: steps/s`;
  if (!avail.engine) return unavailable(metric, 'steps/s', 'higher', avail.engineWhy!);
  await clearInstances(ctx);
  await startMany(ctx.ownerUrl, drainItems);
  await checkpoint(ctx);
  const db = createPgDb({ connectionString: ctx.ownerUrl, max: 10, applicationName: 'pgflare-bench-engine' });
  const watcher = await connect(ctx.ownerUrl);
  const sampler = new WindowSampler(() => countCompleted(watcher), ctx.windowSeconds);
  try {
    const engine = avail.engine.createEngine({ db, workerId: 'bench', log: engineLogger(ctx), queueVacuumSteps: DEFAULT_QUEUE_VACUUM_STEPS, batchSize: DEFAULT_BATCH_SIZE });
    await sampler.start();
    const t0 = nowMs();
    let steps = 0;
    // Progress = node runs reported by drain (activations count too: an instance can sit in 'running'
    // for a long time while the engine activates the rest of the backlog first).
    const progress = stallGuard(ctx, 'W2 drain');
    while ((await countOpen(watcher)) > 0) {
      const n = await engine.drain({ concurrency: 8, maxSteps: 2000 });
      steps += n;
      progress(steps);
      if (n === 0) await sleep(20);
    }
    const seconds = (nowMs() - t0) / 1000;
    const windows = await sampler.stop();
    const value = round(drainItems / seconds, 1);
    ctx.log(`pgflare W2: ${drainItems} instances (${steps} steps reported by drain) in ${round(seconds, 2)} s: ${value} steps/s`);
    return { contender: 'pgflare', metric, value, unit: 'steps/s', better: 'higher', detail: { seconds: round(seconds, 2), steps, windows } };
  } finally {
    await sampler.stop().catch(() => undefined);
    await watcher.end();
    await db.end();
  }
}

/** W2 over time: N instances queued, topped up to keep ≥ N/2 open, drained at concurrency 8. */
export async function engineSustained(ctx: BenchContext, avail: EngineAvailability): Promise<Measurement> {
  const { drainItems } = sizes(ctx.quick);
  const metric = `concurrency 8, ${ctx.durationW2} s, backlog ≥ ${drainItems} (topped up): median window steps/s`;
  if (!avail.engine) return unavailable(metric, 'steps/s', 'higher', avail.engineWhy!);
  await clearInstances(ctx);
  await startMany(ctx.ownerUrl, drainItems);
  await checkpoint(ctx);
  const db = createPgDb({ connectionString: ctx.ownerUrl, max: 10, applicationName: 'pgflare-bench-engine' });
  const watcher = await connect(ctx.ownerUrl);
  // Node runs reported by drain (activations included), for the log: shows work being done even in
  // windows where no instance completes. Attributed to the window in which a drain call returned.
  let runs = 0;
  const runSampler = new WindowSampler(() => runs, ctx.windowSeconds);
  const sampler = new WindowSampler(() => countCompleted(watcher), ctx.windowSeconds, (w) => {
    const r = runSampler.windows[sampler.windows.length - 1];
    ctx.log(`  pgflare sustained t=${w.t}s ${Math.round(w.rate)} steps/s${r ? ` (${Math.round(r.rate)} node runs/s)` : ''}`);
  });
  let timeUp = false;
  try {
    const engine = avail.engine.createEngine({ db, workerId: 'bench', log: engineLogger(ctx), queueVacuumSteps: DEFAULT_QUEUE_VACUUM_STEPS, batchSize: DEFAULT_BATCH_SIZE });
    await runSampler.start();
    await sampler.start();
    const t0 = nowMs();
    // Two top-up loops, back to back while the backlog is below the mark: one loop with a pause adds at
    // most ~1 600 instances/s here, less than the engine drains, and the windows then measured the
    // arrival rate once the initial backlog ran out, not the engine's.
    const topUpLoop = async () => {
      const c = await connect(ctx.ownerUrl);
      try {
        while (!timeUp) {
          if ((await countOpen(c)) < drainItems) await startMany(ctx.ownerUrl, 2000);
          else await sleep(50);
        }
      } finally {
        await c.end();
      }
    };
    const topUp = Promise.all([topUpLoop(), topUpLoop()]);
    // The windows end at the deadline: the drain call and the top-up in flight then still take a few
    // seconds to return, and a tail window over them measured the wind-down, not the rate.
    let sampled: Promise<[Window[], Window[]]> | undefined;
    const stopSampling = () => (sampled ??= Promise.all([sampler.stop(), runSampler.stop()]));
    const timer = setTimeout(() => {
      timeUp = true;
      void stopSampling();
    }, ctx.durationW2 * 1000);
    try {
      while (!timeUp) {
        const n = await engine.drain({ concurrency: 8, until: () => timeUp, maxSteps: 500 });
        runs += n;
        if (n === 0) await sleep(5);
      }
    } finally {
      clearTimeout(timer);
      timeUp = true;
      await topUp;
    }
    const [windows, runWindows] = await stopSampling();
    const summary = summariseWindows(windows);
    ctx.log(`pgflare sustained: ${round((nowMs() - t0) / 1000, 1)} s; windows ${summary.firstRate} → ${summary.lastRate} steps/s (last/first ${summary.lastOverFirst})`);
    return { contender: 'pgflare', metric, value: summary.medianRate, unit: 'steps/s', better: 'higher', detail: { ...summary, windows, nodeRunWindows: runWindows } };
  } finally {
    timeUp = true;
    await sampler.stop().catch(() => undefined);
    await runSampler.stop().catch(() => undefined);
    await watcher.end();
    await db.end();
    await clearInstances(ctx);
  }
}

/** W2 fan-out: one instance whose JOIN has N SQL branches, drained at concurrency 8. */
export async function engineFanOut(ctx: BenchContext, avail: EngineAvailability, size: SizeOverrides = {}): Promise<Measurement> {
  const { fanOut } = { ...sizes(ctx.quick), ...size };
  const metric = `one instance, JOIN of ${fanOut} branches, concurrency 8: steps/s`;
  if (!avail.engine) return unavailable(metric, 'steps/s', 'higher', avail.engineWhy!);
  await clearInstances(ctx);
  const leaf = { node_type: 'SQL', query: 'SELECT 1' };
  const graph = JSON.stringify({
    node_type: 'JOIN',
    left_node: leaf,
    right_node: leaf,
    extra_nodes: Array.from({ length: fanOut - 2 }, () => leaf),
  });
  const db = createPgDb({ connectionString: ctx.ownerUrl, max: 10, applicationName: 'pgflare-bench-engine' });
  const c = await connect(ctx.ownerUrl);
  try {
    const engine = avail.engine.createEngine({ db, workerId: 'bench', log: engineLogger(ctx), queueVacuumSteps: DEFAULT_QUEUE_VACUUM_STEPS, batchSize: DEFAULT_BATCH_SIZE });
    const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
    const t0 = nowMs();
    let status = 'pending';
    let ran = 0;
    const progress = stallGuard(ctx, `fan-out instance ${id}`);
    while (status !== 'completed') {
      const n = await engine.drain({ concurrency: 8, maxSteps: 500 });
      ran += n;
      progress(ran);
      status = (await c.query<{ s: string }>('SELECT df.status($1) AS s', [id])).rows[0].s;
      if (status === 'failed' || status === 'cancelled') throw new Error(`fan-out instance ${id} ${status}`);
      if (n === 0 && status !== 'completed') await sleep(5);
    }
    const seconds = (nowMs() - t0) / 1000;
    const value = round(fanOut / seconds, 1);
    ctx.log(`pgflare W2 fan-out: JOIN of ${fanOut} in ${round(seconds, 2)} s: ${value} steps/s`);
    return { contender: 'pgflare', metric, value, unit: 'steps/s', better: 'higher', detail: { seconds: round(seconds, 3) } };
  } finally {
    await c.end();
    await db.end();
  }
}

/**
 * W2 fan-out over rows: one instance whose step starts one child instance per row of a query (as the
 * maintenance example starts its VACUUM children), drained at concurrency 8 until every child completed.
 */
export async function engineFanOutRows(ctx: BenchContext, avail: EngineAvailability, size: SizeOverrides = {}): Promise<Measurement> {
  const { fanOut } = { ...sizes(ctx.quick), ...size };
  const metric = `one step starts a child per row of a query (${fanOut} rows), concurrency 8: steps/s`;
  if (!avail.engine) return unavailable(metric, 'steps/s', 'higher', avail.engineWhy!);
  await clearInstances(ctx);
  const db = createPgDb({ connectionString: ctx.ownerUrl, max: 10, applicationName: 'pgflare-bench-engine' });
  const c = await connect(ctx.ownerUrl);
  try {
    const engine = avail.engine.createEngine({ db, workerId: 'bench', log: engineLogger(ctx), queueVacuumSteps: DEFAULT_QUEUE_VACUUM_STEPS, batchSize: DEFAULT_BATCH_SIZE });
    const parent = `SELECT count(df.start('SELECT 1', 'fan-out-child')) AS children FROM generate_series(1, ${fanOut})`;
    const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [parent])).rows[0].id;
    const t0 = nowMs();
    let ran = 0;
    const progress = stallGuard(ctx, `fan-out over rows ${id}`);
    for (;;) {
      const n = await engine.drain({ concurrency: 8, maxSteps: 2000 });
      ran += n;
      progress(ran);
      if ((await countOpen(c)) === 0) break;
      if (n === 0) await sleep(5);
    }
    const seconds = (nowMs() - t0) / 1000;
    const children = (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE label = 'fan-out-child' AND status = 'completed'`)).rows[0].n;
    if (children !== fanOut) throw new Error(`fan-out over rows: ${children} of ${fanOut} children completed`);
    const value = round(fanOut / seconds, 1);
    ctx.log(`pgflare W2 fan-out over rows: ${fanOut} children in ${round(seconds, 2)} s: ${value} steps/s`);
    return { contender: 'pgflare', metric, value, unit: 'steps/s', better: 'higher', detail: { seconds: round(seconds, 3) } };
  } finally {
    await c.end();
    await db.end();
  }
}

/** W3: df.start committed → the step's SQL begins, on an idle Node worker. */
/**
 * pgflare's side of W3: a Node worker at concurrency 1, and `sample(i)`, which starts instance i (its
 * step records when it began) in a transaction and waits for the record. bench/run.ts runs the samples
 * alone (engineWakeup) or interleaved with graphile-worker's (w3-paired.ts).
 */
export async function engineW3(avail: EngineAvailability, ctx: BenchContext): Promise<{ sample(i: number): Promise<void>; stop(): Promise<void> }> {
  await clearInstances(ctx);
  const worker = await startWorker(avail, ctx, 1);
  const starter = await connect(ctx.ownerUrl);
  await sleep(200);
  return {
    async sample(i: number) {
      await starter.query('BEGIN');
      await starter.query(`INSERT INTO bench_w3_start (contender, sample) VALUES ('pgflare', $1)`, [i]);
      await starter.query('SELECT df.start($1)', [
        `INSERT INTO public.bench_w3_seen (contender, sample, began) VALUES ('pgflare', ${i}, clock_timestamp())`,
      ]);
      await starter.query('COMMIT');
      await sleep(W3_QUIET_MS);
      await waitFor(
        async () => (await starter.query(`SELECT 1 FROM bench_w3_seen WHERE contender = 'pgflare' AND sample = $1`, [i])).rows.length > 0,
        10_000,
        2,
        `pgflare W3 sample ${i}`,
      );
    },
    async stop() {
      await starter.end();
      await worker.stop();
    },
  };
}

export const ENGINE_W3_METRIC = 'df.start committed → step begins: p50 ms';

export async function engineWakeup(ctx: BenchContext, avail: EngineAvailability, size: SizeOverrides = {}): Promise<Measurement> {
  const { w3Samples } = { ...sizes(ctx.quick), ...size };
  if (!avail.worker) return unavailable(ENGINE_W3_METRIC, 'ms', 'lower', `worker ${avail.workerWhy}`);
  const e = await engineW3(avail, ctx);
  try {
    for (let i = 1; i <= w3Samples; i++) {
      await sleep(idleGapMs());
      await e.sample(i);
    }
  } finally {
    await e.stop();
  }
  return w3Latencies(ctx, 'pgflare', ENGINE_W3_METRIC);
}
