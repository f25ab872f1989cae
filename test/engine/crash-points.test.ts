import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';
import type { CrashPoint, PointHandler } from '../../src/engine/points.ts';

const t = useTestDb();

class Crash extends Error {}

/** Crashes the first time the engine reaches `point`, then lets everything through. */
function crashOnce(point: CrashPoint): PointHandler & { fired: boolean } {
  const h = Object.assign(
    (p: CrashPoint) => {
      if (p === point && !h.fired) {
        h.fired = true;
        throw new Crash(`crash at ${point}`);
      }
    },
    { fired: false },
  );
  return h;
}

const effects = async () => (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM effects'))[0].n;

describe('crash points: nothing lost, transactional effects exactly once', () => {
  it.each<CrashPoint>(['after-claim', 'before-commit'])('a crash at %s rolls the step back; the re-run counts once', async (point) => {
    await t.query('DROP TABLE IF EXISTS effects; CREATE TABLE effects (n int)');
    const id = await start(t, `'SELECT 1' ~> 'INSERT INTO effects VALUES (1) RETURNING n' ~> 'SELECT 2'`);
    const plain = engineFor(t);
    await plain.runOnce(); // start, and 'SELECT 1' in the same transaction
    const h = crashOnce(point);
    const e = engineFor(t, { points: h });
    await expect(e.runOnce()).rejects.toBeInstanceOf(Crash);
    expect(h.fired).toBe(true);
    expect(await effects()).toBe(0);
    // The claimed row is ready again: nothing is stuck behind a lease.
    const [ready] = await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL`, [id]);
    expect(ready.n).toBe(1);
    await e.drain();
    expect(await effects()).toBe(1);
    expect((await outcome(t, id)).status).toBe('completed');
  });

  it.each<CrashPoint>(['after-claim', 'before-commit'])(
    'a crash at %s of the first step, which runs in the activating transaction, rolls back the activation too',
    async (point) => {
      await t.query('DROP TABLE IF EXISTS effects; CREATE TABLE effects (n int)');
      const id = await start(t, `'INSERT INTO effects VALUES (1) RETURNING n' ~> 'SELECT 2'`);
      const h = crashOnce(point);
      await expect(engineFor(t, { points: h }).runOnce()).rejects.toBeInstanceOf(Crash);
      expect(h.fired).toBe(true);
      expect(await effects()).toBe(0);
      // Nothing of the start survived: the instance is pending and only its root is ready.
      const [inst] = await t.query(`SELECT status, root_node FROM df.instances WHERE id = $1`, [id]);
      expect(inst.status).toBe('pending');
      const ready = await t.query(`SELECT id FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL`, [id]);
      expect(ready).toEqual([{ id: inst.root_node }]);
      expect(await t.query(`SELECT count(*)::int AS n FROM df.scopes WHERE instance_id = $1`, [id])).toEqual([{ n: 0 }]);
      await engineFor(t).drain();
      expect(await effects()).toBe(1);
      expect((await outcome(t, id)).status).toBe('completed');
    },
  );

  it('a crash after commit, before dispatch, loses nothing: the rows are the outbox', async () => {
    await t.query('DROP TABLE IF EXISTS effects; CREATE TABLE effects (n int)');
    const id = await start(t, `'SELECT 0' ~> 'INSERT INTO effects VALUES (1)' ~> 'SELECT 2 AS two'`);
    const e = engineFor(t);
    await e.runOnce(); // start and 'SELECT 0'
    const h = crashOnce('after-commit');
    await expect(engineFor(t, { points: h }).runOnce()).rejects.toBeInstanceOf(Crash);
    expect(await effects()).toBe(1);
    await e.drain();
    expect(await effects()).toBe(1);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ two: 2 }] } });
  });

  it('a crash after a non-transactional step ran re-runs it after its lease expires (at least once)', async () => {
    await t.query('DROP TABLE IF EXISTS effects; CREATE TABLE effects (n int)');
    const id = await start(t, `'VACUUM effects' ~> 'SELECT 3 AS three'`);
    const e = engineFor(t, { leaseMs: 60_000 });
    await e.runOnce(); // start
    const h = crashOnce('after-effect');
    await expect(engineFor(t, { points: h, leaseMs: 60_000 }).runOnce()).rejects.toBeInstanceOf(Crash);
    // The lease holds the row until it expires: a drain now runs nothing.
    expect(await e.drain()).toBe(0);
    const [row] = await t.query(`SELECT attempts FROM df.nodes WHERE instance_id = $1 AND node_type = 'SQL' AND query LIKE 'VACUUM%'`, [id]);
    expect(row.attempts).toBe(1);
    await e.drain({ now: new Date(Date.now() + 61_000) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ three: 3 }] } });
    const [after] = await t.query(`SELECT attempts FROM df.nodes WHERE instance_id = $1 AND query LIKE 'VACUUM%'`, [id]);
    expect(after.attempts).toBe(2);
  });
});
