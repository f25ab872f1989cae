import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();

describe('engine basics', () => {
  it('runs a sequence with named results to its result', async () => {
    const id = await start(t, `'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'`);
    const e = engineFor(t);
    expect(await e.drain()).toBeGreaterThan(0);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ answer: 42 }], row_count: 1 } });
  });

  it('a JOIN returns the array of branch results', async () => {
    const id = await start(t, `'SELECT 1 AS a' & 'SELECT 2 AS b'`);
    await engineFor(t).drain({ concurrency: 2 });
    expect((await outcome(t, id)).result).toEqual([
      { rows: [{ a: 1 }], row_count: 1 },
      { rows: [{ b: 2 }], row_count: 1 },
    ]);
  });

  it('if picks a branch by truthiness', async () => {
    const id = await start(t, `'SELECT false' ?> 'SELECT ''then'' AS x' !> 'SELECT ''else'' AS x'`);
    await engineFor(t).drain();
    expect((await outcome(t, id)).result).toEqual({ rows: [{ x: 'else' }], row_count: 1 });
  });

  it('a failing step fails the instance with the SQL error', async () => {
    const id = await start(t, `'SELECT 1' ~> 'SELECT 1/0'`);
    await engineFor(t).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe('SQL execution failed: error returned from database: division by zero');
  });

  it('sleep is a timer: nothing happens until its time', async () => {
    const id = await start(t, `df.sleep(60) ~> 'SELECT 7 AS x'`);
    const e = engineFor(t);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: later(61) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ x: 7 }] } });
  });

  it('a loop with break ends with the break value', async () => {
    await t.query('CREATE TABLE ticks (n int)');
    const id = await start(
      t,
      `@> ('INSERT INTO ticks VALUES (1)' ~> ('SELECT count(*) >= 3 FROM ticks' ?> df.break('done') !> 'SELECT 0'))`,
    );
    const e = engineFor(t);
    let now = new Date();
    for (let i = 0; i < 10; i++) {
      await e.drain({ now });
      now = later(1.1, now);
    }
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: 'done' });
    expect(await t.query('SELECT count(*)::int AS n FROM ticks')).toEqual([{ n: 3 }]);
  });

  it('a race takes the first branch and abandons the other', async () => {
    const id = await start(t, `df.sleep(30) | 'SELECT ''fast'' AS w'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ w: 'fast' }] } });
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL`, [id])).toEqual([{ n: 0 }]);
  });

  it('a signal wakes a waiting node; its payload is the result', async () => {
    const id = await start(t, `df.wait_for_signal('go') |=> 'sig' ~> 'SELECT $sig::jsonb -> ''data'' ->> ''who'' AS who'`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'go', '{"who":"ann"}')`, [id]);
    await e.drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ who: 'ann' }] } });
  });
});
