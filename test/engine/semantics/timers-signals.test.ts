/** SPEC §3.8 SLEEP, §3.9 WAIT_SCHEDULE, §3.10 SIGNAL. */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { engineFor, later, outcome, start } from '../../helpers/engine.ts';
import { node, ranFor } from './util.ts';

const t = useTestDb();

describe('§3.8 SLEEP', () => {
  it('SLEEP result is {"slept": true, "seconds": N} and it stores no named result', async () => {
    const id = await start(t, `df.sleep(5) |=> 's' ~> 'SELECT ''$s'' AS raw'`);
    const e = engineFor(t);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: later(4) });
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: later(5.5) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ raw: '$s' }] } });
    const [r] = await t.query(`SELECT result::text AS r FROM df.nodes WHERE instance_id = $1 AND node_type = 'SLEEP'`, [id]);
    expect(r.r).toBe('{"slept": true, "seconds": 5}');
  });

  it('SLEEP 0 fires at once', async () => {
    const id = await start(t, `df.sleep(0) ~> 'SELECT 1 AS x'`);
    await engineFor(t).drain();
    expect((await outcome(t, id)).status).toBe('completed');
  });
});

describe('§3.9 WAIT_SCHEDULE', () => {
  it('WAIT_SCHEDULE fires at the next minute boundary (UTC), result {"scheduled": true}, no named result', async () => {
    const id = await start(t, `df.wait_for_schedule('* * * * *') |=> 'w' ~> 'SELECT ''$w'' AS raw'`);
    const e = engineFor(t);
    const t0 = new Date('2031-03-04T10:15:30.000Z');
    await e.drain({ now: t0 });
    const w = await node(t, id, 'WAIT_SCHEDULE');
    expect(w.status).toBe('running');
    const [due] = await t.query(`SELECT run_at FROM df.nodes WHERE instance_id = $1 AND id = $2`, [id, w.node_id]);
    expect((due.run_at as Date).toISOString()).toBe('2031-03-04T10:16:00.000Z');
    await e.drain({ now: new Date('2031-03-04T10:15:59.999Z') });
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: new Date('2031-03-04T10:16:00.000Z') });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ raw: '$w' }] } });
    expect((await node(t, id, 'WAIT_SCHEDULE')).result).toEqual({ scheduled: true });
  });

  it('WAIT_SCHEDULE is computed at execution time and in UTC (hour field)', async () => {
    const id = await start(t, `df.sleep(60) ~> df.wait_for_schedule('30 10 * * *')`);
    const e = engineFor(t);
    const t0 = new Date('2031-03-04T08:00:00.000Z');
    await e.drain({ now: t0 });
    // the wait starts after the sleep, at 08:01 → next 10:30 UTC the same day
    await e.drain({ now: new Date('2031-03-04T08:01:00.000Z') });
    const w = await node(t, id, 'WAIT_SCHEDULE');
    const [due] = await t.query(`SELECT run_at FROM df.nodes WHERE instance_id = $1 AND id = $2`, [id, w.node_id]);
    expect((due.run_at as Date).toISOString()).toBe('2031-03-04T10:30:00.000Z');
  });

  it('two consecutive * * * * * waits fire on consecutive minute boundaries (test 24)', async () => {
    const id = await start(t, `df.wait_for_schedule('* * * * *') ~> df.wait_for_schedule('* * * * *')`);
    const e = engineFor(t);
    await e.drain({ now: new Date('2031-03-04T10:15:30.000Z') });
    await e.drain({ now: new Date('2031-03-04T10:16:00.000Z') });
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: new Date('2031-03-04T10:16:59.000Z') });
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: new Date('2031-03-04T10:17:00.000Z') });
    expect((await outcome(t, id)).status).toBe('completed');
  });
});

describe('§3.10 SIGNAL', () => {
  it('SIGNAL: a signal sent before the wait subscribed is dropped; one sent after is received', async () => {
    const id = await start(t, `df.sleep(10) ~> df.wait_for_signal('go')`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'go', '{"n":1}')`, [id]);
    await e.drain({ now: later(11) }); // the wait subscribes now; the earlier signal is not for it
    expect((await outcome(t, id)).status).toBe('running');
    expect((await node(t, id, 'SIGNAL')).status).toBe('running');
    await t.query(`SELECT df.signal($1, 'go', '{"n":2}')`, [id]);
    await e.drain({ now: later(12) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { signal_name: 'go', timed_out: false, data: { n: 2 } } });
  });

  it('SIGNAL: a signal sent before the instance first ran is dropped', async () => {
    const id = await start(t, `df.wait_for_signal('go')`);
    await t.query(`SELECT df.signal($1, 'go', 'early')`, [id]);
    const e = engineFor(t);
    await e.drain({ now: later(1) });
    expect((await outcome(t, id)).status).toBe('running');
    await t.query(`SELECT df.signal($1, 'go', 'late')`, [id]);
    await e.drain({ now: later(2) });
    expect((await outcome(t, id)).result).toEqual({ signal_name: 'go', timed_out: false, data: 'late' });
  });

  it('SIGNAL timeout gives timed_out true and data null', async () => {
    const id = await start(t, `df.wait_for_signal('go', 5)`);
    const e = engineFor(t);
    await e.drain();
    await e.drain({ now: later(4) });
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: later(6) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { signal_name: 'go', timed_out: true, data: null } });
  });

  it('SIGNAL with a timeout received in time: timed_out false; the deadline later changes nothing', async () => {
    const id = await start(t, `df.wait_for_signal('go', 5) ~> 'SELECT 1 AS x'`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'go', '[1,2]')`, [id]);
    await e.drain({ now: later(1) });
    expect((await outcome(t, id)).status).toBe('completed');
    expect((await node(t, id, 'SIGNAL')).result).toEqual({ signal_name: 'go', timed_out: false, data: [1, 2] });
    expect(await ranFor(e, id, later(10))).toEqual([]);
  });

  it('SIGNAL: a signal of another name does not satisfy the wait', async () => {
    const id = await start(t, `df.wait_for_signal('go')`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'stop', '{}')`, [id]);
    await e.drain({ now: later(1) });
    expect((await outcome(t, id)).status).toBe('running');
  });

  it('SIGNAL: one signal satisfies same-named waits in two JOIN branches', async () => {
    const id = await start(t, `df.wait_for_signal('go') & ('SELECT 1' ~> df.wait_for_signal('go'))`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'go', '{"ok":true}')`, [id]);
    await e.drain({ now: later(1) });
    expect(await outcome(t, id)).toMatchObject({
      status: 'completed',
      result: [
        { signal_name: 'go', timed_out: false, data: { ok: true } },
        { signal_name: 'go', timed_out: false, data: { ok: true } },
      ],
    });
  });

  it('SIGNAL inside a RACE branch wins the race (test 23)', async () => {
    const id = await start(t, `df.wait_for_signal('go') | df.sleep(60)`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'go', 'approve')`, [id]);
    await e.drain({ now: later(1) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { signal_name: 'go', timed_out: false, data: 'approve' } });
  });

  it('SIGNAL payload: JSON text is parsed, other text becomes a JSON string', async () => {
    const id = await start(t, `df.wait_for_signal('a') |=> 'a' ~> df.wait_for_signal('b') |=> 'b' ~> 'SELECT $a::jsonb -> ''data'' AS a, $b::jsonb -> ''data'' AS b'`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'a', 'approve')`, [id]);
    await e.drain({ now: later(1) });
    await t.query(`SELECT df.signal($1, 'b', '{"k": [1, "x"]}')`, [id]);
    await e.drain({ now: later(2) });
    expect((await outcome(t, id)).result).toEqual({ rows: [{ a: 'approve', b: { k: [1, 'x'] } }], row_count: 1 });
  });

  it('SIGNAL in a loop re-subscribes each iteration: a signal is consumed once', async () => {
    await t.query('CREATE TABLE sig_loop (d text)');
    const id = await start(t, `'SELECT 0' ~> df.loop(df.wait_for_signal('tick') |=> 's' ~> 'INSERT INTO sig_loop SELECT $s::jsonb ->> ''data''', 'SELECT count(*) < 2 FROM sig_loop')`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'tick', 'one')`, [id]);
    await e.drain({ now: later(1) });
    await e.drain({ now: later(3) }); // iteration 2 subscribes
    expect(await t.query('SELECT d FROM sig_loop')).toEqual([{ d: 'one' }]);
    await e.drain({ now: later(4) });
    expect(await t.query('SELECT d FROM sig_loop')).toEqual([{ d: 'one' }]);
    await t.query(`SELECT df.signal($1, 'tick', 'two')`, [id]);
    await e.drain({ now: later(5) });
    expect(await t.query('SELECT d FROM sig_loop ORDER BY d')).toEqual([{ d: 'one' }, { d: 'two' }]);
    expect((await outcome(t, id)).status).toBe('completed');
  });
});
