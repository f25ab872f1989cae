/**
 * The copy an activation makes (snapshot.ts) is the engine's only once its transaction commits. Another
 * series of the same engine may claim a JOIN's branch between the activation's COMMIT and the activating
 * series recording its copy: that branch must not compute from the uncommitted copy (which shows nothing
 * running), whose refusal (PFS01) dropped the copy for the whole JOIN, so no branch write and no branch
 * batch ran (seen in 3 of 22 profile runs, bench/RESULTS.md).
 */
import { beforeEach, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';
import { createEngineCaches } from '../../src/engine/context.ts';
import type { Db, DbClient } from '../../src/engine/db.ts';

const t = useTestDb();

beforeEach(async () => {
  await t.query('DELETE FROM df.instances');
  await t.query('DROP TABLE IF EXISTS fx; CREATE TABLE fx (n int)');
});

/** t.db, calling `between` once, after the first COMMIT reached the server and before its answer is handed on. */
function pausingAfterCommit(between: () => Promise<void>): Db {
  let done = false;
  const wrap = (c: DbClient): DbClient => ({
    query: (async (text: string, params?: unknown[]) => {
      const res = await c.query(text, params);
      if (!done && /\bCOMMIT\b/.test(text)) {
        done = true;
        await between();
      }
      return res;
    }) as DbClient['query'],
  });
  return { withClient: (fn) => t.db.withClient((c) => fn(wrap(c))), withTransaction: (fn) => t.db.withTransaction((c) => fn(wrap(c))), end: async () => undefined };
}

it('a branch claimed between the activation COMMIT and its copy being recorded reads the rows; the copy stays complete and branch batches run', async () => {
  const n = 40;
  const leaves = Array.from({ length: n }, (_, i) => ({ node_type: 'SQL', query: `INSERT INTO fx VALUES (${i})` }));
  const graph = { node_type: 'JOIN', left_node: leaves[0], right_node: leaves[1], extra_nodes: leaves.slice(2) };
  const [{ id }] = await t.query<{ id: string }>('SELECT df.start($1::jsonb::text) AS id', [JSON.stringify(graph)]);
  const caches = createEngineCaches();
  // The other series: same caches, so it sees whatever the activating one left in them.
  const other = engineFor(t, { caches, batchSize: 1 });
  const a = engineFor(t, { caches, batchSize: 16, batchBudgetMs: Number.POSITIVE_INFINITY, db: pausingAfterCommit(async () => void (await other.runOnce())) });
  await a.runOnce();
  // The other series ran one branch in the window, from a fresh read (nothing assumed, nothing refused).
  expect(other.stats()).toMatchObject({ assumed: 0, stale: 0 });
  expect((await t.query<{ c: number }>('SELECT count(*)::int AS c FROM fx'))[0].c).toBe(2);
  // The activating series recorded its copy whole: the remaining branches run as branch batches.
  expect(caches.snapshots.get(id)?.complete).toBe(true);
  await a.drain({ concurrency: 2 });
  expect((await outcome(t, id)).status).toBe('completed');
  expect((await t.query<{ n: number }>('SELECT n FROM fx ORDER BY n')).map((r) => r.n)).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(a.stats().branchBatched).toBeGreaterThan(0);
});
