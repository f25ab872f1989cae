/**
 * The wake-up claim's round trip, cold: `npx tsx bench/claim-cold.ts [--samples 150] [--rounds 1] [--parts]`.
 *
 * A worker that waited 40-80 ms claims right after a NOTIFY reaches it (bench W3's critical path). Each
 * sample: wait, NOTIFY from a third session, and when the listening session hears it, send the claim on
 * the worker's session and time the round trip (then roll back, so the same row is ready again). The
 * variants take turns in a random order within every sample, so all of them see the same machine:
 *  - select1: `SELECT 1`, the baseline of a notified wake-up's round trip;
 *  - call:    `BEGIN; EXECUTE` of a statement that calls df._claim (the wake-up claim before 2026-12-05);
 *  - engine:  the engine's wake-up claim (src/engine/queries/claim.ts, prepareClaim before each wait).
 * With --parts, copies of the engine's statement with parts taken out, to see what each costs cold:
 *  - now / literal: `now` as the server's now() / as a timestamp literal (the engine passes a number);
 *  - -ts, -role, -json, -settings: without run_at, the owner columns, the jsonb columns, the step settings;
 *  - narrow: the same rows and joins, returning only the ids.
 * Prints p10/p50/p90 ms and the p50 as a ratio to select1's, measured in the same run. Not part of
 * `npm run bench`: the numbers behind the choice of the wake-up claim (docs/ARCHITECTURE.md).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { claimSql, prepareClaim, type PreparedClaim } from '../src/engine/queries/claim.ts';
import type { DbClient } from '../src/engine/db.ts';
import { connect, percentile, round, sleep } from './common.ts';
import { throwawayDatabase } from './throwaway.ts';

const { values: args } = parseArgs({
  options: { samples: { type: 'string', default: '150' }, rounds: { type: 'string', default: '1' }, parts: { type: 'boolean', default: false } },
});

type Variant = { idle: () => Promise<unknown>; claim: () => string };

async function main() {
  const db = await throwawayDatabase('cold');
  try {
    const url = db.url;
    const [listener, worker, notifier] = [await connect(url), await connect(url), await connect(url)];
    await notifier.query(`SELECT df.start('SELECT 1')`);
    await listener.query('LISTEN claim_cold');
    const w = worker as unknown as DbClient;
    let mode: PreparedClaim = false;
    const variants: Record<string, Variant> = {
      select1: { idle: async () => undefined, claim: () => 'SELECT 1' },
      call: {
        idle: () => worker.query(`DEALLOCATE ALL; PREPARE old_claim(timestamptz) AS SELECT * FROM df._claim($1)`),
        claim: () => `BEGIN; EXECUTE old_claim(now()); SAVEPOINT pgflare_step`,
      },
      engine: {
        idle: async () => (mode = await prepareClaim(w)),
        claim: () => `BEGIN; ${claimSql(new Date(), undefined, 0, mode)}; SAVEPOINT pgflare_step`,
      },
    };
    if (args.parts) {
      // Prepared like prepareClaim: six executions claiming nothing settle the generic plan.
      const prepared = (sql: string, arg: () => string): Variant => ({
        idle: () => worker.query(`DEALLOCATE ALL; PREPARE v(timestamptz, text) AS ${sql}; BEGIN; ${"EXECUTE v('-infinity', '0'); ".repeat(6)}ROLLBACK`),
        claim: () => `BEGIN; EXECUTE v(${arg()}, '0'); SAVEPOINT pgflare_step`,
      });
      const now = () => 'now()';
      const parts = claimParts();
      variants.now = prepared(parts.all, now);
      variants.literal = prepared(parts.all, () => `'${new Date().toISOString()}'::timestamptz + interval '999 microseconds'`);
      for (const k of ['ts', 'role', 'json', 'settings'] as const) variants[`-${k}`] = prepared(parts.without(k), now);
      variants.narrow = prepared(parts.only('ids'), now);
    }
    const p50s: Record<string, number[]> = {};
    for (let r = 0; r < Number(args.rounds); r++) {
      const ms: Record<string, number[]> = {};
      for (let i = 0; i < Number(args.samples); i++) {
        for (const [name, v] of Object.entries(variants).sort(() => Math.random() - 0.5)) {
          await v.idle();
          await sleep(40 + Math.random() * 40);
          const heard = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
          await notifier.query('NOTIFY claim_cold');
          await heard;
          const t0 = performance.now();
          await worker.query(v.claim());
          (ms[name] ??= []).push(performance.now() - t0);
          await worker.query('ROLLBACK').catch(() => undefined);
        }
      }
      for (const name of Object.keys(variants)) {
        const p50 = percentile(ms[name], 50);
        (p50s[name] ??= []).push(p50);
        console.log(`round ${r + 1} ${name.padEnd(9)} p10 ${round(percentile(ms[name], 10))} p50 ${round(p50)} p90 ${round(percentile(ms[name], 90))} ms`);
      }
      const base = p50s.select1[r];
      console.log(`round ${r + 1} p50 ÷ select1: ${Object.keys(variants).map((k) => `${k} ${round(p50s[k][r] / base, 2)}×`).join(', ')}`);
    }
    await Promise.all([listener.end(), worker.end(), notifier.end()]);
  } finally {
    await db.stop();
  }
}

/** The engine's wake-up claim (PREPARED_CLAIM_SQL) as groups of columns over the same rows and joins. */
function claimParts() {
  const cols = {
    ids: 'q.instance_id, q.id',
    texts: 'q.node_type, q.query, q.result_name, q.status, i.status AS instance_status, i.root_node, i.label',
    stamp: "q.status_details ->> 'execution_id' AS stamp",
    json: 'q.state, q.options, i.vars, s.named',
    ints: 'q.attempts, i.generation',
    ts: 'q.run_at',
    role: 'i.submitted_by::text AS owner, r.oid IS NOT NULL AS owner_exists, coalesce(r.rolsuper, false) AS owner_is_superuser',
    gate: "coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off') AS superuser_gate",
    input: 's.status AS scope_status, i.input::text AS input',
    settings: "concat(set_config('df.in_workflow', 'true', true), set_config('statement_timeout', $2, true), set_config('datestyle', 'ISO, MDY', true)) AS step_settings",
  };
  const from = `FROM (SELECT * FROM df.nodes n WHERE n.run_at <= $1 AND NOT EXISTS (SELECT 1 FROM df.role_limits) ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED) q
    JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = q.instance_id OFFSET 0) i ON true
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
    LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x WHERE x.instance_id = q.instance_id
                         AND x.scope_id = substring(q.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$') OFFSET 0) s ON true`;
  type Part = keyof typeof cols;
  const keys = Object.keys(cols) as Part[];
  const select = (ks: Part[]) => `SELECT ${ks.map((k) => cols[k]).join(', ')} ${from}`;
  return { all: select(keys), without: (k: Part) => select(keys.filter((x) => x !== k)), only: (k: Part) => select([k]) };
}

await main();
