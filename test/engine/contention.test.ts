import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome, start } from '../helpers/engine.ts';
import { gate } from '../helpers/locks.ts';
import { createEngine, type RunResult } from '../../src/engine/engine.ts';
import type { PointHandler } from '../../src/engine/points.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { lit, node, queued } from './semantics/util.ts';

const t = useTestDb();

describe('a checkpoint never waits for a node row while holding the instance row', () => {
  it('a loop that re-activates a RACE loser another worker is still running steps aside (contended, run_at +250 ms) instead of waiting', async () => {
    await t.query('CREATE TABLE sides (side text); CREATE TABLE after_loop (n int)');
    const leaf = (side: string) => lit(`INSERT INTO sides VALUES ('${side}') RETURNING side`);
    // Two iterations (the condition counts the sides written). 'SELECT 0' first: the start runs it in the
    // activating transaction, so both branches are merely ready afterwards (a RACE activated by the start
    // is decided in that same transaction, before another worker could claim its loser).
    const id = await start(
      t,
      `df.loop('SELECT 0' ~> (${leaf('a')} | ${leaf('b')}), 'SELECT count(*) < 2 FROM sides') ~> 'INSERT INTO after_loop VALUES (1)'`,
    );
    const mk = (app: string, points?: PointHandler) => {
      const db = createPgDb({ connectionString: t.url(), max: 2, applicationName: app });
      return { db, engine: createEngine({ db, points }) };
    };
    const main = mk('contention-main');
    const g = gate('after-claim');
    const other = mk('contention-other', (p) => g.handler(p));
    try {
      expect(await main.engine.runOnce()).toMatchObject({ kind: 'step', instanceId: id });
      const a = await node(t, id, 'SQL', `'a'`);
      const b = await node(t, id, 'SQL', `'b'`);
      const cond = await node(t, id, 'SQL', 'count(*) < 2');
      const target = (n: { node_id: string }) => ({ target: { instanceId: id, nodeId: n.node_id } });
      const runAt = async (nodeId: string) =>
        (await t.query<{ run_at: Date | null }>(`SELECT run_at FROM df.nodes WHERE instance_id = $1 AND id = $2`, [id, nodeId]))[0].run_at;

      // Another worker claims branch b and is still running it (parked with the row locked).
      const held = other.engine.runOnce(target(b));
      await g.arrived;
      // Branch a wins the RACE (the loser's row is not written), and the loop's condition is ready.
      expect(await main.engine.runOnce(target(a))).toMatchObject({ kind: 'step', nodeId: a.node_id, ready: [{ nodeId: cond.node_id }] });
      expect(await t.query('SELECT side FROM sides')).toEqual([{ side: 'a' }]);
      // The condition holds (one side written): the loop's next iteration begins with its first step.
      const pacing = new Date(Date.now() + 5000); // the loop's pacing second has passed
      const zero = await node(t, id, 'SQL', 'SELECT 0');
      expect(await main.engine.runOnce({ now: pacing, ...target(cond) })).toMatchObject({ kind: 'step', ready: [{ nodeId: zero.node_id }] });
      const readyAt = await runAt(zero.node_id);

      // That step's checkpoint activates the RACE again, which resets b's row, held by the other worker.
      // NOWAIT in df._apply makes it step aside instead of waiting while it holds the instance row.
      expect(await main.engine.runOnce({ now: pacing, ...target(zero) })).toEqual<RunResult>({
        kind: 'contended',
        instanceId: id,
        nodeId: zero.node_id,
        ready: [],
      });
      // Nothing of it happened: b's row is untouched and the step is ready again 250 ms later.
      expect((await runAt(zero.node_id))!.getTime() - readyAt!.getTime()).toBe(250);
      const [bRow] = await t.query(`SELECT status, status_details ->> 'execution_id' AS stamp FROM df.nodes WHERE instance_id = $1 AND id = $2`, [
        id,
        b.node_id,
      ]);
      expect(bRow.stamp).toBe(b.stamp);

      // The holder finishes its step: it lost the RACE, so it is withdrawn and its effect rolled back.
      g.release();
      expect(await held).toMatchObject({ kind: 'withdrawn', instanceId: id, nodeId: b.node_id });
      expect(await t.query('SELECT side FROM sides')).toEqual([{ side: 'a' }]);

      // Then the condition runs again, the second iteration runs, and the loop's successor runs once.
      await main.engine.drain({ now: new Date(Date.now() + 10_000) });
      expect((await outcome(t, id)).status).toBe('completed');
      expect(await t.query('SELECT count(*)::int AS n FROM sides')).toEqual([{ n: 2 }]);
      expect(await t.query('SELECT count(*)::int AS n FROM after_loop')).toEqual([{ n: 1 }]);
      expect(await queued(t, id)).toBe(0);
      const [d] = await t.superuser.query(`SELECT deadlocks FROM pg_stat_database WHERE datname = $1`, [t.name]).then((x) => x.rows);
      expect(Number(d.deadlocks)).toBe(0);
    } finally {
      g.release();
      await Promise.all([main.db.end(), other.db.end()]);
    }
  });
});
