/**
 * The floor: the least a SKIP LOCKED queue can do per step, as raw SQL on a plain table with a
 * partial index on ready rows. Every pgflare number is printed as a ratio to these, measured in the
 * same run on the same server.
 *
 *   BEGIN;
 *   SELECT id, payload FROM floor_queue WHERE status = 'ready' AND run_at <= now()
 *    ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
 *   SELECT 1;                                   -- the "step"
 *   UPDATE floor_queue SET status = 'done' WHERE id = $1;
 *   INSERT INTO floor_queue (payload) VALUES ($1);  -- the successor, ready now
 *   COMMIT;
 *
 * Each statement is its own round trip, as a worker would send them; the parameterised ones are named
 * prepared statements (parsed once per connection), the cheapest honest client.
 */
import type pg from 'pg';
import {
  checkpoint,
  connect,
  idleGapMs,
  median,
  nowMs,
  parallel,
  percentile,
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

const CLAIM = {
  name: 'floor_claim',
  text: `SELECT id, payload FROM floor_queue
          WHERE status = 'ready' AND run_at <= now()
          ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
};
const DONE = { name: 'floor_done', text: `UPDATE floor_queue SET status = 'done' WHERE id = $1` };
const SUCCESSOR = { name: 'floor_successor', text: `INSERT INTO floor_queue (payload) VALUES ($1)` };

/** Drops and recreates the queue (each phase starts from a fresh table, like a fresh instance). */
async function resetQueue(ctx: BenchContext, ready: number): Promise<void> {
  const c = await connect(ctx.ownerUrl);
  try {
    await c.query(`
      DROP TABLE IF EXISTS floor_queue;
      CREATE TABLE floor_queue (
        id      bigserial   PRIMARY KEY,
        run_at  timestamptz NOT NULL DEFAULT now(),
        status  text        NOT NULL DEFAULT 'ready',
        payload jsonb
      );
      CREATE INDEX floor_queue_ready_idx ON floor_queue (run_at) WHERE status = 'ready';`);
    if (ready > 0) {
      await c.query(`INSERT INTO floor_queue (payload) SELECT jsonb_build_object('n', g) FROM generate_series(1, $1) g`, [ready]);
    }
    await c.query('ANALYZE floor_queue');
  } finally {
    await c.end();
  }
  await checkpoint(ctx);
}

/**
 * One floor transaction on `c`. Returns false when nothing was ready (the claim found no row).
 * `step` replaces `SELECT 1` (W3 records when the step began).
 */
async function floorTx(
  c: pg.Client,
  step: (payload: unknown) => Promise<unknown> = () => c.query('SELECT 1'),
  successor = true,
  timing?: { claimMs: number },
): Promise<boolean> {
  await c.query('BEGIN');
  try {
    const t = timing ? nowMs() : 0;
    const claimed = await c.query<{ id: string; payload: unknown }>(CLAIM);
    if (timing) timing.claimMs += nowMs() - t;
    if (claimed.rows.length === 0) {
      await c.query('COMMIT');
      return false;
    }
    const row = claimed.rows[0];
    await step(row.payload);
    await c.query({ ...DONE, values: [row.id] });
    if (successor) await c.query({ ...SUCCESSOR, values: [row.payload] });
    await c.query('COMMIT');
    return true;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** W1 floor: a chain of `n` transactions on one client, each claiming the row the previous one inserted. */
export async function floorChain(ctx: BenchContext): Promise<Measurement> {
  const { chain, chainRepeats } = sizes(ctx.quick);
  const perStep: number[] = [];
  const txP50: number[] = [];
  for (let r = 0; r < chainRepeats; r++) {
    await resetQueue(ctx, 1);
    const c = await connect(ctx.ownerUrl);
    try {
      await floorTx(c); // warm: prepares the statements on this connection
      const lat: number[] = [];
      const t0 = nowMs();
      for (let i = 0; i < chain; i++) {
        const s = nowMs();
        if (!(await floorTx(c))) throw new Error('floor chain: nothing ready');
        lat.push(nowMs() - s);
      }
      perStep.push((nowMs() - t0) / chain);
      txP50.push(percentile(lat, 50));
    } finally {
      await c.end();
    }
  }
  const value = round(median(perStep));
  ctx.log(`floor W1: chain of ${chain} on 1 client: ${value} ms/tx (repeats ${perStep.map((x) => round(x)).join(', ')})`);
  return {
    contender: 'floor',
    metric: `1 client, chain of ${chain}: ms per tx`,
    value,
    unit: 'ms/step',
    better: 'lower',
    detail: { repeats: perStep.map((x) => round(x)), txP50: txP50.map((x) => round(x)) },
  };
}

/** Runs the floor transaction on `clients` connections until `stop()`; `done` counts committed steps. */
async function runClients(
  ctx: BenchContext,
  clients: number,
  stop: () => boolean,
  counter: { done: number; claimMs?: number },
): Promise<void> {
  const conns = await Promise.all(Array.from({ length: clients }, () => connect(ctx.ownerUrl)));
  try {
    await parallel(clients, async (i) => {
      const c = conns[i];
      while (!stop()) {
        if (await floorTx(c, undefined, true, counter.claimMs === undefined ? undefined : (counter as { claimMs: number }))) counter.done++;
        else await sleep(1);
      }
    });
  } finally {
    await Promise.all(conns.map((c) => c.end()));
  }
}

/** W2 floor: `floor8Tx` transactions over 8 clients against a backlog of as many ready rows (tx/s). */
export async function floorThroughput(ctx: BenchContext, clients = 8): Promise<Measurement> {
  const { floor8Tx } = sizes(ctx.quick);
  await resetQueue(ctx, floor8Tx);
  const counter = { done: 0 };
  const sampler = new WindowSampler(() => counter.done, ctx.windowSeconds);
  await sampler.start();
  const t0 = nowMs();
  await runClients(ctx, clients, () => counter.done >= floor8Tx, counter);
  const seconds = (nowMs() - t0) / 1000;
  const windows = await sampler.stop();
  const value = round(counter.done / seconds, 1);
  ctx.log(`floor W2: ${counter.done} tx on ${clients} clients in ${round(seconds, 2)} s: ${value} tx/s`);
  return {
    contender: 'floor',
    metric: `${clients} clients, ${floor8Tx} tx over a backlog of ${floor8Tx}: tx/s`,
    value,
    unit: 'steps/s',
    better: 'higher',
    detail: { seconds: round(seconds, 2), windows },
  };
}

/**
 * The floor over time: 8 clients for `durationW2` seconds against a constant backlog (every tx inserts
 * a successor), rate per window. With default autovacuum this is the curve the engine must beat: the
 * done rows' entries stay in the partial index until vacuum, and every claim walks over them.
 */
export async function floorSustained(ctx: BenchContext, clients = 8): Promise<Measurement> {
  const { drainItems } = sizes(ctx.quick);
  await resetQueue(ctx, drainItems);
  const before = await connect(ctx.ownerUrl).then(async (c) => {
    try {
      return await explainClaim(c);
    } finally {
      await c.end();
    }
  });
  const counter = { done: 0, claimMs: 0 };
  // Diagnostic: mean time of the claim statement per window. Dead entries that done rows leave in the
  // partial index until vacuum are walked by every claim; that shows up here first.
  const claimTime = new WindowSampler(() => counter.claimMs, ctx.windowSeconds);
  const sampler = new WindowSampler(() => counter.done, ctx.windowSeconds, (w) => {
    const ct = claimTime.windows[sampler.windows.length - 1];
    ctx.log(`  floor sustained t=${w.t}s ${Math.round(w.rate)} tx/s${ct ? `, claim ${round(ct.count / Math.max(1, w.count), 3)} ms` : ''}`);
  });
  await claimTime.start();
  await sampler.start();
  const t0 = nowMs();
  await runClients(ctx, clients, () => nowMs() - t0 >= ctx.durationW2 * 1000, counter);
  const claimWindows = await claimTime.stop();
  const windows = await sampler.stop();
  const claimMsPerWindow = windows.map((w, i) => round((claimWindows[i]?.count ?? NaN) / Math.max(1, w.count), 3));
  const summary = summariseWindows(windows);
  const tableState = await queueState(ctx);
  ctx.log(
    `floor sustained: ${counter.done} tx in ${ctx.durationW2} s; windows ${summary.firstRate} → ${summary.lastRate} tx/s ` +
      `(last/first ${summary.lastOverFirst}); mean claim ms per window ${claimMsPerWindow.join(' ')}; ` +
      `one claim before: ${JSON.stringify(before)}, after: ${JSON.stringify(tableState)}`,
  );
  return {
    contender: 'floor',
    metric: `${clients} clients, ${ctx.durationW2} s, backlog ${drainItems}: median window tx/s`,
    value: summary.medianRate,
    unit: 'steps/s',
    better: 'higher',
    detail: { ...summary, total: counter.done, windows, claimMsPerWindow, claimBefore: before, tableState },
  };
}

/** Index size and vacuum activity after a sustained run: what happened to the partial index. */
async function queueState(ctx: BenchContext) {
  const c = await connect(ctx.ownerUrl);
  try {
    const { rows } = await c.query(`
      SELECT pg_size_pretty(pg_relation_size('floor_queue_ready_idx')) AS ready_index,
             pg_size_pretty(pg_relation_size('floor_queue')) AS heap,
             (SELECT count(*) FROM floor_queue WHERE status = 'ready') AS ready_rows,
             s.n_live_tup, s.n_dead_tup, s.autovacuum_count, s.autoanalyze_count,
             s.last_autovacuum IS NOT NULL AS autovacuumed
        FROM pg_stat_user_tables s WHERE s.relname = 'floor_queue'`);
    return { ...rows[0], claim: await explainClaim(c) };
  } finally {
    await c.end();
  }
}

/** Buffers one claim touches and its execution time, from EXPLAIN ANALYZE (rolled back). */
async function explainClaim(c: pg.Client): Promise<{ buffers: number; ms: number }> {
  await c.query('BEGIN');
  try {
    const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: Record<string, number>; 'Execution Time': number }> }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${CLAIM.text}`,
    );
    const top = rows[0]['QUERY PLAN'][0];
    return { buffers: (top.Plan['Shared Hit Blocks'] ?? 0) + (top.Plan['Shared Read Blocks'] ?? 0), ms: round(top['Execution Time']) };
  } finally {
    await c.query('ROLLBACK');
  }
}

/**
 * W3 floor: the idle-wake-up floor. A listener parked on LISTEN gets the NOTIFY of a committed insert
 * and runs the floor transaction (without the successor insert), whose step records clock_timestamp(). Latency = step start − the
 * inserting transaction's commit timestamp (track_commit_timestamp).
 */
export async function floorWakeup(ctx: BenchContext): Promise<Measurement> {
  const { w3Samples } = sizes(ctx.quick);
  await resetQueue(ctx, 0);
  const listener = await connect(ctx.ownerUrl);
  const starter = await connect(ctx.ownerUrl);
  let pending = Promise.resolve();
  let failure: unknown;
  listener.on('notification', () => {
    pending = pending
      .then(async () => {
        while (
          await floorTx(
            listener,
            (payload) =>
              listener.query(`INSERT INTO bench_w3_seen (contender, sample, began) VALUES ('floor', $1, clock_timestamp())`, [
                (payload as { sample: number }).sample,
              ]),
            false, // one step per sample: no successor, so the listener goes idle again
          )
        );
      })
      .catch((e) => {
        failure = e;
      });
  });
  try {
    await listener.query('LISTEN floor_ready');
    for (let i = 1; i <= w3Samples; i++) {
      await sleep(idleGapMs());
      await starter.query('BEGIN');
      await starter.query(`INSERT INTO bench_w3_start (contender, sample) VALUES ('floor', $1)`, [i]);
      await starter.query(`INSERT INTO floor_queue (payload) VALUES (jsonb_build_object('sample', $1::int))`, [i]);
      await starter.query(`NOTIFY floor_ready`);
      await starter.query('COMMIT');
      await sleep(W3_QUIET_MS);
      await waitFor(
        async () => (await starter.query(`SELECT 1 FROM bench_w3_seen WHERE contender = 'floor' AND sample = $1`, [i])).rows.length > 0,
        10_000,
        2,
        `floor W3 sample ${i}`,
      );
      if (failure) throw failure;
    }
  } finally {
    await listener.end();
    await starter.end();
  }
  return w3Latencies(ctx, 'floor', 'LISTEN/NOTIFY → claim tx: p50 ms');
}

