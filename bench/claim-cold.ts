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
 * `npm run bench`: the numbers behind the choice of the wake-up claim (docs/ARCHITECTURE.md, "The wake-up
 * claim"; bench/RESULTS.md).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { claimSql, prepareClaim, PREPARED_CLAIM_SQL, type PreparedClaim } from '../src/engine/queries/claim.ts';
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

/**
 * The engine's wake-up claim (PREPARED_CLAIM_SQL), with `now` as a timestamptz parameter so a variant can
 * pass now() or a literal, cut into groups of its columns over the same rows and joins.
 */
function claimParts() {
  const number = "timestamptz 'epoch' + $1 * interval '1 microsecond'";
  if (!PREPARED_CLAIM_SQL.includes(number)) throw new Error('claim-cold: the wake-up claim no longer takes now as a number');
  const sql = PREPARED_CLAIM_SQL.replace(number, '$1');
  const at = sql.search(/\n\s*FROM /);
  const from = sql.slice(at);
  // The select list, split at its top-level commas.
  const columns: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sql.slice(0, at).replace(/^\s*SELECT\s+/, '')) {
    if (ch === ',' && depth === 0) {
      columns.push(cur.trim());
      cur = '';
      continue;
    }
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    cur += ch;
  }
  columns.push(cur.trim());
  const groups = {
    ids: (c: string) => c === 'q.instance_id' || c === 'q.id',
    ts: (c: string) => c === 'q.run_at',
    role: (c: string) => /owner/.test(c),
    json: (c: string) => ['q.state', 'q.options', 'i.vars', 's.named'].includes(c),
    settings: (c: string) => c.endsWith('AS step_settings'),
  };
  type Part = keyof typeof groups;
  for (const k of Object.keys(groups) as Part[]) {
    if (!columns.some(groups[k])) throw new Error(`claim-cold: no ${k} columns in the wake-up claim`);
  }
  const select = (keep: (c: string) => boolean) => `SELECT ${columns.filter(keep).join(', ')}${from}`;
  return { all: select(() => true), without: (k: Part) => select((c) => !groups[k](c)), only: (k: Part) => select(groups[k]) };
}

await main();
