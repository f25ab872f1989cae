/**
 * Where a step's time goes: `npx tsx bench/profile.ts [--chain 300] [--drain 2000] [--concurrency 8]`.
 *
 * Starts a throwaway embedded PostgreSQL like bench/run.ts, then
 *  - chain: one instance of N sequential `SELECT 1` steps, run by `engine.runSeries()` on one
 *    session, every round trip timed by the first words of its SQL (client-side: server time + wire);
 *  - drain: N one-step instances, `engine.drain({ concurrency })`, steps/s;
 *  - fan-out (`--fan-out N`): one instance whose JOIN has N `SELECT 1` branches (bench W2 fan-out), and
 *    pairs (`--pairs N`): N instances of two branches that finish at once, both drained at
 *    `--concurrency`: the join path, where checkpoints of one instance contend for its row.
 * Not part of `npm run bench`: a tool for choosing between engine variants on the same server.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { createEngine } from '../src/engine/engine.ts';
import { startNodeWorker } from '../src/runtime/node/worker.ts';
import type { Db, DbClient } from '../src/engine/db.ts';
import { connect } from './common.ts';
import { throwawayDatabase } from './throwaway.ts';

const { values: args } = parseArgs({
  options: {
    chain: { type: 'string', default: '300' },
    drain: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    repeats: { type: 'string', default: '2' },
    // Server-side time of every statement, nested ones (inside df._apply, …) included.
    statements: { type: 'boolean', default: false },
    // auto_explain of nested statements slower than this many ms, into --log-file.
    'explain-ms': { type: 'string' },
    'log-file': { type: 'string', default: join(tmpdir(), 'pgflare-profile.log') },
    // Extra server settings for an experiment, e.g. --set plan_cache_mode=force_generic_plan.
    set: { type: 'string', multiple: true, default: [] },
    // Run the chain on a Node worker (concurrency 1, as bench W1) instead of engine.runSeries().
    worker: { type: 'boolean', default: false },
    // Extra SQL run as the superuser after migrating, e.g. --sql 'ALTER TABLE df.instances SET (fillfactor = 80)'.
    sql: { type: 'string', multiple: true, default: [] },
    // Largest batch of one-step instances per transaction in the drain (src/engine/batch.ts; 1 = none).
    batch: { type: 'string', default: '1' },
    'fan-out': { type: 'string', default: '0' },
    pairs: { type: 'string', default: '0' },
  },
});

const timings = new Map<string, { n: number; ms: number }>();
function label(text: string): string {
  return text
    .slice(0, 200)
    .replace(/\s+/g, ' ')
    .replace(/'[^']*'/g, "'…'")
    .slice(0, 60);
}

/** Wraps a Db so every query on it is timed by label. */
function timed(db: Db): Db {
  const wrap = (c: DbClient): DbClient => ({
    async query(text: unknown, params?: unknown[]) {
      const t0 = performance.now();
      try {
        return await c.query(text as string, params);
      } finally {
        const k = label(typeof text === 'string' ? text : (text as { text: string }).text);
        const e = timings.get(k) ?? { n: 0, ms: 0 };
        e.n++;
        e.ms += performance.now() - t0;
        timings.set(k, e);
      }
    },
  } as DbClient);
  return { ...db, withClient: (fn) => db.withClient((c) => fn(wrap(c))) };
}

/**
 * CPU seconds the server has used so far (postmaster, live backends, and reaped backends through the
 * postmaster's cutime/cstime). On a shared machine CPU time per step is steadier than wall time.
 */
function serverCpu(dataDir: string): number {
  const pm = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const ticks = (pid: string | number, children: boolean) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      // fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
      return { ppid: Number(rest[1]), t: Number(rest[11]) + Number(rest[12]) + (children ? Number(rest[13]) + Number(rest[14]) : 0) };
    } catch {
      return { ppid: -1, t: 0 };
    }
  };
  let total = ticks(pm, true).t;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const s = ticks(pid, false);
    if (s.ppid === pm) total += s.t;
  }
  return total / 100;
}

/** Node's own CPU seconds so far. */
const nodeCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function chainExpression(n: number): string {
  const build = (k: number): string => (k === 1 ? `'SELECT 1'` : `(${build(k >> 1)} ~> ${build(k - (k >> 1))})`);
  return build(n);
}

/** The join path: one JOIN of `--fan-out` branches, then `--pairs` instances of two branches each. */
async function joins(c: Awaited<ReturnType<typeof connect>>, su: Awaited<ReturnType<typeof connect>>, dataDir: string, url: string) {
  const leaf = { node_type: 'SQL', query: 'SELECT 1' };
  const fan = Number(args['fan-out']);
  const pairs = Number(args.pairs);
  const cases: { what: string; steps: number; start: () => Promise<unknown> }[] = [];
  if (fan > 1) {
    const graph = JSON.stringify({ node_type: 'JOIN', left_node: leaf, right_node: leaf, extra_nodes: Array.from({ length: fan - 2 }, () => leaf) });
    cases.push({ what: `fan-out: one JOIN of ${fan}`, steps: fan, start: () => c.query('SELECT df.start($1)', [graph]) });
  }
  if (pairs > 0) {
    cases.push({ what: `pairs: ${pairs} instances of 'SELECT 1' & 'SELECT 1'`, steps: 2 * pairs, start: () => c.query(`SELECT df.start('SELECT 1' & 'SELECT 1') FROM generate_series(1, $1)`, [pairs]) });
  }
  for (const k of cases) {
    for (let r = 0; r < Number(args.repeats); r++) {
      await c.query(`DELETE FROM df.instances`);
      await k.start();
      await c.query(`VACUUM ANALYZE df.nodes, df.instances`);
      const db = createPgDb({ connectionString: url, max: Number(args.concurrency) + 1 });
      const engine = createEngine({ db, batchSize: Number(args.batch) });
      if (args.statements) await su.query('SELECT pg_stat_statements_reset()');
      const t0 = performance.now();
      const [s0, n0] = [serverCpu(dataDir), nodeCpu()];
      let runs = 0;
      for (;;) {
        const n = await engine.drain({ concurrency: Number(args.concurrency) });
        runs += n;
        const open = (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status NOT IN ('completed', 'failed', 'cancelled')`)).rows[0].n;
        if (open === 0) break;
        // Rows stepped aside (55P03: +250 ms) come due again.
        if (n === 0) await new Promise((res) => setTimeout(res, 20));
      }
      const s = (performance.now() - t0) / 1000;
      const [s1, n1] = [serverCpu(dataDir), nodeCpu()];
      const done = (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status = 'completed'`)).rows[0].n;
      console.log(
        `${k.what}, concurrency ${args.concurrency}: ${runs} runs, ${done} completed, ${(k.steps / s).toFixed(1)} steps/s; CPU per step: server ${(((s1 - s0) * 1000) / k.steps).toFixed(3)} ms, node ${(((n1 - n0) * 1000) / k.steps).toFixed(3)} ms; ${JSON.stringify(engine.stats())}`,
      );
      if (args.statements) {
        const { rows } = await su.query<{ ms: number; calls: number; q: string }>(
          `SELECT total_exec_time / $1 AS ms, calls, query AS q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20`,
          [k.steps],
        );
        for (const r of rows) console.log(`    server ${r.ms.toFixed(3).padStart(7)} ms/step ${String(r.calls).padStart(6)}×  ${label(r.q)}`);
      }
      await db.end();
    }
  }
}

async function main() {
  const stmts: Record<string, string> = args.statements
    ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' }
    : {};
  const explain: Record<string, string> = args['explain-ms']
    ? {
        session_preload_libraries: 'auto_explain',
        'auto_explain.log_min_duration': args['explain-ms'],
        'auto_explain.log_nested_statements': 'on',
      }
    : {};
  const db0 = await throwawayDatabase(
    'prof',
    { ...stmts, ...explain, ...Object.fromEntries((args.set ?? []).map((kv) => kv.split(/=(.*)/s).slice(0, 2))) },
    args['explain-ms'] ? (line) => appendFileSync(args['log-file']!, line) : undefined,
  );
  const { dataDir, url } = db0;
  try {
    const c = await connect(url);
    const su = await connect(db0.superUrl);
    if (args.statements) await su.query('CREATE EXTENSION pg_stat_statements');
    for (const q of args.sql ?? []) await su.query(q);
    const n = Number(args.chain);
    const graph = n > 0 ? (await c.query<{ g: string }>(`SELECT ${chainExpression(n)} AS g`)).rows[0].g : '';

    for (let r = 0; r < Number(args.repeats) && n > 0; r++) {
      const db = createPgDb({ connectionString: url, max: 1 });
      const engine = createEngine({ db: timed(db) });
      await c.query(`SELECT df.start($1)`, [graph]);
      timings.clear();
      if (args.statements) await su.query('SELECT pg_stat_statements_reset()');
      const t0 = performance.now();
      const [s0, n0] = [serverCpu(dataDir), nodeCpu()];
      let runs = 0;
      if (args.worker) {
        // As bench W1: the worker runs the chain; completion is polled every 10 ms.
        const w = await startNodeWorker({ connectionString: url, concurrency: 1 });
        const [{ id }] = (await c.query<{ id: string }>(`SELECT id FROM df.instances WHERE status <> 'completed' LIMIT 1`)).rows;
        while ((await c.query<{ s: string }>('SELECT df.status($1) AS s', [id])).rows[0].s !== 'completed') await new Promise((r) => setTimeout(r, 10));
        await w.stop();
        runs = n;
      } else runs = await engine.runSeries();
      const total = performance.now() - t0;
      const [s1, n1] = [serverCpu(dataDir), nodeCpu()];
      console.log(
        `chain of ${n}: ${runs} runs, ${(total / n).toFixed(3)} ms/step wall; CPU per step: server ${(((s1 - s0) * 1000) / n).toFixed(3)} ms, node ${(((n1 - n0) * 1000) / n).toFixed(3)} ms; ${JSON.stringify(engine.stats())}`,
      );
      for (const [k, v] of [...timings].sort((a, b) => b[1].ms - a[1].ms)) {
        console.log(`  ${(v.ms / n).toFixed(3).padStart(7)} ms/step  ${String(v.n).padStart(6)}×  ${k}`);
      }
      if (args.statements) {
        const { rows } = await su.query<{ ms: number; calls: number; q: string }>(
          `SELECT total_exec_time / $1 AS ms, calls, query AS q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25`,
          [n],
        );
        for (const r of rows) console.log(`    server ${r.ms.toFixed(3).padStart(7)} ms/step ${String(r.calls).padStart(6)}×  ${label(r.q)}`);
      }
      await db.end();
    }

    const d = Number(args.drain);
    for (let r = 0; r < Number(args.repeats) && d > 0; r++) {
      await c.query(`DELETE FROM df.instances`);
      await c.query(`SELECT df.start('SELECT 1') FROM generate_series(1, $1)`, [d]);
      await c.query(`VACUUM ANALYZE df.nodes, df.instances`);
      const db = createPgDb({ connectionString: url, max: Number(args.concurrency) + 1 });
      const engine = createEngine({ db, batchSize: Number(args.batch) });
      if (args.statements) await su.query('SELECT pg_stat_statements_reset()');
      const lsn0 = (await su.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
      const t0 = performance.now();
      const [s0, n0] = [serverCpu(dataDir), nodeCpu()];
      const runs = await engine.drain({ concurrency: Number(args.concurrency) });
      const s = (performance.now() - t0) / 1000;
      const [s1, n1] = [serverCpu(dataDir), nodeCpu()];
      // WAL written during the drain (the throwaway server's other writers, autovacuum, are included).
      const wal = (await su.query<{ b: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS b', [lsn0])).rows[0].b;
      const done = (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status = 'completed'`)).rows[0].n;
      console.log(`drain ${d} one-step instances, concurrency ${args.concurrency}: ${runs} runs, ${done} completed, ${(done / s).toFixed(1)} steps/s; CPU per instance: server ${(((s1 - s0) * 1000) / d).toFixed(3)} ms, node ${(((n1 - n0) * 1000) / d).toFixed(3)} ms; ${JSON.stringify(engine.stats())}`);
      // HOT updates (no index entries written) against all updates, per table, since the server started.
      const hot = await su.query<{ t: string; upd: string; hot: string }>(
        `SELECT relname AS t, n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE schemaname = 'df' AND n_tup_upd > 0 ORDER BY relname`,
      );
      console.log(`    updates (HOT): ${hot.rows.map((r) => `${r.t} ${r.upd} (${r.hot})`).join(', ')}; WAL ${(Number(wal) / d).toFixed(0)} bytes/instance`);
      if (args.statements) {
        const { rows } = await su.query<{ ms: number; calls: number; q: string }>(
          `SELECT total_exec_time / $1 AS ms, calls, query AS q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20`,
          [d],
        );
        for (const r of rows) console.log(`    server ${r.ms.toFixed(3).padStart(7)} ms/instance ${String(r.calls).padStart(6)}×  ${label(r.q)}`);
      }
      await db.end();
    }
    await joins(c, su, dataDir, url);
    await c.end();
    await su.end();
  } finally {
    await db0.stop();
  }
}

await main();
