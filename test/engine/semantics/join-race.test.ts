/** SPEC §3.4 JOIN and §3.5 RACE. */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { engineFor, later, outcome, start } from '../../helpers/engine.ts';
import { gate, waitUntilBlocked } from '../../helpers/locks.ts';
import { instanceRow, lit, node, nodes, queued, ranFor } from './util.ts';
import { createEngine } from '../../../src/engine/engine.ts';
import type { PointHandler } from '../../../src/engine/points.ts';
import { createPgDb } from '../../../src/runtime/node/pg-db.ts';

const t = useTestDb();

const run = async (dsl: string, concurrency = 1) => {
  const id = await start(t, dsl);
  await engineFor(t).drain({ concurrency });
  return id;
};

describe('§3.4 JOIN', () => {
  it('JOIN waits for every branch even after one fails', async () => {
    await t.query('CREATE TABLE j_wait (v text)');
    const id = await start(t, `'SELECT 1/0' & (df.sleep(10) ~> 'INSERT INTO j_wait VALUES (''late'')')`);
    const e = engineFor(t);
    await e.drain();
    // branch 1 failed already; the JOIN is still running because branch 2 sleeps
    expect((await outcome(t, id)).status).toBe('running');
    expect((await node(t, id, 'JOIN')).status).toBe('running');
    await e.drain({ now: later(11) });
    expect(await t.query('SELECT v FROM j_wait')).toEqual([{ v: 'late' }]);
    expect(await outcome(t, id)).toMatchObject({
      status: 'failed',
      output: 'JOIN branch 1 failed: SQL execution failed: error returned from database: division by zero',
    });
  });

  it('JOIN branch <i> failed is 1-based and reports the first failed branch in order', async () => {
    const id = await run(`df.join3('SELECT 1', 'SELECT 1/0', ${lit(`SELECT 'x'::int`)})`);
    const o = await outcome(t, id);
    expect(o.output).toBe('JOIN branch 2 failed: SQL execution failed: error returned from database: division by zero');
    const join = await node(t, id, 'JOIN');
    expect(join.status).toBe('failed');
    expect(join.result).toBe(o.output);
  });

  it('JOIN failure text nests for nested joins', async () => {
    const id = await run(`('SELECT 1' & 'SELECT 1/0') & 'SELECT 2'`);
    expect((await outcome(t, id)).output).toBe(
      'JOIN branch 1 failed: JOIN branch 2 failed: SQL execution failed: error returned from database: division by zero',
    );
  });

  it('JOIN re-raises a break from a branch (first in branch order wins over a later failure)', async () => {
    await t.query('CREATE TABLE j_brk (n int)');
    const id = await start(t, `@> ('INSERT INTO j_brk VALUES (1)' ~> (df.break('done') & 'SELECT 1/0'))`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: 'done' });
    expect(await t.query('SELECT count(*)::int AS n FROM j_brk')).toEqual([{ n: 1 }]);
  });

  it('JOIN: an earlier failure hides a later break', async () => {
    const id = await start(t, `@> ('SELECT 1/0' & df.break('done'))`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({
      status: 'failed',
      output: 'JOIN branch 1 failed: SQL execution failed: error returned from database: division by zero',
    });
  });

  it('JOIN merges branch named results into the parent in branch order (later wins)', async () => {
    const id = await run(
      `('SELECT 1 AS v' |=> 'a' ~> 'SELECT 10 AS v' |=> 'shared') & ('SELECT 2 AS v' |=> 'b' ~> 'SELECT 20 AS v' |=> 'shared') ~> 'SELECT $a AS a, $b AS b, $shared AS s'`,
      2,
    );
    expect((await outcome(t, id)).result).toEqual({ rows: [{ a: 1, b: 2, s: 20 }], row_count: 1 });
  });

  it('JOIN branches see the parent named results', async () => {
    const id = await run(`'SELECT 7 AS v' |=> 'p' ~> ('SELECT $p + 1 AS x' & 'SELECT $p + 2 AS y')`);
    expect((await outcome(t, id)).result).toEqual([
      { rows: [{ x: 8 }], row_count: 1 },
      { rows: [{ y: 9 }], row_count: 1 },
    ]);
  });

  it('JOIN branches see the captured vars and {sys_label} (test 19)', async () => {
    await t.query(`SELECT df.setvar('greeting', 'hi')`);
    const id = await start(t, `'SELECT ''{greeting}'' AS g' & 'SELECT ''{sys_label}:{sys_instance_id}'' AS l'`, 'lbl');
    await t.query(`SELECT df.clearvars()`);
    await engineFor(t).drain();
    expect((await outcome(t, id)).result).toEqual([
      { rows: [{ g: 'hi' }], row_count: 1 },
      { rows: [{ l: `lbl:${id}` }], row_count: 1 },
    ]);
  });

  it('JOIN of 3 via df.join3: result array in branch order', async () => {
    // branch 1 finishes last (after a sleep): order is branch order, not finishing order
    const id = await start(t, `df.join3(df.sleep(5) ~> 'SELECT 1 AS a', 'SELECT 2 AS b', 'SELECT 3 AS c')`);
    const e = engineFor(t);
    await e.drain();
    await e.drain({ now: later(6) });
    expect((await outcome(t, id)).result).toEqual([
      { rows: [{ a: 1 }], row_count: 1 },
      { rows: [{ b: 2 }], row_count: 1 },
      { rows: [{ c: 3 }], row_count: 1 },
    ]);
  });

  it('JOIN with raw JSON extra_nodes: any number of branches, in order left, right, extras', async () => {
    const sql = (q: string) => ({ node_type: 'SQL', query: q });
    const env = JSON.stringify({
      node_type: 'JOIN',
      left_node: sql('SELECT 1 AS n'),
      right_node: sql('SELECT 2 AS n'),
      extra_nodes: [sql('SELECT 3 AS n'), sql('SELECT 4 AS n'), sql('SELECT 5 AS n')],
    });
    const id = await run(lit(env), 2);
    const r = (await outcome(t, id)).result as { rows: { n: number }[] }[];
    expect(r.map((x) => x.rows[0].n)).toEqual([1, 2, 3, 4, 5]);
  });

  it('nested joins nest arrays', async () => {
    const id = await run(`('SELECT 1 AS a' & 'SELECT 2 AS b') & 'SELECT 3 AS c'`);
    expect((await outcome(t, id)).result).toEqual([
      [
        { rows: [{ a: 1 }], row_count: 1 },
        { rows: [{ b: 2 }], row_count: 1 },
      ],
      { rows: [{ c: 3 }], row_count: 1 },
    ]);
  });

  it('a named JOIN stores the array', async () => {
    const id = await run(`('SELECT 1 AS a' & 'SELECT 2 AS b') |=> 'pair' ~> 'SELECT $pair::jsonb -> 1 -> ''rows'' -> 0 ->> ''b'' AS b'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ b: '2' }], row_count: 1 });
  });
});

describe('concurrency (drain with 2 workers)', () => {
  it('JOIN counting under concurrent branch checkpoints: every branch counted once', async () => {
    const sql = (i: number) => ({ node_type: 'SQL', query: `SELECT pg_sleep(0.03), ${i} AS n` });
    const env = JSON.stringify({ node_type: 'JOIN', left_node: sql(1), right_node: sql(2), extra_nodes: [3, 4, 5, 6].map(sql) });
    const id = await run(lit(env), 2);
    const r = (await outcome(t, id)).result as { rows: { n: number }[] }[];
    expect(r.map((x) => x.rows[0].n)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await node(t, id, 'JOIN')).status).toBe('completed');
  });

  /**
   * Both branches of `op` claimed by two workers and run to their checkpoints at once: worker A's
   * checkpoint (holding the instance row) is parked before its commit until worker B has run its branch
   * and waits for the instance row in its own checkpoint; then A commits and B goes on.
   */
  async function bothAtOnce(op: '&' | '|') {
    await t.query('CREATE TABLE IF NOT EXISTS both_ran (side text); CREATE TABLE IF NOT EXISTS after_both (n int); TRUNCATE both_ran, after_both');
    const leaf = (side: string) => lit(`INSERT INTO both_ran VALUES ('${side}') RETURNING side`);
    // 'SELECT 0' first: the start runs it in the activating transaction; a JOIN or RACE activated by the
    // start would run its first branch there too, before any other worker could claim the second.
    const id = await start(t, `'SELECT 0' ~> (${leaf('l')} ${op} ${leaf('r')}) ~> 'INSERT INTO after_both VALUES (1)'`);
    await engineFor(t).runOnce();
    const l = await node(t, id, 'SQL', `'l'`);
    const r = await node(t, id, 'SQL', `'r'`);
    const claimed: string[] = [];
    const g = gate('before-commit');
    const worker = (app: string, points: PointHandler) => {
      const db = createPgDb({ connectionString: t.url(), max: 1, applicationName: app });
      return { db, engine: createEngine({ db, points }) };
    };
    const a = worker('both-a', (p, ctx) => (p === 'after-claim' ? void claimed.push(ctx.nodeId) : g.handler(p)));
    const b = worker('both-b', (p, ctx) => void (p === 'after-claim' && claimed.push(ctx.nodeId)));
    try {
      const ra = a.engine.runOnce({ target: { instanceId: id, nodeId: l.node_id } });
      await g.arrived;
      const rb = b.engine.runOnce({ target: { instanceId: id, nodeId: r.node_id } });
      // B ran its branch and its checkpoint waits for the instance row that A's checkpoint holds.
      await waitUntilBlocked(t.superuser, 'both-b');
      const [waiting] = await t.superuser.query(`SELECT query FROM pg_stat_activity WHERE application_name = 'both-b'`).then((x) => x.rows);
      expect(waiting.query).toContain('df._lock_and_load');
      expect(claimed).toEqual([l.node_id, r.node_id]);
      g.release();
      const results = [await ra, await rb];
      await engineFor(t).drain();
      return { id, l, r, results };
    } finally {
      g.release();
      await Promise.all([a.db.end(), b.db.end()]);
    }
  }

  it('JOIN with both branches finishing at once: both claimed and counted, the JOIN completes once', async () => {
    const { id, l, r, results } = await bothAtOnce('&');
    const join = await node(t, id, 'JOIN');
    const after = await node(t, id, 'SQL', 'after_both');
    expect(results).toMatchObject([
      { kind: 'step', nodeId: l.node_id, ready: [] },
      { kind: 'step', nodeId: r.node_id, ready: [{ nodeId: after.node_id }] },
    ]);
    expect(join.status).toBe('completed');
    expect(join.result).toEqual([
      { rows: [{ side: 'l' }], row_count: 1 },
      { rows: [{ side: 'r' }], row_count: 1 },
    ]);
    expect(await t.query('SELECT side FROM both_ran ORDER BY side')).toEqual([{ side: 'l' }, { side: 'r' }]);
    expect(await t.query('SELECT count(*)::int AS n FROM after_both')).toEqual([{ n: 1 }]);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await queued(t, id)).toBe(0);
  });

  it('RACE with both branches finishing at once: one winner, the other abandoned (its effects rolled back)', async () => {
    const { id, l, r, results } = await bothAtOnce('|');
    const after = await node(t, id, 'SQL', 'after_both');
    // The first to commit wins; the other finds the RACE decided at its checkpoint and is withdrawn.
    expect(results).toMatchObject([
      { kind: 'step', nodeId: l.node_id, ready: [{ nodeId: after.node_id }] },
      { kind: 'withdrawn', nodeId: r.node_id, ready: [] },
    ]);
    expect((await node(t, id, 'RACE')).result).toEqual({ rows: [{ side: 'l' }], row_count: 1 });
    expect(await t.query('SELECT side FROM both_ran')).toEqual([{ side: 'l' }]);
    expect(await t.query('SELECT count(*)::int AS n FROM after_both')).toEqual([{ n: 1 }]);
    expect((await outcome(t, id)).status).toBe('completed');
    expect((await node(t, id, 'SQL', `'r'`)).inferred_status).toBe('skipped');
    expect(await queued(t, id)).toBe(0);
  });
});

describe('§3.5 RACE', () => {
  it('RACE: first finisher wins; result raw, its names merged', async () => {
    const id = await run(`(df.sleep(30) ~> 'SELECT ''slow'' AS w') | ('SELECT ''fast'' AS w' |=> 'won') ~> 'SELECT $won AS got'`);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ got: 'fast' }], row_count: 1 } });
    const race = await node(t, id, 'RACE');
    expect(race.result).toEqual({ rows: [{ w: 'fast' }], row_count: 1 });
  });

  it('RACE: loser nodes keep physical status and read skipped; nothing of the loser stays queued', async () => {
    const id = await run(`(df.sleep(30) ~> 'SELECT ''slow'' AS w') | 'SELECT ''fast'' AS w'`);
    expect((await outcome(t, id)).status).toBe('completed');
    const sleep = await node(t, id, 'SLEEP');
    expect(sleep.status).toBe('running');
    expect(sleep.inferred_status).toBe('skipped');
    const slow = await node(t, id, 'SQL', 'slow');
    expect(slow.status).toBe('pending');
    expect(slow.inferred_status).toBe('skipped');
    expect(await queued(t, id)).toBe(0);
    // time passing changes nothing
    expect(await ranFor(engineFor(t), id, later(60))).toEqual([]);
  });

  it('RACE: failure of the first finisher fails the RACE (RACE left branch failed: …)', async () => {
    const id = await run(`'SELECT 1/0' | (df.sleep(5) ~> 'SELECT 1')`);
    expect(await outcome(t, id)).toMatchObject({
      status: 'failed',
      output: 'RACE left branch failed: SQL execution failed: error returned from database: division by zero',
    });
  });

  it('RACE: right branch failure text', async () => {
    const id = await run(`df.sleep(5) | 'SELECT 1/0'`);
    expect((await outcome(t, id)).output).toBe('RACE right branch failed: SQL execution failed: error returned from database: division by zero');
  });

  it('RACE: a break in the winning branch is re-raised to the loop', async () => {
    await t.query('CREATE TABLE r_brk (n int)');
    const id = await start(t, `df.loop('INSERT INTO r_brk VALUES (1)' ~> df.race(df.break('race-done'), 'SELECT pg_sleep(0)'))`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: 'race-done' });
    expect(await t.query('SELECT count(*)::int AS n FROM r_brk')).toEqual([{ n: 1 }]);
    // the race was decided while starting: the loser never started and nothing is queued
    const loser = await node(t, id, 'SQL', 'pg_sleep');
    expect(loser.status).toBe('pending');
    expect(loser.inferred_status).toBe('skipped');
    expect(await queued(t, id)).toBe(0);
  });

  it('RACE decided while starting: a losing LOOP is stamped failed and never runs', async () => {
    await t.query('CREATE TABLE never (n int)');
    const id = await start(t, `'SELECT 0' ~> df.loop(df.race(df.break('x'), df.loop('INSERT INTO never VALUES (1)'))) ~> 'SELECT 1 AS after'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ after: 1 }] } });
    const loops = (await nodes(t, id)).filter((n) => n.node_type === 'LOOP');
    const loser = loops.find((n) => n.result === 'Loop branch cancelled after losing RACE')!;
    expect(loser).toBeDefined();
    expect(loser.status).toBe('failed');
    expect(loser.stamp).toMatch(new RegExp(`^${id}::1::[0-9a-f]{8}::1::${loser.node_id}::1$`));
    expect(await t.query('SELECT * FROM never')).toEqual([]);
    expect(await queued(t, id)).toBe(0);
  });

  it('RACE: a winner that breaks out of a non-root loop hands its named results to the suffix', async () => {
    const id = await start(
      t,
      `'SELECT 0' ~> df.loop(('SELECT 5 AS v' |=> 'y' ~> df.break('b')) | df.sleep(30)) ~> 'SELECT $y AS y'`,
    );
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ y: 5 }], row_count: 1 } });
  });

  it('RACE: a losing LOOP is stamped failed "Loop branch cancelled after losing RACE" with stamp <id>::1::<loop>::1', async () => {
    const id = await start(t, `df.loop(df.sleep(1) ~> 'SELECT 1') | (df.sleep(3) ~> 'SELECT ''done'' AS w')`);
    const e = engineFor(t);
    let now = new Date();
    for (let i = 0; i < 8; i++) {
      await e.drain({ now });
      now = later(1, now);
    }
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ w: 'done' }] } });
    const loop = await node(t, id, 'LOOP');
    expect(loop.status).toBe('failed');
    expect(loop.result).toBe('Loop branch cancelled after losing RACE');
    expect(loop.stamp).toBe(`${id}::1::${loop.node_id}::1`);
    expect(loop.stamp).toMatch(new RegExp(`^${id}::1::[0-9a-f]{8}::1$`));
    expect(await queued(t, id)).toBe(0);
    // 3 distinct scopes: root, loop branch, sql branch (test 57/63)
    const scopes = new Set((await nodes(t, id)).filter((n) => n.stamp).map((n) => n.stamp!.replace(/::\d+$/, '')));
    expect(scopes.size).toBe(3);
    expect((await instanceRow(t, id)).status).toBe('completed');
  });
});
