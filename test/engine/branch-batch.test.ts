/**
 * Branch batches (src/engine/branch-batch.ts): several ready branches of one JOIN run in one claim
 * transaction, their branch writes merged into one df._apply with the COMMIT. Effects are counted in a
 * user table: each branch's once, the JOIN's successor once, whatever fails or is cancelled mid-batch.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';
import type { PointHandler } from '../../src/engine/points.ts';
import type { Db, DbClient } from '../../src/engine/db.ts';

const t = useTestDb();

beforeEach(async () => {
  await t.query('DELETE FROM df.instances');
  await t.query('DROP TABLE IF EXISTS fx; CREATE TABLE fx (n int); DROP TABLE IF EXISTS after_join; CREATE TABLE after_join (n int)');
});

const fx = async () => (await t.query<{ n: number }>('SELECT n FROM fx ORDER BY n')).map((r) => r.n);
const afterJoin = async () => (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM after_join'))[0].n;
const completedBranches = async (id: string) =>
  (
    await t.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND node_type = 'SQL' AND status = 'completed' AND query LIKE 'INSERT INTO fx%'`,
      [id],
    )
  )[0].n;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** An instance whose root is a JOIN of `n` leaves (leaf(i): a node), then a step after it. */
async function startJoin(n: number, leaf: (i: number) => unknown = (i) => ({ node_type: 'SQL', query: `INSERT INTO fx VALUES (${i}) RETURNING n` })) {
  const leaves = range(n).map(leaf);
  const join = { node_type: 'JOIN', left_node: leaves[0], right_node: leaves[1], extra_nodes: leaves.slice(2) };
  const graph = { node_type: 'THEN', left_node: join, right_node: { node_type: 'SQL', query: 'INSERT INTO after_join VALUES (1)' } };
  const [r] = await t.query<{ id: string }>('SELECT df.start($1::jsonb::text) AS id', [JSON.stringify(graph)]);
  return r.id;
}

describe('branch batches', () => {
  it('a JOIN of 300 branches on 4 series runs in branch batches: every effect once, the JOIN and its successor once', async () => {
    const id = await startJoin(300);
    const e = engineFor(t, { batchSize: 16, batchBudgetMs: Number.POSITIVE_INFINITY });
    await e.drain({ concurrency: 4 });
    const o = await outcome(t, id);
    expect(o.status).toBe('completed');
    expect(await fx()).toEqual(range(300));
    expect(await afterJoin()).toBe(1);
    const [j] = await t.query<{ done: number }>(`SELECT (state ->> 'done')::int AS done FROM df.nodes WHERE instance_id = $1 AND node_type = 'JOIN'`, [id]);
    expect(j.done).toBe(300);
    // The path: most branches ran in batches of two or more.
    expect(e.stats().branchBatched).toBeGreaterThanOrEqual(200);
  });

  it('without batches (batchSize 1) no branch batch runs', async () => {
    const id = await startJoin(20);
    const e = engineFor(t, { batchSize: 1 });
    await e.drain({ concurrency: 2 });
    expect((await outcome(t, id)).status).toBe('completed');
    expect(e.stats().branchBatched).toBe(0);
    expect(await fx()).toEqual(range(20));
  });

  it('an engine whose copy of the instance is partial (another engine activated the JOIN) runs no branch batch and undoes none', async () => {
    const id = await startJoin(30);
    await engineFor(t).runOnce();
    const b = engineFor(t, { batchSize: 16 });
    await b.drain({ concurrency: 2 });
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await fx()).toEqual(range(30));
    expect(b.stats()).toMatchObject({ branchBatched: 0, undone: 0 });
  });

  /**
   * A handler calling `act` at the `k`th hit of `point` in a row with no commit between: only rows of one
   * batch hit a point back to back (a single row commits in between).
   */
  const atRow = (point: 'after-claim' | 'before-commit', k: number, act: () => void | Promise<void>): PointHandler => {
    let run = 0;
    let fired = false;
    return async (p) => {
      if (p === 'after-commit') run = 0;
      else if (p === point && ++run === k && !fired) {
        fired = true;
        await act();
      }
    };
  };

  for (const point of ['after-claim', 'before-commit'] as const) {
    it(`a crash at ${point} at the third row of a branch batch: none of the batch's effects commit; the rest run once`, async () => {
      const id = await startJoin(40);
      let crashed = false;
      const e = engineFor(t, {
        batchSize: 8,
        points: atRow(point, 3, () => {
          crashed = true;
          throw new Error('crash');
        }),
      });
      await expect(e.runSeries()).rejects.toThrow(/crash/);
      expect(crashed).toBe(true);
      expect(e.stats().branchBatched).toBeGreaterThan(0);
      // Exactly the branches whose nodes completed have their effect (the crashed batch's are gone).
      const done = await completedBranches(id);
      expect((await fx()).length).toBe(done);
      expect(done).toBeLessThan(40);
      // A fresh engine (the crashed one's copy is gone with it) finishes: each effect once.
      await engineFor(t, { batchSize: 8 }).drain({ concurrency: 2 });
      expect((await outcome(t, id)).status).toBe('completed');
      expect(await fx()).toEqual(range(40));
      expect(await afterJoin()).toBe(1);
    });
  }

  it('df.cancel during a branch batch: its write is refused and undone, nothing of it commits, nothing runs after', async () => {
    const id = await startJoin(60);
    let cancelled = false;
    const e = engineFor(t, {
      batchSize: 16,
      points: atRow('before-commit', 2, async () => {
        cancelled = true;
        await t.query('SELECT df.cancel($1)', [id]);
      }),
    });
    await e.runSeries();
    expect(cancelled).toBe(true);
    expect(e.stats().undone).toBeGreaterThanOrEqual(1);
    expect(await e.drain({ concurrency: 2 })).toBe(0);
    expect((await outcome(t, id)).status).toBe('cancelled');
    const done = await completedBranches(id);
    expect((await fx()).length).toBe(done);
    expect(done).toBeLessThan(60);
    expect(await afterJoin()).toBe(0);
  });

  it('a JOIN run in branch batches with a branch that fails, is retried, then fails for good: the JOIN fails once, the other effects once', async () => {
    const [retry] = await t.query<{ g: unknown }>(`SELECT df.retry('WITH a AS (INSERT INTO fx VALUES (1000) RETURNING n) SELECT 1 / (n - 1000) FROM a', 2, 0)::jsonb AS g`);
    const id = await startJoin(30, (i) => (i === 5 ? retry.g : { node_type: 'SQL', query: `INSERT INTO fx VALUES (${i}) RETURNING n` }));
    // One series with no time budget: claims grow 1, 2, 4, … whatever the machine's load, so the failing
    // branch runs in a branch batch.
    const e = engineFor(t, { batchSize: 16, batchBudgetMs: Number.POSITIVE_INFINITY });
    await e.runSeries();
    await e.drain({ concurrency: 2 });
    expect((await outcome(t, id)).status).toBe('failed');
    const events = await t.query<{ kind: string; attempt: number }>(`SELECT kind, attempt FROM df.events WHERE instance_id = $1 AND kind = 'attempt_failed' ORDER BY attempt`, [id]);
    expect(events.map((x) => x.attempt)).toEqual([1]);
    // The failing step's own effect never commits; every other branch that ran did so once.
    const got = await fx();
    expect(got).not.toContain(1000);
    expect(new Set(got).size).toBe(got.length);
    expect(await afterJoin()).toBe(0);
    expect(e.stats().branchBatched).toBeGreaterThan(0);
  });

  it('the steps of a branch batch go to the server in one message (one round trip for the batch, not one per branch)', async () => {
    const id = await startJoin(40);
    const texts: string[] = [];
    const wrap = (c: DbClient): DbClient => ({
      query: ((text: unknown, params?: unknown[]) => {
        texts.push(typeof text === 'string' ? text : String((text as { text?: string }).text));
        return c.query(text as never, params);
      }) as DbClient['query'],
      ...(c.queryUntilError ? { queryUntilError: (text: string) => (texts.push(text), c.queryUntilError!(text)) } : {}),
    });
    const db: Db = { withClient: (fn) => t.db.withClient((c) => fn(wrap(c))), withTransaction: (fn) => t.db.withTransaction((c) => fn(wrap(c))), end: async () => undefined };
    const e = engineFor(t, { db, batchSize: 16, batchBudgetMs: Number.POSITIVE_INFINITY });
    await e.runSeries();
    await e.drain({ concurrency: 2 });
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await fx()).toEqual(range(40));
    expect(e.stats().branchBatched).toBeGreaterThan(0);
    // The most branch steps one message carried: with a round trip per step it would be 1.
    const most = Math.max(...texts.map((q) => q.match(/INSERT INTO fx VALUES/g)?.length ?? 0));
    expect(most).toBeGreaterThanOrEqual(4);
  });
});
