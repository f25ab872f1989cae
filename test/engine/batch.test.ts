/**
 * Batches (src/engine/batch.ts, 0023): runSeries with `batchSize` runs several one-step instances in one
 * transaction. Each must behave as if it had run alone: its effects exactly once, a failing step undone
 * alone, nothing a step sets seen by the next, and a batch whose write fails leaves nothing behind.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';
import type { CrashPoint, PointHandler } from '../../src/engine/points.ts';
import type { Db, DbClient } from '../../src/engine/db.ts';

const t = useTestDb();

/** No batch is ever over budget here, so how many steps ran in batches does not depend on the machine's load. */
const NO_BUDGET = { batchBudgetMs: Number.POSITIVE_INFINITY };

/** The SQL texts sent on the engine's sessions, in order. */
function recording(opts: { untilError?: boolean } = {}): { db: Db; sent: string[] } {
  const sent: string[] = [];
  const wrap = (c: DbClient): DbClient => ({
    query(text: unknown, params?: unknown[]) {
      sent.push(typeof text === 'string' ? text : (text as { text: string }).text);
      return c.query(text as string, params);
    },
    ...(c.queryUntilError && opts.untilError !== false
      ? {
          queryUntilError(text: string) {
            sent.push(text);
            return c.queryUntilError!(text);
          },
        }
      : {}),
  }) as DbClient;
  return { db: { ...t.db, withClient: (fn) => t.db.withClient((c) => fn(wrap(c))) }, sent };
}

/** How many times each sent text carries a step matching `step`, for the texts that carry one. */
const carrying = (sent: string[], step: RegExp) => sent.map((s) => s.match(step)?.length ?? 0).filter((n) => n > 0);

/** Starts one instance per statement, each in its own transaction: run_at order = this order. */
async function startEach(steps: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const s of steps) ids.push(await start(t, `'${s.replaceAll("'", "''")}'`));
  return ids;
}

const effects = async () => (await t.query<{ n: number }>('SELECT n FROM effects ORDER BY n')).map((r) => r.n);

async function freshEffects() {
  await t.query('DROP TABLE IF EXISTS effects; CREATE TABLE effects (n int, seen text)');
}

describe('batches of one-step instances', () => {
  it('run many instances per transaction, each effect exactly once, each result its own', async () => {
    await freshEffects();
    const ids = await startEach(Array.from({ length: 40 }, (_, i) => `INSERT INTO effects (n) VALUES (${i}) RETURNING n`));
    const engine = engineFor(t, { batchSize: 16, ...NO_BUDGET });
    expect(await engine.drain({ concurrency: 2 })).toBe(40);
    expect(await effects()).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (const [i, id] of ids.entries()) {
      expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ n: i }], row_count: 1 } });
    }
    // Most ran in batches (the first claims of each series take one row, then the size doubles).
    expect(engine.stats().batched).toBeGreaterThanOrEqual(30);
    expect(engine.stats().undone).toBe(0);
    // Every instance has its root scope and its node's checkpoint, as when run one per transaction.
    const [rows] = await t.query(
      `SELECT (SELECT count(DISTINCT instance_id) FROM df.scopes WHERE status = 'completed')::int AS scopes,
              (SELECT count(*) FROM df.nodes WHERE status = 'completed' AND attempts = 1 AND run_at IS NULL)::int AS nodes`,
    );
    expect(rows).toEqual({ scopes: 40, nodes: 40 });
  });

  it('a batch sends all its steps in one message: one round trip for the steps of a batch', async () => {
    await freshEffects();
    await startEach(Array.from({ length: 15 }, (_, i) => `INSERT INTO effects (n) VALUES (${i})`));
    const rec = recording();
    const engine = engineFor(t, { db: rec.db, batchSize: 8, ...NO_BUDGET });
    // One series: claims of one row, then two, four and eight.
    expect(await engine.runSeries()).toBe(15);
    expect(await effects()).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(engine.stats()).toMatchObject({ batched: 14, resent: 0, undone: 0 });
    expect(carrying(rec.sent, /INSERT INTO effects/g)).toEqual([1, 2, 4, 8]);
  });

  it('over a driver without queryUntilError, a batch sends its steps one round trip each, none twice', async () => {
    await freshEffects();
    await t.query('DROP SEQUENCE IF EXISTS ctr; CREATE SEQUENCE ctr');
    const step = "INSERT INTO effects (n) VALUES (nextval('ctr'))";
    const ids = await startEach([step, step, step, step, 'SELECT 1/0', step, step]);
    const rec = recording({ untilError: false });
    const engine = engineFor(t, { db: rec.db, batchSize: 8, ...NO_BUDGET });
    expect(await engine.runSeries()).toBe(7);
    expect(engine.stats()).toMatchObject({ batched: 6, resent: 0, undone: 0 });
    expect(carrying(rec.sent, /nextval\('ctr'\)|1\/0/g)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(await effects()).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await outcome(t, ids[4])).status).toBe('failed');
  });

  it('a series starts at the batch size the last one ended with, unless that one found the queue empty', async () => {
    await freshEffects();
    await startEach(Array.from({ length: 15 }, (_, i) => `INSERT INTO effects (n) VALUES (${i})`));
    const rec = recording();
    const engine = engineFor(t, { db: rec.db, batchSize: 8, ...NO_BUDGET });
    // Stopped by maxSteps with work left: one row, two, four, then the one step left of 8.
    expect(await engine.runSeries({ maxSteps: 8 })).toBe(8);
    // The next series claims eight at once; it ends finding nothing, so the one after starts at one row.
    expect(await engine.runSeries()).toBe(7);
    await startEach(Array.from({ length: 3 }, (_, i) => `INSERT INTO effects (n) VALUES (${15 + i})`));
    expect(await engine.runSeries()).toBe(3);
    expect(carrying(rec.sent, /INSERT INTO effects/g)).toEqual([1, 2, 4, 1, 7, 1, 2]);
    expect(await effects()).toEqual(Array.from({ length: 18 }, (_, i) => i));
  });

  it('off unless asked for: the bare engine runs one instance per transaction', async () => {
    await freshEffects();
    await startEach(Array.from({ length: 6 }, (_, i) => `INSERT INTO effects (n) VALUES (${i})`));
    const engine = engineFor(t);
    expect(await engine.drain()).toBe(6);
    expect(engine.stats().batched).toBe(0);
    expect(await effects()).toHaveLength(6);
  });

  it('a failing step is undone alone: its instance fails, the others in its batch complete, none runs twice', async () => {
    await freshEffects();
    await t.query('DROP SEQUENCE IF EXISTS ctr; CREATE SEQUENCE ctr');
    // nextval is not rolled back: a step that ran twice (once undone) would leave a gap in the numbers.
    const step = "INSERT INTO effects (n) VALUES (nextval('ctr'))";
    const ids = await startEach([step, step, step, step, 'WITH a AS (INSERT INTO effects (n) VALUES (99) RETURNING n) SELECT n / 0 FROM a', step, step]);
    const rec = recording();
    const engine = engineFor(t, { db: rec.db, batchSize: 8, ...NO_BUDGET });
    expect(await engine.runSeries()).toBe(7);
    // Claims of one row, two, then the four left, whose message stops at the failing step (the second):
    // the next one rolls that step back and sends the two after it.
    expect(engine.stats()).toMatchObject({ batched: 6, resent: 1, undone: 0 });
    expect(carrying(rec.sent, /nextval\('ctr'\)|n \/ 0/g)).toEqual([1, 2, 4, 2]);
    expect(await effects()).toEqual([1, 2, 3, 4, 5, 6]);
    const failed = await outcome(t, ids[4]);
    expect(failed.status).toBe('failed');
    expect(failed.output).toBe('SQL execution failed: error returned from database: division by zero');
    for (const i of [0, 1, 2, 3, 5, 6]) expect((await outcome(t, ids[i])).status).toBe('completed');
  });

  it('a step sees nothing the step before it in the batch set: settings, temp tables, time-out, search_path', async () => {
    await freshEffects();
    const leaks = [
      "SELECT set_config('pgflare_test.leak', 'leaked', false)",
      'SELECT 1 AS x INTO TEMP leak_tt',
      "SELECT set_config('statement_timeout', '1234', false)",
      "SELECT set_config('search_path', 'pg_temp', false)",
    ];
    const check =
      "INSERT INTO public.effects (n, seen) SELECT 1, concat_ws(',', current_setting('pgflare_test.leak', true), " +
      "CASE WHEN to_regclass('pg_temp.leak_tt') IS NOT NULL THEN 'temp' END, " +
      "CASE WHEN current_setting('statement_timeout') <> '0' THEN current_setting('statement_timeout') END, " +
      "CASE WHEN current_setting('search_path') = 'pg_temp' THEN 'path' END, " +
      "CASE WHEN current_user <> session_user THEN current_user END)";
    const steps = leaks.flatMap((l) => [l, check]);
    await startEach(steps);
    const engine = engineFor(t, { batchSize: 16, ...NO_BUDGET });
    // One series: the first claim takes one row, the next two, then four, then the one left.
    expect(await engine.runSeries()).toBe(steps.length);
    expect(engine.stats()).toMatchObject({ batched: 6, resent: 0 });
    const seen = await t.query<{ seen: string }>('SELECT seen FROM effects');
    expect(seen).toHaveLength(4);
    for (const s of seen) expect(s.seen).toBe('');
  });

  it.each<CrashPoint>(['after-claim', 'before-commit'])('a crash at %s inside a batch leaves nothing; the re-run counts each effect once', async (point) => {
    await freshEffects();
    const ids = await startEach(Array.from({ length: 12 }, (_, i) => `INSERT INTO effects (n) VALUES (${i})`));
    // Crash at the point's 10th hit: well inside a batch (sizes 1, 2, 4, 8 in one series).
    let hits = 0;
    const h: PointHandler = (p) => {
      if (p === point && ++hits === 10) throw new Error(`crash at ${point}`);
    };
    const engine = engineFor(t, { batchSize: 8, points: h });
    await expect(engine.runSeries()).rejects.toThrow(`crash at ${point}`);
    const before = (await effects()).length;
    const [open] = await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE status = 'pending'`);
    // Whatever committed before the crash counted once; the crashed batch left its rows pending and ready.
    expect(before + open.n).toBe(12);
    expect(open.n).toBeGreaterThan(0);
    await engineFor(t, { batchSize: 8 }).drain();
    expect(await effects()).toEqual(Array.from({ length: 12 }, (_, i) => i));
    for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
  });

  it('a batch whose write finds a copy stale (an instance cancelled meanwhile) is undone and its rows run again one by one', async () => {
    await freshEffects();
    const ids = await startEach(Array.from({ length: 6 }, (_, i) => `INSERT INTO effects (n) VALUES (${i})`));
    // The series' first claim runs ids[0] alone; ids[1] and ids[2] then form a batch. Just before that
    // batch's write, ids[2] is cancelled behind the engine's back (its row is not locked yet).
    let batchCommits = 0;
    const h: PointHandler = async (p, at) => {
      if (p === 'before-commit' && at.instanceId === ids[2] && batchCommits++ === 0) {
        await t.superuser.query(`UPDATE df.instances SET status = 'cancelled' WHERE id = $1`, [ids[2]]);
      }
    };
    const engine = engineFor(t, { batchSize: 4, points: h });
    await engine.drain();
    expect(engine.stats().undone).toBe(1);
    // The cancelled instance's step never took effect; every other one exactly once.
    expect(await effects()).toEqual([0, 1, 3, 4, 5]);
    expect((await outcome(t, ids[2])).status).toBe('cancelled');
    for (const i of [0, 1, 3, 4, 5]) expect((await outcome(t, ids[i])).status).toBe('completed');
  });

  it('stops at a row that cannot join (a chain, a multi-statement step, VACUUM) and runs it as before', async () => {
    await freshEffects();
    const one = (n: number) => `'INSERT INTO effects (n) VALUES (${n})'`;
    const ids = [
      await start(t, one(1)),
      await start(t, one(2)),
      await start(t, `${one(3)} ~> ${one(4)}`),
      await start(t, one(5)),
      await start(t, `'SELECT 1; SELECT 2'`),
      await start(t, one(6)),
      await start(t, `'VACUUM effects'`),
      await start(t, one(7)),
      await start(t, one(8)),
      // Block comments nest: this is a VACUUM, which runs outside a transaction (a lease).
      await start(t, `'/* a /* nested */ note */ VACUUM effects'`),
    ];
    const engine = engineFor(t, { batchSize: 8 });
    await engine.drain();
    expect(await effects()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const multi = await outcome(t, ids[4]);
    expect(multi.status).toBe('failed');
    expect(multi.output).toMatch(/cannot insert multiple commands into a prepared statement/);
    for (const i of [0, 1, 2, 3, 5, 6, 7, 8, 9]) expect((await outcome(t, ids[i])).status).toBe('completed');
  });

  it("a step's own time-out, result cap and retry policy hold inside a batch", async () => {
    await freshEffects();
    const ids = [
      await start(t, `'INSERT INTO effects (n) VALUES (1)'`),
      await start(t, `'INSERT INTO effects (n) VALUES (2)'`),
      // Its own time-out is in force while it runs (its cancellation is tested in retry-timeout.test.ts).
      await start(t, `df.timeout('SELECT current_setting(''statement_timeout'') AS t', 0.05)`),
      await start(t, `'WITH a AS (INSERT INTO effects (n) VALUES (91) RETURNING n) SELECT repeat(''x'', 5000) FROM a'`),
      await start(t, `df.retry('SELECT 1/0', 3, 60)`),
      await start(t, `'INSERT INTO effects (n) VALUES (3)'`),
    ];
    const engine = engineFor(t, { batchSize: 8, maxResultBytes: 1024, ...NO_BUDGET });
    expect(await engine.runSeries()).toBe(6);
    expect(await effects()).toEqual([1, 2, 3]);
    expect(await outcome(t, ids[2])).toMatchObject({ status: 'completed', result: { rows: [{ t: '50ms' }], row_count: 1 } });
    // One row, then two, then the three left: that batch's message stops at the capped step (its result
    // came back, the step is undone), the next one at the failing step, the last sends the step after it.
    expect(engine.stats()).toMatchObject({ batched: 5, resent: 2 });
    const capped = await outcome(t, ids[3]);
    expect(capped.status).toBe('failed');
    expect(capped.output).toMatch(/1024/);
    // The retried step waits for its next attempt: running, one failed attempt recorded.
    expect((await outcome(t, ids[4])).status).toBe('running');
    const events = await t.query(`SELECT kind, attempt FROM df.events WHERE instance_id = $1`, [ids[4]]);
    expect(events).toEqual([{ kind: 'attempt_failed', attempt: 1 }]);
    const [node] = await t.query(`SELECT attempts, status, run_at IS NOT NULL AS queued FROM df.nodes WHERE instance_id = $1`, [ids[4]]);
    expect(node).toEqual({ attempts: 1, status: 'running', queued: true });
  });
});
