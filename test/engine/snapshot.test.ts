/**
 * The engine computes a checkpoint from its own copy of the rows its previous checkpoint left (a
 * snapshot) and df._apply checks that copy under the instance lock (0018, PFS01). These tests make the
 * copy stale in between (another engine's checkpoint, df.cancel) and count effects in a user table:
 * the stale checkpoint must be computed again from the rows themselves, and nothing may run twice.
 * Also runSeries, whose COMMIT claims the next row: a row claimed ahead is given back when it stops.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();

beforeEach(async () => {
  await t.query('DELETE FROM df.instances');
  await t.query('DROP TABLE IF EXISTS fx; CREATE TABLE fx (n int)');
});

async function nodeId(query: string): Promise<{ instanceId: string; nodeId: string }> {
  const [r] = await t.query<{ instance_id: string; id: string }>('SELECT instance_id, id FROM df.nodes WHERE query = $1', [query]);
  return { instanceId: r.instance_id, nodeId: r.id };
}

const fx = async () => (await t.query<{ n: number }>('SELECT n FROM fx ORDER BY n')).map((r) => r.n);

describe('checkpoints from the engine’s copy', () => {
  it('a chain is checkpointed from the copy, without a read per step', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)' ~> 'INSERT INTO fx VALUES (2)' ~> 'INSERT INTO fx VALUES (3)'`);
    const e = engineFor(t);
    await e.drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    expect(await fx()).toEqual([1, 2, 3]);
    // Every step's checkpoint came from the copy (the first one from the activation), none was stale.
    expect(e.stats()).toMatchObject({ assumed: 3, stale: 0 });
  });

  it('another engine’s checkpoint in between: a branch write from the copy is refused for the last branch, which reads the rows and fires the join', async () => {
    const id = await start(t, `('INSERT INTO fx VALUES (1)' ~> 'INSERT INTO fx VALUES (2)') & 'INSERT INTO fx VALUES (3)'`);
    const a = engineFor(t);
    const b = engineFor(t);
    // A activates the instance and runs the first branch's first step: it now holds a copy of the rows.
    const first = await nodeId('INSERT INTO fx VALUES (1)');
    expect(await a.runOnce({ target: { instanceId: id, nodeId: (await t.query<{ root_node: string }>('SELECT root_node FROM df.instances WHERE id = $1', [id]))[0].root_node } })).toMatchObject({ kind: 'step', nodeId: first.nodeId });
    // B finishes the second branch: the JOIN row changes behind A's back.
    expect(await b.runOnce({ target: await nodeId('INSERT INTO fx VALUES (3)') })).toMatchObject({ kind: 'step' });
    // A finishes the first branch. Its copy still has the JOIN waiting for both branches, so from the copy
    // this is a branch write (0031: the count added to in SQL); the database refuses the addition because
    // the count says this branch is the last (PFS01), and A reads the rows and fires the JOIN.
    expect(await a.runOnce({ target: await nodeId('INSERT INTO fx VALUES (2)') })).toMatchObject({ kind: 'step' });
    expect(a.stats()).toMatchObject({ assumed: 2, stale: 1, branches: 1 });
    expect(await outcome(t, id)).toMatchObject({
      status: 'completed',
      result: [{ rows: [], row_count: 0 }, { rows: [], row_count: 0 }],
    });
    expect(await fx()).toEqual([1, 2, 3]);
  });

  it('a chain passed between engines: the copy that missed a step is not used', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)' ~> 'INSERT INTO fx VALUES (2)' ~> 'INSERT INTO fx VALUES (3)'`);
    const a = engineFor(t);
    const b = engineFor(t);
    expect(await a.runOnce()).toMatchObject({ kind: 'step' });
    expect(await b.runOnce()).toMatchObject({ kind: 'step' });
    expect(await a.runOnce()).toMatchObject({ kind: 'step' });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    expect(await fx()).toEqual([1, 2, 3]);
    expect(a.stats()).toMatchObject({ assumed: 1, stale: 0 });
  });

  it('df.cancel between the step and its commit: the step is rolled back, the instance stays cancelled', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)' ~> 'INSERT INTO fx VALUES (2)' ~> 'INSERT INTO fx VALUES (3)'`);
    let cancelAt: string | null = null;
    const e = engineFor(t, {
      points: async (point, ctx) => {
        if (point === 'before-commit' && ctx.nodeId === cancelAt) await t.query(`SELECT df.cancel($1)`, [id]);
      },
    });
    await e.runOnce();
    cancelAt = (await nodeId('INSERT INTO fx VALUES (2)')).nodeId;
    expect(await e.runOnce()).toMatchObject({ kind: 'withdrawn' });
    expect(e.stats().stale).toBe(1);
    expect((await outcome(t, id)).status).toBe('cancelled');
    expect(await e.drain()).toBe(0);
    expect(await fx()).toEqual([1]);
  });
});

describe('runSeries', () => {
  it('runs a chain on one session, through a lease step, to the end', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)' ~> 'VACUUM fx' ~> 'INSERT INTO fx VALUES (2)'`);
    const e = engineFor(t);
    const kinds: string[] = [];
    expect(await e.runSeries({ onResult: (r) => kinds.push(r.kind) })).toBe(3);
    expect(kinds).toEqual(['step', 'lease', 'step']);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    expect(await fx()).toEqual([1, 2]);
  });

  it('stopped with a row claimed ahead, it gives the row back', async () => {
    const ids = [await start(t, `'INSERT INTO fx VALUES (1)'`), await start(t, `'INSERT INTO fx VALUES (2)'`)];
    const e = engineFor(t);
    let steps = 0;
    // The first step's COMMIT claims the second instance's root; then the series is told to stop.
    expect(await e.runSeries({ more: () => steps === 0, onResult: () => steps++ })).toBe(1);
    expect(await fx()).toEqual([1]);
    // Nothing holds the row: a NOWAIT lock gets it, and another engine runs it.
    await t.query(`BEGIN; SELECT 1 FROM df.nodes WHERE instance_id = '${ids[1]}' FOR UPDATE NOWAIT; ROLLBACK`);
    expect(await engineFor(t).drain()).toBe(1);
    expect(await fx()).toEqual([1, 2]);
    for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
  });
});

describe('reads that grow round by round', () => {
  it('the last leaf of 15 nested JOINs completes them all in one checkpoint (a read round per level)', async () => {
    const depth = 15;
    let dsl = `'SELECT ${depth} AS n'`;
    for (let i = depth - 1; i >= 0; i--) dsl = `'SELECT ${i} AS n' & (${dsl})`;
    const id = await start(t, dsl);
    const e = engineFor(t);
    const [{ root_node }] = await t.query<{ root_node: string }>('SELECT root_node FROM df.instances WHERE id = $1', [id]);
    await e.runOnce({ target: { instanceId: id, nodeId: root_node } });
    // Every leaf but the innermost, then the innermost: its checkpoint closes all 15 JOINs.
    for (let i = 0; i <= depth; i++) {
      const target = await nodeId(`SELECT ${i} AS n`);
      const [{ status }] = await t.query<{ status: string }>('SELECT status FROM df.nodes WHERE instance_id = $1 AND id = $2', [id, target.nodeId]);
      if (status === 'running') expect(await e.runOnce({ target })).toMatchObject({ kind: 'step' });
    }
    const o = await outcome(t, id);
    expect(o.status).toBe('completed');
    let expected: unknown = { rows: [{ n: depth }], row_count: 1 };
    for (let i = depth - 1; i >= 0; i--) expected = [{ rows: [{ n: i }], row_count: 1 }, expected];
    expect(o.result).toEqual(expected);
  });
});

describe('due times', () => {
  it('a row made ready earlier in the same millisecond is claimed (run_at has microseconds, now has not)', async () => {
    const id = await start(t, `'INSERT INTO fx VALUES (1)'`);
    await t.query(`UPDATE df.nodes SET run_at = '2026-01-01 00:00:00.000500+00' WHERE instance_id = $1`, [id]);
    const e = engineFor(t);
    expect(await e.runOnce({ now: new Date('2025-12-31T23:59:59.999Z') })).toBeNull();
    expect(await e.runOnce({ now: new Date('2026-01-01T00:00:00.000Z') })).toMatchObject({ kind: 'step' });
    expect(await fx()).toEqual([1]);
  });
});
