/**
 * graphile-worker doing the same work as plain jobs, through its library API, with its default
 * settings (LISTEN/NOTIFY wake-up, 2 s poll fallback, no local queue, no completion batching), in its
 * own schema (graphile_worker) of the bench database, connected as the same owner role.
 *
 *   W1  a task that runs SELECT 1 and adds the next job: a chain (ms per step), worker concurrency 1
 *   W2  N jobs added at once, then drained at concurrency 8 (jobs/s); then a sustained run with top-ups
 *   W3  add (committed) → task starts, on an idle worker (concurrency 1)
 *
 * Note on what "done" means: graphile-worker 0.17 completes a job (deletes its row) without waiting
 * for that write before taking the next job, so end times here are taken when the jobs table is empty,
 * i.e. when every completion has committed — the same condition as df.status = 'completed'.
 */
import { Logger, makeWorkerUtils, run, runMigrations, type Runner, type TaskList, type WorkerUtils } from 'graphile-worker';
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
} from './common.ts';
import { w3Latencies, W3_QUIET_MS } from './w3.ts';

const JOBS_TABLE = 'graphile_worker._private_jobs';

function quietLogger(ctx: BenchContext): Logger {
  return new Logger(() => (level, message) => {
    if (level === 'error') ctx.log(`graphile-worker error: ${message}`);
  });
}

async function withUtils<T>(ctx: BenchContext, fn: (u: WorkerUtils) => Promise<T>): Promise<T> {
  const utils = await makeWorkerUtils({ connectionString: ctx.ownerUrl, logger: quietLogger(ctx) });
  try {
    return await fn(utils);
  } finally {
    await utils.release();
  }
}

/** Installs graphile-worker's schema (its own migrations) and empties its queue. */
export async function graphileSetup(ctx: BenchContext): Promise<void> {
  await runMigrations({ connectionString: ctx.ownerUrl, logger: quietLogger(ctx) });
  await clearJobs(ctx);
}

async function clearJobs(ctx: BenchContext): Promise<void> {
  const c = await connect(ctx.ownerUrl);
  try {
    await c.query(`DELETE FROM ${JOBS_TABLE}`);
    await c.query(`VACUUM ANALYZE ${JOBS_TABLE}`).catch(() => undefined);
  } finally {
    await c.end();
  }
  await checkpoint(ctx);
}

async function startRunner(ctx: BenchContext, concurrency: number, taskList: TaskList): Promise<Runner> {
  return run({
    connectionString: ctx.ownerUrl,
    concurrency,
    noHandleSignals: true,
    logger: quietLogger(ctx),
    taskList,
  });
}

async function jobsLeft(c: { query: (q: string) => Promise<{ rows: { n: number }[] }> }): Promise<number> {
  const { rows } = await c.query(`SELECT count(*)::int AS n FROM ${JOBS_TABLE}`);
  return rows[0].n;
}

/** W1: a chain of jobs, each running SELECT 1 and adding the next. */
export async function graphileChain(ctx: BenchContext): Promise<Measurement> {
  const { chain, chainRepeats } = sizes(ctx.quick);
  const perStep: number[] = [];
  for (let r = 0; r < chainRepeats; r++) {
    await clearJobs(ctx);
    let finished!: () => void;
    const lastRan = new Promise<void>((resolve) => (finished = resolve));
    const runner = await startRunner(ctx, 1, {
      chain: async (payload, helpers) => {
        const n = (payload as { n: number }).n;
        await helpers.query('SELECT 1');
        if (n < chain) await helpers.addJob('chain', { n: n + 1 });
        else finished();
      },
    });
    const watcher = await connect(ctx.ownerUrl);
    try {
      await sleep(200); // let the pool connect and LISTEN
      await withUtils(ctx, async (u) => {
        const t0 = nowMs();
        await u.addJob('chain', { n: 1 });
        await lastRan;
        await waitFor(async () => (await jobsLeft(watcher)) === 0, 30_000, 1, 'graphile chain completion');
        perStep.push((nowMs() - t0) / chain);
      });
    } finally {
      await watcher.end();
      await runner.stop();
    }
  }
  const value = round(median(perStep));
  ctx.log(`graphile W1: chain of ${chain}: ${value} ms/step (repeats ${perStep.map((x) => round(x)).join(', ')})`);
  return {
    contender: 'graphile',
    metric: `chain of ${chain} jobs (each adds the next): ms per step`,
    value,
    unit: 'ms/step',
    better: 'lower',
    detail: { repeats: perStep.map((x) => round(x)), concurrency: 1 },
  };
}

async function addMany(u: WorkerUtils, n: number, batch = 5000): Promise<void> {
  for (let done = 0; done < n; done += batch) {
    const k = Math.min(batch, n - done);
    await u.addJobs(Array.from({ length: k }, () => ({ identifier: 'w2', payload: {} })));
  }
}

/** W2: N jobs added at once, then one worker at concurrency 8 drains them (jobs/s to empty queue). */
export async function graphileDrain(ctx: BenchContext): Promise<Measurement> {
  const { drainItems } = sizes(ctx.quick);
  await clearJobs(ctx);
  await withUtils(ctx, (u) => addMany(u, drainItems));
  await checkpoint(ctx);
  const counter = { done: 0 };
  const watcher = await connect(ctx.ownerUrl);
  const sampler = new WindowSampler(() => counter.done, ctx.windowSeconds);
  let runner: Runner | undefined;
  try {
    await sampler.start();
    const t0 = nowMs();
    runner = await startRunner(ctx, 8, {
      w2: async (_payload, helpers) => {
        await helpers.query('SELECT 1');
        counter.done++;
      },
    });
    await waitFor(async () => counter.done >= drainItems, 600_000, 50, 'graphile drain');
    await waitFor(async () => (await jobsLeft(watcher)) === 0, 60_000, 2, 'graphile drain completion');
    const seconds = (nowMs() - t0) / 1000;
    const windows = await sampler.stop();
    const value = round(drainItems / seconds, 1);
    ctx.log(`graphile W2: ${drainItems} jobs drained at concurrency 8 in ${round(seconds, 2)} s: ${value} jobs/s`);
    return {
      contender: 'graphile',
      metric: `${drainItems} jobs added at once, concurrency 8: jobs/s`,
      value,
      unit: 'steps/s',
      better: 'higher',
      detail: { seconds: round(seconds, 2), windows },
    };
  } finally {
    await sampler.stop().catch(() => undefined);
    await runner?.stop();
    await watcher.end();
  }
}

/**
 * W2 over time: starts with N queued jobs and keeps the backlog at ≥ N/2 by adding batches, for
 * `durationW2` seconds at concurrency 8; rate per window.
 */
export async function graphileSustained(ctx: BenchContext): Promise<Measurement> {
  const { drainItems } = sizes(ctx.quick);
  await clearJobs(ctx);
  let added = 0;
  const counter = { done: 0 };
  return withUtils(ctx, async (u) => {
    await addMany(u, drainItems);
    added = drainItems;
    await checkpoint(ctx);
    const sampler = new WindowSampler(() => counter.done, ctx.windowSeconds, (w) =>
      ctx.log(`  graphile sustained t=${w.t}s ${Math.round(w.rate)} jobs/s`),
    );
    const runner = await startRunner(ctx, 8, {
      w2: async (_payload, helpers) => {
        await helpers.query('SELECT 1');
        counter.done++;
      },
    });
    try {
      await sampler.start();
      const t0 = nowMs();
      while (nowMs() - t0 < ctx.durationW2 * 1000) {
        if (added - counter.done < drainItems) {
          await addMany(u, 2000);
          added += 2000;
        }
        await sleep(100);
      }
      const windows = await sampler.stop();
      const summary = summariseWindows(windows);
      ctx.log(`graphile sustained: windows ${summary.firstRate} → ${summary.lastRate} jobs/s (last/first ${summary.lastOverFirst})`);
      return {
        contender: 'graphile' as const,
        metric: `concurrency 8, ${ctx.durationW2} s, backlog ≥ ${drainItems} (topped up): median window jobs/s`,
        value: summary.medianRate,
        unit: 'steps/s',
        better: 'higher' as const,
        detail: { ...summary, total: counter.done, windows },
      };
    } finally {
      await sampler.stop().catch(() => undefined);
      await runner.stop();
    }
  }).finally(() => clearJobs(ctx));
}

/** W3: add_job committed → task begins, on an idle worker. */
/**
 * graphile-worker's side of W3: a runner at concurrency 1 whose task records when it began, and
 * `sample(i)`, which adds job i in a transaction and waits for the task to record it. bench/run.ts runs
 * the samples alone (graphileWakeup) or interleaved with pgflare's (w3-paired.ts).
 */
export async function graphileW3(ctx: BenchContext): Promise<{ sample(i: number): Promise<void>; stop(): Promise<void> }> {
  await clearJobs(ctx);
  const runner = await startRunner(ctx, 1, {
    w3: async (payload, helpers) => {
      await helpers.query(`INSERT INTO bench_w3_seen (contender, sample, began) VALUES ('graphile', $1, clock_timestamp())`, [
        (payload as { sample: number }).sample,
      ]);
    },
  });
  const starter = await connect(ctx.ownerUrl);
  await sleep(500); // let the worker park on LISTEN
  return {
    async sample(i: number) {
      await starter.query('BEGIN');
      await starter.query(`INSERT INTO bench_w3_start (contender, sample) VALUES ('graphile', $1)`, [i]);
      await starter.query(`SELECT graphile_worker.add_job('w3', json_build_object('sample', $1::int))`, [i]);
      await starter.query('COMMIT');
      await sleep(W3_QUIET_MS);
      await waitFor(
        async () => (await starter.query(`SELECT 1 FROM bench_w3_seen WHERE contender = 'graphile' AND sample = $1`, [i])).rows.length > 0,
        10_000,
        2,
        `graphile W3 sample ${i}`,
      );
    },
    async stop() {
      await starter.end();
      await runner.stop();
    },
  };
}

export const GRAPHILE_W3_METRIC = 'add_job committed → task starts: p50 ms';

export async function graphileWakeup(ctx: BenchContext): Promise<Measurement> {
  const { w3Samples } = sizes(ctx.quick);
  const g = await graphileW3(ctx);
  try {
    for (let i = 1; i <= w3Samples; i++) {
      await sleep(idleGapMs());
      await g.sample(i);
    }
  } finally {
    await g.stop();
  }
  return w3Latencies(ctx, 'graphile', GRAPHILE_W3_METRIC);
}
