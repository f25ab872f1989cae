/**
 * The wake-up claim's round trip, cold: `npx tsx bench/claim-cold.ts [--samples 80] [--rounds 2]`.
 *
 * A worker that waited 40-80 ms claims right after a NOTIFY reaches it (bench W3's critical path). Each
 * sample: wait, NOTIFY from a third session, and when the listening session hears it, send the claim on
 * the worker's session and time the round trip (then roll back, so the same row is ready again). Variants:
 *  - select1: `SELECT 1`, the baseline of a notified wake-up's round trip;
 *  - call:    `BEGIN; EXECUTE` of a statement that calls df._claim (the wake-up claim before 2026-12-05);
 *  - engine:  the engine's wake-up claim (src/engine/queries/claim.ts, prepareClaim before each wait).
 * Prints p10/p50/p90 ms and the p50 as a ratio to select1's, measured in the same run. Not part of
 * `npm run bench`: the numbers behind the choice of the wake-up claim (docs/ARCHITECTURE.md).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { claimSql, prepareClaim, type PreparedClaim } from '../src/engine/queries/claim.ts';
import type { DbClient } from '../src/engine/db.ts';
import { connect, percentile, round, sleep } from './common.ts';
import { throwawayDatabase } from './throwaway.ts';

const { values: args } = parseArgs({ options: { samples: { type: 'string', default: '80' }, rounds: { type: 'string', default: '2' } } });

async function main() {
  const db = await throwawayDatabase('cold');
  try {
    const url = db.url;
    const [listener, worker, notifier] = [await connect(url), await connect(url), await connect(url)];
    await notifier.query(`SELECT df.start('SELECT 1')`);
    await listener.query('LISTEN claim_cold');
    const w = worker as unknown as DbClient;
    let mode: PreparedClaim = false;
    const variants: Record<string, { idle: () => Promise<unknown>; claim: () => string }> = {
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
    const p50s: Record<string, number[]> = {};
    for (let r = 0; r < Number(args.rounds); r++) {
      for (const [name, v] of Object.entries(variants)) {
        const ms: number[] = [];
        for (let i = 0; i < Number(args.samples); i++) {
          await v.idle();
          await sleep(40 + Math.random() * 40);
          const heard = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
          await notifier.query('NOTIFY claim_cold');
          await heard;
          const t0 = performance.now();
          await worker.query(v.claim());
          ms.push(performance.now() - t0);
          await worker.query('ROLLBACK').catch(() => undefined);
        }
        const p50 = percentile(ms, 50);
        (p50s[name] ??= []).push(p50);
        console.log(`round ${r + 1} ${name.padEnd(8)} p10 ${round(percentile(ms, 10))} p50 ${round(p50)} p90 ${round(percentile(ms, 90))} ms`);
      }
      const base = p50s.select1[r];
      console.log(`round ${r + 1} p50 ÷ select1: call ${round(p50s.call[r] / base, 2)}×, engine ${round(p50s.engine[r] / base, 2)}×`);
    }
    await Promise.all([listener.end(), worker.end(), notifier.end()]);
  } finally {
    await db.stop();
  }
}

await main();
