/**
 * Engines sharing their caches (EngineOptions.caches), as a Workers isolate's invocations do: the role,
 * an instance's graph and the engine's copy of its rows carry over, so a later engine's step reads none of
 * them; a copy made stale by an engine outside the share is caught (PFS01) and nothing runs twice. A named
 * claim of an instance whose graph is not cached loads the graph in the claim's round trip.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';
import { createEngineCaches } from '../../src/engine/context.ts';
import type { Db, DbClient } from '../../src/engine/db.ts';

const t = useTestDb();

beforeEach(async () => {
  await t.query('DELETE FROM df.instances');
  await t.query('DROP TABLE IF EXISTS fx; CREATE TABLE fx (n int)');
});

/** t.db, recording the text of every query. */
function recording(texts: string[]): Db {
  const wrap = (c: DbClient): DbClient => ({
    query: ((text: unknown, params?: unknown[]) => {
      texts.push(typeof text === 'string' ? text : String((text as { text?: string }).text));
      return c.query(text as never, params);
    }) as DbClient['query'],
  });
  return { withClient: (fn) => t.db.withClient((c) => fn(wrap(c))), withTransaction: (fn) => t.db.withTransaction((c) => fn(wrap(c))), end: async () => undefined };
}

const ready = async (id: string) => (await t.query<{ id: string }>('SELECT id FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL', [id]))[0];
const fx = async () => (await t.query<{ n: number }>('SELECT n FROM fx ORDER BY n')).map((r) => r.n);

describe('engines sharing caches', () => {
  it('a new engine on shared caches runs a chain step in three queries (no role, graph or row read)', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)' ~> 'INSERT INTO fx VALUES (2)' ~> 'INSERT INTO fx VALUES (3)'`);
    const caches = createEngineCaches();
    const texts: string[] = [];
    // The root: the claim carries the graph's load.
    await engineFor(t, { db: recording(texts), caches }).runOnce({ target: { instanceId: id, nodeId: (await ready(id)).id } });
    expect(texts[0]).toMatch(/^BEGIN; SELECT c\.\*.*df\._claim\(.*SAVEPOINT pgflare_step; SELECT id, node_type, query, result_name, left_node, right_node, options FROM df\.nodes WHERE instance_id = /s);
    expect(texts.filter((q) => q.includes('FROM df.nodes WHERE instance_id'))).toHaveLength(1);
    expect(caches.workerRole).toBeTruthy();
    for (const n of [2, 3]) {
      texts.length = 0;
      const e = engineFor(t, { db: recording(texts), caches });
      await e.runOnce({ target: { instanceId: id, nodeId: (await ready(id)).id } });
      expect(texts).toHaveLength(3);
      expect(texts[1]).toBe(`INSERT INTO fx VALUES (${n})`);
      expect(e.stats()).toMatchObject({ assumed: 1, stale: 0 });
    }
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    expect(await fx()).toEqual([1, 2, 3]);
  });

  it('a shared copy made stale by an engine outside the share is not used: the rows are read; nothing runs twice', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)' ~> 'INSERT INTO fx VALUES (2)' ~> 'INSERT INTO fx VALUES (3)'`);
    const caches = createEngineCaches();
    await engineFor(t, { caches }).runOnce({ target: { instanceId: id, nodeId: (await ready(id)).id } });
    // Another engine (another isolate) runs the second step: the shared copy still has it ready.
    expect(await engineFor(t).runOnce({ target: { instanceId: id, nodeId: (await ready(id)).id } })).toMatchObject({ kind: 'step' });
    const e = engineFor(t, { caches });
    expect(await e.runOnce({ target: { instanceId: id, nodeId: (await ready(id)).id } })).toMatchObject({ kind: 'step' });
    // The copy does not know the row the claim returned (its stamp is newer): the rows are read instead.
    expect(e.stats()).toMatchObject({ assumed: 0 });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    expect(await fx()).toEqual([1, 2, 3]);
  });
});
