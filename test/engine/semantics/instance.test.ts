/** SPEC §3.0 (stamps, instance end), §3.12 (cancel), §5 (df.result, execution_count). */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { engineFor, later, outcome, start } from '../../helpers/engine.ts';
import { instanceRow, node, nodes, queued, ranFor } from './util.ts';

const t = useTestDb();

describe('§3.0 stamps', () => {
  it('stamps: every node of the root scope reads <id>::1', async () => {
    const id = await start(t, `'SELECT 1' ~> ('SELECT true' ?> 'SELECT 2' !> 'SELECT 3')`);
    await engineFor(t).drain();
    const ran = (await nodes(t, id)).filter((n) => n.status !== 'pending');
    expect(ran.length).toBe(5); // THEN, SQL 1, IF, condition, then-arm
    for (const n of ran) expect(n.stamp).toBe(`${id}::1`);
    const [sd] = await t.query(`SELECT status_details::text AS s FROM df.nodes WHERE instance_id = $1 AND id = (SELECT root_node FROM df.instances WHERE id = $1)`, [id]);
    expect(JSON.parse(sd.s)).toEqual({ execution_id: `${id}::1` });
  });

  it('stamps: JOIN/RACE branches run in <id>::1::<branch root>::1; the JOIN itself in the parent scope', async () => {
    const id = await start(t, `('SELECT 1 AS a' ~> 'SELECT 2 AS b') & 'SELECT 3 AS c'`);
    await engineFor(t).drain();
    const join = await node(t, id, 'JOIN');
    expect(join.stamp).toBe(`${id}::1`);
    const then = await node(t, id, 'THEN');
    expect(then.stamp).toBe(`${id}::1::${then.node_id}::1`);
    expect((await node(t, id, 'SQL', 'AS b')).stamp).toBe(`${id}::1::${then.node_id}::1`);
    const c = await node(t, id, 'SQL', 'AS c');
    expect(c.stamp).toBe(`${id}::1::${c.node_id}::1`);
  });

  it('stamps: nested branch scopes chain their parent stamp', async () => {
    const id = await start(t, `('SELECT 1 AS a' & 'SELECT 2 AS b') & 'SELECT 3 AS c'`);
    await engineFor(t).drain();
    const ns = await nodes(t, id);
    const outer = ns.find((n) => n.node_type === 'JOIN' && n.stamp === `${id}::1`)!;
    const inner = ns.find((n) => n.node_type === 'JOIN' && n.node_id !== outer.node_id)!;
    expect(inner.stamp).toBe(`${id}::1::${inner.node_id}::1`);
    const a = await node(t, id, 'SQL', 'AS a');
    expect(a.stamp).toBe(`${id}::1::${inner.node_id}::1::${a.node_id}::1`);
  });

  it('stamps: root-loop generations are <id>::2, <id>::3 …; instances.generation = execution_count', async () => {
    await t.query('CREATE TABLE gens (id serial)');
    const id = await start(t, `df.loop('INSERT INTO gens DEFAULT VALUES RETURNING id', 'SELECT count(*) < 3 FROM gens')`);
    const e = engineFor(t);
    let now = new Date();
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      await e.drain({ now });
      seen.push((await node(t, id, 'SQL', 'INSERT INTO gens')).stamp!);
      now = later(1.1, now);
    }
    expect([...new Set(seen)]).toEqual([`${id}::1`, `${id}::2`, `${id}::3`]);
    // the LOOP node is re-stamped when the next generation is scheduled, so it ends on the last one
    expect((await node(t, id, 'LOOP')).stamp).toBe(`${id}::3`);
    expect((await instanceRow(t, id)).generation).toBe(3);
    const [l] = await t.query(`SELECT execution_count FROM df.list_instances() WHERE instance_id = $1`, [id]);
    expect(Number(l.execution_count)).toBe(3);
    const [info] = await t.query(`SELECT current_execution_id FROM df.instance_info($1)`, [id]);
    expect(Number(info.current_execution_id)).toBe(3);
  });
});

describe('§3.0 instance end', () => {
  it('completion: status completed, output = compact result text, completed_at set, df.result = root result', async () => {
    const id = await start(t, `'SELECT 1 AS b, 2 AS a'`);
    await engineFor(t).drain();
    const r = await instanceRow(t, id);
    expect(r.status).toBe('completed');
    expect(r.output).toBe('{"rows":[{"b":1,"a":2}],"row_count":1}');
    expect(r.completed_at).toBeInstanceOf(Date);
    const [x] = await t.query(`SELECT df.result($1) AS r`, [id]);
    expect(x.r).toBe('{"rows": [{"a": 2, "b": 1}], "row_count": 1}');
  });

  it('failure: status failed, output = error, completed_at NULL, df.result NULL', async () => {
    const id = await start(t, `'SELECT 1' ~> 'SELECT 1/0'`);
    await engineFor(t).drain();
    const r = await instanceRow(t, id);
    expect(r).toMatchObject({ status: 'failed', output: 'SQL execution failed: error returned from database: division by zero', completed_at: null });
    const [x] = await t.query(`SELECT df.result($1) AS r`, [id]);
    expect(x.r).toBeNull();
    // every ancestor of the failed node carries the same text
    const root = await node(t, id, 'THEN');
    expect(root).toMatchObject({ status: 'failed', result: r.output });
  });

  it('df.result is NULL while running', async () => {
    const id = await start(t, `df.sleep(30) ~> 'SELECT 1'`);
    await engineFor(t).drain();
    const [x] = await t.query(`SELECT df.result($1) AS r, df.status($1) AS s`, [id]);
    expect(x).toEqual({ r: null, s: 'running' });
  });
});

describe('§3.12 cancellation', () => {
  it('df.cancel mid-run: instance cancelled, queued rows withdrawn, a further drain runs nothing', async () => {
    await t.query('CREATE TABLE after_cancel (n int)');
    const id = await start(t, `'SELECT 1' ~> (df.sleep(10) & df.wait_for_signal('x', 30)) ~> 'INSERT INTO after_cancel VALUES (1)'`);
    const e = engineFor(t);
    await e.drain();
    expect(await queued(t, id)).toBe(2);
    const [c] = await t.query(`SELECT df.cancel($1) AS m`, [id]);
    expect(c.m).toBe(`Instance ${id} cancelled: Cancelled by user`);
    expect((await instanceRow(t, id)).status).toBe('cancelled');
    expect(await queued(t, id)).toBe(0);
    await t.query(`SELECT df.signal($1, 'x', '{}')`, [id]);
    expect(await ranFor(e, id, later(60))).toEqual([]);
    expect(await t.query('SELECT * FROM after_cancel')).toEqual([]);
    // running nodes keep their physical status
    expect((await node(t, id, 'SLEEP')).status).toBe('running');
    const r = await instanceRow(t, id);
    expect(r).toMatchObject({ status: 'cancelled', completed_at: null });
  });

  it('df.cancel while a step is in flight: the step is abandoned (its SQL rolled back), nothing runs after', async () => {
    await t.query('CREATE TABLE inflight (n int)');
    const id = await start(t, `'INSERT INTO inflight VALUES (1)' ~> 'INSERT INTO inflight VALUES (2)'`);
    let cancelled = false;
    const e = engineFor(t, {
      points: async (p, ctx) => {
        if (p === 'after-claim' && !cancelled && ctx.instanceId === id) {
          const [root] = await t.query(`SELECT root_node FROM df.instances WHERE id = $1`, [id]);
          if (ctx.nodeId !== root.root_node) {
            cancelled = true;
            await t.query(`SELECT df.cancel($1)`, [id]);
          }
        }
      },
    });
    await e.drain();
    expect(cancelled).toBe(true);
    expect((await instanceRow(t, id)).status).toBe('cancelled');
    expect(await t.query('SELECT * FROM inflight')).toEqual([]);
    expect(await queued(t, id)).toBe(0);
    expect(await ranFor(e, id, later(5))).toEqual([]);
  });

  it('df.cancel on a completed instance changes nothing', async () => {
    const id = await start(t, `'SELECT 1 AS x'`);
    await engineFor(t).drain();
    await t.query(`SELECT df.cancel($1)`, [id]);
    expect((await outcome(t, id)).status).toBe('completed');
  });
});
