/** SPEC §3.6 LOOP and §3.7 BREAK. Time moves by hand: iterations are paced to 1 s. */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../../src/engine/engine.ts';
import { useTestDb } from '../../helpers/db.ts';
import { engineFor, later, outcome, start } from '../../helpers/engine.ts';
import { instanceRow, lit, node, nodes, queued, ranFor } from './util.ts';

const t = useTestDb();

/** Drains `steps` times, moving the clock 1.1 s each time; returns the final clock. */
async function spin(e: Engine, steps: number, now = new Date()): Promise<Date> {
  for (let i = 0; i < steps; i++) {
    await e.drain({ now });
    now = later(1.1, now);
  }
  return now;
}

const count = async (table: string) => (await t.query(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;

describe('§3.6 LOOP', () => {
  it('LOOP while-condition runs after the body (do-while: body runs once even if the condition is false)', async () => {
    await t.query('CREATE TABLE dw (n int)');
    const id = await start(t, `df.loop('INSERT INTO dw VALUES (1) RETURNING n', 'SELECT false')`);
    await spin(engineFor(t), 3);
    expect(await count('dw')).toBe(1);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ n: 1 }], row_count: 1 } });
  });

  it('LOOP ends with the body result of the last iteration (while = 4 iterations)', async () => {
    await t.query('CREATE TABLE w4 (id serial)');
    const id = await start(t, `df.loop('INSERT INTO w4 DEFAULT VALUES RETURNING id', 'SELECT count(*) < 4 FROM w4')`);
    await spin(engineFor(t), 8);
    expect(await count('w4')).toBe(4);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ id: 4 }], row_count: 1 } });
    const loop = await node(t, id, 'LOOP');
    expect(loop.result).toEqual({ rows: [{ id: 4 }], row_count: 1 });
  });

  it('LOOP pacing: an iteration shorter than 1 s waits; fixed now does not start iteration 2, now + 1 s does', async () => {
    await t.query('CREATE TABLE pace (n int)');
    const id = await start(t, `@> 'INSERT INTO pace VALUES (1)'`);
    const e = engineFor(t);
    const now = new Date();
    await e.drain({ now });
    expect(await count('pace')).toBe(1);
    await e.drain({ now });
    await e.drain({ now: later(0.5, now) });
    expect(await count('pace')).toBe(1);
    await e.drain({ now: later(1, now) });
    expect(await count('pace')).toBe(2);
    expect((await outcome(t, id)).status).toBe('running');
    await t.query(`SELECT df.cancel($1)`, [id]);
  });

  it('LOOP condition failure fails the loop', async () => {
    const id = await start(t, `df.loop('SELECT 1', 'SELECT 1/0')`);
    await spin(engineFor(t), 2);
    expect(await outcome(t, id)).toMatchObject({ status: 'failed', output: 'SQL execution failed: error returned from database: division by zero' });
    expect((await node(t, id, 'LOOP')).status).toBe('failed');
  });

  it('LOOP result_name receives the loop result on exit', async () => {
    const id = await start(t, `'SELECT 0' ~> (@> df.break('{"status": "done"}')) |=> 'lr' ~> 'SELECT $lr::jsonb ->> ''status'' AS s'`);
    await spin(engineFor(t), 2);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ s: 'done' }], row_count: 1 });
  });

  // An unknown name is left untouched (§4.2), so '$prev?' reads back literally while no `prev` is in scope.
  it('root LOOP drops named results each iteration', async () => {
    await t.query('CREATE TABLE rl (id serial, seen text)');
    const id = await start(
      t,
      `@> ('INSERT INTO rl (seen) VALUES (''$prev?'') RETURNING id' |=> 'prev' ~> ('SELECT count(*) >= 3 FROM rl' ?> df.break('x') !> 'SELECT 0'))`,
    );
    await spin(engineFor(t), 6);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await t.query('SELECT seen FROM rl ORDER BY id')).toEqual([{ seen: '$prev?' }, { seen: '$prev?' }, { seen: '$prev?' }]);
  });

  it('non-root LOOP carries named results across iterations', async () => {
    await t.query('CREATE TABLE nrl (id serial, seen text)');
    const id = await start(
      t,
      `'SELECT 0' ~> (@> ('INSERT INTO nrl (seen) VALUES (''$prev?'') RETURNING id' |=> 'prev' ~> ('SELECT count(*) >= 3 FROM nrl' ?> df.break('x') !> 'SELECT 0')))`,
    );
    await spin(engineFor(t), 6);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await t.query('SELECT seen FROM nrl ORDER BY id')).toEqual([{ seen: '$prev?' }, { seen: '1' }, { seen: '2' }]);
  });

  it('non-root LOOP (prefix ~> loop ~> suffix): prefix/suffix once, names flow in and out (tests 55/59)', async () => {
    await t.query('CREATE TABLE pre (n int); CREATE TABLE body (id serial, v int); CREATE TABLE suf (v int)');
    const id = await start(
      t,
      `'INSERT INTO pre VALUES (1) RETURNING 100 AS base' |=> 'base'
        ~> df.loop('INSERT INTO body (v) SELECT $base + count(*) FROM body RETURNING v' |=> 'last_val', 'SELECT count(*) < 3 FROM body')
        ~> 'INSERT INTO suf SELECT $last_val RETURNING v'`,
    );
    await spin(engineFor(t), 8);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ v: 102 }], row_count: 1 } });
    expect(await count('pre')).toBe(1);
    expect(await count('suf')).toBe(1);
    expect(await t.query('SELECT v FROM body ORDER BY id')).toEqual([{ v: 100 }, { v: 101 }, { v: 102 }]);
    const loop = await node(t, id, 'LOOP');
    expect(loop.stamp).toBe(`${id}::1::${loop.node_id}::3`);
    expect((await node(t, id, 'SQL', 'INSERT INTO pre')).stamp).toBe(`${id}::1`);
    expect((await node(t, id, 'SQL', 'INSERT INTO suf')).stamp).toBe(`${id}::1`);
    // the root generation did not move: the loop bumped its own scope
    expect((await instanceRow(t, id)).generation).toBe(1);
  });

  it('LOOP in a JOIN branch runs in the branch scope (exactly 3 stamp scopes, test 57)', async () => {
    await t.query('CREATE TABLE lj (id serial)');
    const id = await start(t, `df.loop('INSERT INTO lj DEFAULT VALUES RETURNING id', 'SELECT count(*) < 3 FROM lj') & 'SELECT ''side'' AS s'`);
    await spin(engineFor(t), 6);
    expect(await outcome(t, id)).toMatchObject({
      status: 'completed',
      result: [{ rows: [{ id: 3 }], row_count: 1 }, { rows: [{ s: 'side' }], row_count: 1 }],
    });
    const loop = await node(t, id, 'LOOP');
    expect(loop.stamp).toBe(`${id}::1::${loop.node_id}::3`);
    const scopes = new Set((await nodes(t, id)).filter((n) => n.stamp).map((n) => n.stamp!.replace(/::\d+$/, '')));
    expect(scopes).toEqual(new Set([id, `${id}::1::${loop.node_id}`, `${id}::1::${(await node(t, id, 'SQL', 'side')).node_id}`]));
  });

  it('LOOP failure in a JOIN branch: JOIN branch <i> failed, LOOP failed, sibling ran once (test 64)', async () => {
    await t.query('CREATE TABLE lf (n int); CREATE TABLE sib (n int)');
    const id = await start(
      t,
      `df.loop('INSERT INTO lf VALUES (1)' ~> 'SELECT 1 / (count(*) - 2)::int AS q FROM lf') & 'INSERT INTO sib VALUES (1)'`,
    );
    await spin(engineFor(t), 6);
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe('JOIN branch 1 failed: SQL execution failed: error returned from database: division by zero');
    expect(await count('lf')).toBe(2);
    expect(await count('sib')).toBe(1);
    const loop = await node(t, id, 'LOOP');
    expect(loop.status).toBe('failed');
    expect(loop.result).toContain('division by zero');
  });

  it('JOIN and RACE inside a non-root loop run each iteration (test 56)', async () => {
    await t.query('CREATE TABLE jl (n int); CREATE TABLE rl2 (n int)');
    const id = await start(
      t,
      `'SELECT 0' ~> df.loop(('INSERT INTO jl VALUES (1)' & 'INSERT INTO jl VALUES (2)') ~> (df.sleep(30) | 'INSERT INTO rl2 VALUES (1)'),
                              'SELECT count(*) < 3 FROM rl2') ~> 'SELECT ''after'' AS a'`,
    );
    await spin(engineFor(t), 8);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ a: 'after' }] } });
    expect(await count('jl')).toBe(6);
    expect(await count('rl2')).toBe(3);
    expect(await queued(t, id)).toBe(0);
    // no scope rows survive a finished instance's JOIN/RACE branches
    expect(await t.query('SELECT scope_id FROM df.scopes WHERE instance_id = $1 AND scope_id <> $1', [id])).toEqual([]);
  });

  it('root LOOP containing a JOIN runs exactly 3 iterations (test 62)', async () => {
    await t.query('CREATE TABLE rj (n int)');
    const id = await start(t, `df.loop('INSERT INTO rj VALUES (1)' & 'SELECT 1', 'SELECT count(*) < 3 FROM rj')`);
    await spin(engineFor(t), 8);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await count('rj')).toBe(3);
    expect((await instanceRow(t, id)).generation).toBe(3);
  });

  it('nested loops run in order 1.1 … 3.2 and leave nothing pending/running (test 65)', async () => {
    await t.query('CREATE TABLE o_n (n serial); CREATE TABLE nl (id serial, label text)');
    const cur = `(SELECT max(n) FROM o_n)`;
    const innerBody = lit(`INSERT INTO nl (label) SELECT ${cur} || '.' || (count(*) + 1) FROM nl WHERE label LIKE ${cur} || '.%'`);
    const innerCond = lit(`SELECT count(*) < 2 FROM nl WHERE label LIKE ${cur} || '.%'`);
    const id = await start(t, `df.loop('INSERT INTO o_n DEFAULT VALUES' ~> df.loop(${innerBody}, ${innerCond}), 'SELECT count(*) < 3 FROM o_n')`);
    await spin(engineFor(t), 20);
    expect((await outcome(t, id)).status).toBe('completed');
    expect((await t.query('SELECT label FROM nl ORDER BY id')).map((r) => r.label)).toEqual(['1.1', '1.2', '2.1', '2.2', '3.1', '3.2']);
    const ns = await nodes(t, id);
    expect(ns.filter((n) => n.inferred_status === 'pending' || n.inferred_status === 'running')).toEqual([]);
  });

  it('break in the while-condition ends the loop with its value: exactly "condition-done" (test 58)', async () => {
    const id = await start(t, `df.loop('SELECT 1', df.break('condition-done'))`);
    await spin(engineFor(t), 2);
    const [r] = await t.query(`SELECT df.result($1) AS r`, [id]);
    expect(r.r).toBe('"condition-done"');
    expect((await node(t, id, 'LOOP')).result).toBe('condition-done');

    const id2 = await start(t, `'SELECT 0' ~> df.loop('SELECT 1', df.break('condition-done')) ~> 'SELECT 1 AS after'`);
    await spin(engineFor(t), 2);
    expect((await outcome(t, id2)).status).toBe('completed');
    expect((await node(t, id2, 'LOOP')).result).toBe('condition-done');
  });

  it('LOOP: a break deep in the body (through IF/THEN) ends the loop with the break value', async () => {
    await t.query('CREATE TABLE deep (n int)');
    const id = await start(t, `@> ('INSERT INTO deep VALUES (1)' ~> ('SELECT count(*) >= 2 FROM deep' ?> ('SELECT 1' ~> df.break()) !> 'SELECT 0'))`);
    await spin(engineFor(t), 4);
    const [r] = await t.query(`SELECT df.result($1) AS r, df.status($1) AS s`, [id]);
    expect(r).toEqual({ r: 'null', s: 'completed' });
    expect(await count('deep')).toBe(2);
  });

  it('LOOP status is running throughout (df.status)', async () => {
    const id = await start(t, `@> 'SELECT 1'`);
    const now = await spin(engineFor(t), 3);
    expect((await outcome(t, id)).status).toBe('running');
    expect((await node(t, id, 'LOOP')).status).toBe('running');
    await t.query(`SELECT df.cancel($1)`, [id]);
    expect(await ranFor(engineFor(t), id, later(5, now))).toEqual([]);
  });
});

describe('§3.7 BREAK', () => {
  it('top-level break fails the instance with the outside-loop text', async () => {
    const id = await start(t, `'SELECT 1' ~> df.break('x')`);
    await engineFor(t).drain();
    const r = await instanceRow(t, id);
    expect(r.status).toBe('failed');
    expect(r.output).toBe('df.break() was called outside of a loop. df.break() may only be used inside df.loop().');
    expect(r.completed_at).toBeNull();
    // §3.0 + §5 read literally: a break passing through a node stamps it completed, so the root
    // row (THEN) reads completed with the break value and df.result shows it for this failed instance.
    const [x] = await t.query(`SELECT df.result($1) AS r`, [id]);
    expect(x.r).toBe('"x"');
  });

  it('top-level break inside a JOIN branch also fails the instance', async () => {
    const id = await start(t, `df.break('x') & 'SELECT 1'`);
    await engineFor(t).drain();
    expect(await instanceRow(t, id)).toMatchObject({
      status: 'failed',
      output: 'df.break() was called outside of a loop. df.break() may only be used inside df.loop().',
    });
  });

  it('break value: JSON re-serialised compactly, else a JSON string, absent → null', async () => {
    const a = await start(t, `@> df.break('{"status":  "done"}')`);
    const b = await start(t, `@> df.break('done')`);
    const c = await start(t, `@> df.break()`);
    await engineFor(t).drain();
    const rs = await t.query(`SELECT df.result($1) AS a, df.result($2) AS b, df.result($3) AS c, (SELECT output FROM df.instances WHERE id = $1) AS out`, [a, b, c]);
    expect(rs[0]).toEqual({ a: '{"status": "done"}', b: '"done"', c: 'null', out: '{"status":"done"}' });
  });
});
