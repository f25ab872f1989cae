/**
 * A JOIN's branches finish side by side (migrations/0031_fan_out.sql, src/engine/fan-out.ts): a branch's
 * checkpoint that changes only its own branch's rows is written under a shared lock on the instance row,
 * the JOIN's count added to in SQL; the last branch's addition is refused and it fires the JOIN from a
 * fresh read. Effects are counted in a user table: each step once, the JOIN completed once.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();

beforeEach(async () => {
  await t.query('DELETE FROM df.instances');
  await t.query('DROP TABLE IF EXISTS fx; CREATE TABLE fx (n int); DROP TABLE IF EXISTS after_join; CREATE TABLE after_join (n int)');
});

const ins = (n: number) => `'INSERT INTO fx VALUES (${n}) RETURNING n'`;
const fx = async () => (await t.query<{ n: number }>('SELECT n FROM fx ORDER BY n')).map((r) => r.n);
const joinState = async (id: string) =>
  (await t.query<{ state: { done: number } }>(`SELECT state FROM df.nodes WHERE instance_id = $1 AND node_type = 'JOIN'`, [id]))[0].state;

async function target(id: string, query: string) {
  const [r] = await t.query<{ id: string }>('SELECT id FROM df.nodes WHERE instance_id = $1 AND query = $2', [id, query]);
  return { instanceId: id, nodeId: r.id };
}

describe('branch writes', () => {
  it('each branch but the last is a branch write adding to the count in SQL; a chain inside a branch is one too; the last fires the JOIN', async () => {
    // 'SELECT 0' first: the JOIN is activated by its checkpoint, which leaves the engine a complete copy.
    const id = await start(t, `'SELECT 0' ~> df.join3(${ins(1)} ~> ${ins(2)}, ${ins(3)}, ${ins(4)}) ~> 'INSERT INTO after_join VALUES (1)'`);
    const e = engineFor(t);
    expect(await e.runOnce()).toMatchObject({ kind: 'step' });
    // Inside the first branch: the chain's next step is activated, nothing counted.
    await e.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (1) RETURNING n') });
    expect(e.stats()).toMatchObject({ branches: 1, stale: 0 });
    expect(await joinState(id)).toEqual({ done: 0 });
    await e.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (3) RETURNING n') });
    await e.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (2) RETURNING n') });
    expect(e.stats()).toMatchObject({ branches: 3, stale: 0 });
    expect(await joinState(id)).toEqual({ done: 2 });
    // The last branch: the state machine fires the JOIN, which is no branch write (the exclusive lock).
    await e.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (4) RETURNING n') });
    expect(e.stats()).toMatchObject({ branches: 3, stale: 0 });
    expect(await joinState(id)).toEqual({ done: 3 });
    await e.drain();
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await fx()).toEqual([1, 2, 3, 4]);
    expect(await t.query('SELECT count(*)::int AS n FROM after_join')).toEqual([{ n: 1 }]);
  });

  it('a copy that undercounts: the last branch\'s addition is refused (PFS01) and it fires the JOIN from a fresh read', async () => {
    const id = await start(t, `'SELECT 0' ~> df.join3(${ins(1)}, ${ins(2)}, ${ins(3)})`);
    const a = engineFor(t);
    const b = engineFor(t);
    await a.runOnce();
    // B (no copy) finishes two branches behind A's back: A's copy still counts none.
    await b.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (1) RETURNING n') });
    await b.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (2) RETURNING n') });
    expect(b.stats()).toMatchObject({ branches: 0 });
    expect(await a.runOnce({ target: await target(id, 'INSERT INTO fx VALUES (3) RETURNING n') })).toMatchObject({ kind: 'step' });
    expect(a.stats()).toMatchObject({ branches: 1, stale: 1 });
    expect(await outcome(t, id)).toMatchObject({
      status: 'completed',
      result: [1, 2, 3].map((n) => ({ rows: [{ n }], row_count: 1 })),
    });
    expect(await fx()).toEqual([1, 2, 3]);
  });

  it('200 branches on 4 series: every effect once, the JOIN completed once, its result in branch order', async () => {
    const leaves = Array.from({ length: 200 }, (_, i) => ({ node_type: 'SQL', query: `INSERT INTO fx VALUES (${i}) RETURNING n` }));
    const join = JSON.stringify({ node_type: 'JOIN', left_node: leaves[0], right_node: leaves[1], extra_nodes: leaves.slice(2) });
    const id = await start(t, `'${join.replaceAll("'", "''")}'`);
    const e = engineFor(t);
    await e.drain({ concurrency: 4 });
    const o = await outcome(t, id);
    expect(o.status).toBe('completed');
    expect(await fx()).toEqual(leaves.map((_, i) => i));
    expect((o.result as { rows: { n: number }[] }[]).map((r) => r.rows[0].n)).toEqual(leaves.map((_, i) => i));
    expect(await joinState(id)).toEqual({ done: 200 });
    expect(e.stats().branches).toBeGreaterThanOrEqual(150);
  });

  it('df.cancel between a branch\'s step and its commit: the branch write is refused, the step rolled back', async () => {
    const id = await start(t, `'SELECT 0' ~> df.join3(${ins(1)}, ${ins(2)}, ${ins(3)})`);
    let cancelAt: string | null = null;
    const e = engineFor(t, {
      points: async (point, ctx) => {
        if (point === 'before-commit' && ctx.nodeId === cancelAt) await t.query('SELECT df.cancel($1)', [id]);
      },
    });
    await e.runOnce();
    const one = await target(id, 'INSERT INTO fx VALUES (1) RETURNING n');
    cancelAt = one.nodeId;
    expect(await e.runOnce({ target: one })).toMatchObject({ kind: 'withdrawn' });
    expect(e.stats()).toMatchObject({ branches: 1, stale: 1 });
    expect((await outcome(t, id)).status).toBe('cancelled');
    expect(await e.drain()).toBe(0);
    expect(await fx()).toEqual([]);
  });

  it('a write finishing several branches of one JOIN adds to its count in one update (0038); past join_max it is refused, the count kept', async () => {
    const id = await start(t, `'SELECT 0' ~> df.join3(${ins(1)}, ${ins(2)}, ${ins(3)})`);
    await engineFor(t).runOnce();
    const [{ join, generation }] = await t.query<{ join: string; generation: number }>(
      `SELECT n.id AS join, i.generation FROM df.nodes n JOIN df.instances i ON i.id = n.instance_id WHERE n.instance_id = $1 AND n.node_type = 'JOIN'`,
      [id],
    );
    const expect_ = JSON.stringify({ instance: { status: 'running', generation }, nodes: {}, scopes: {} });
    const changes = (k: number) => JSON.stringify({ share: true, nodes: Array.from({ length: k }, () => ({ id: join, join_max: 2 })) });
    // As a branch batch of two sends it: two join_max changes for one JOIN.
    // Counted in the session's stats not yet flushed (PostgreSQL 15+ keeps earlier transactions' there too).
    const updates = await t.db.withTransaction(async (c) => {
      const upd = async () =>
        (await c.query<{ n: number }>(`SELECT n_tup_upd::int AS n FROM pg_stat_xact_user_tables WHERE schemaname = 'df' AND relname = 'nodes'`)).rows[0].n;
      const before = await upd();
      await c.query('SELECT df._apply($1, $2::jsonb, $3::jsonb)', [id, changes(2), expect_]);
      return (await upd()) - before;
    });
    expect(updates).toBe(1);
    expect(await joinState(id)).toEqual({ done: 2 });
    await expect(t.query('SELECT df._apply($1, $2::jsonb, $3::jsonb)', [id, changes(1), expect_])).rejects.toMatchObject({ code: 'PFS01' });
    expect(await joinState(id)).toEqual({ done: 2 });
  });

  it('df._apply refuses a branch write that changes the instance (PFS01), writing nothing', async () => {
    const id = await start(t, `'SELECT 0' ~> (${ins(1)} & ${ins(2)})`);
    await engineFor(t).runOnce();
    await expect(
      t.query(`SELECT df._apply($1, '{"share": true, "instance": {"status": "completed"}}'::jsonb, '{}'::jsonb)`, [id]),
    ).rejects.toMatchObject({ code: 'PFS01' });
    expect((await t.query<{ status: string }>('SELECT status FROM df.instances WHERE id = $1', [id]))[0].status).toBe('running');
  });
});
