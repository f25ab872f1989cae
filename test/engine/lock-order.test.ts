import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome, start } from '../helpers/engine.ts';
import { gate, waitUntilBlocked } from '../helpers/locks.ts';
import { createEngine } from '../../src/engine/engine.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';

const t = useTestDb();

function engineAs(app: string, points?: (p: string) => Promise<void> | void) {
  const db = createPgDb({ connectionString: t.url(), max: 2, applicationName: app });
  return { db, engine: createEngine({ db, points: points as never }) };
}

describe('lock order: node row, then instance row', () => {
  it('two branches checkpoint one after the other without deadlock', async () => {
    const id = await start(t, `'SELECT 1 AS a' & 'SELECT 2 AS b' & 'SELECT 3 AS c'`);
    const setup = engineAs('lock-setup');
    await setup.engine.runOnce(); // start, running branch a in the same transaction: b and c ready
    const g = gate('before-commit');
    const a = engineAs('lock-a', g.handler);
    const b = engineAs('lock-b');
    try {
      const first = a.engine.runOnce(); // holds its branch row and the instance row, parked before commit
      await g.arrived;
      const second = b.engine.runOnce(); // claims the other branch, runs it, then waits for the instance row
      await waitUntilBlocked(t.superuser, 'lock-b');
      g.release();
      await Promise.all([first, second]);
      await setup.engine.drain();
      expect((await outcome(t, id)).result).toEqual([
        [
          { rows: [{ a: 1 }], row_count: 1 },
          { rows: [{ b: 2 }], row_count: 1 },
        ],
        { rows: [{ c: 3 }], row_count: 1 },
      ]);
    } finally {
      g.release();
      await Promise.all([setup.db.end(), a.db.end(), b.db.end()]);
    }
  });

  it('df.cancel never waits for a claimed node row, and the step withdraws itself at its checkpoint', async () => {
    await t.query('CREATE TABLE effects (n int)');
    const id = await start(t, `'SELECT 0' ~> 'INSERT INTO effects VALUES (1)' ~> 'SELECT 2'`);
    const setup = engineAs('cancel-setup');
    await setup.engine.runOnce(); // start and 'SELECT 0'
    const g = gate('after-claim');
    const a = engineAs('cancel-a', g.handler);
    try {
      const running = a.engine.runOnce(); // holds the INSERT step's row
      await g.arrived;
      // SET lock_timeout makes a wait fail fast instead of hanging the test.
      const c = await t.owner.connect();
      try {
        await c.query(`SET lock_timeout = '2s'`);
        expect((await c.query(`SELECT df.cancel($1) AS r`, [id])).rows[0].r).toBe(`Instance ${id} cancelled: Cancelled by user`);
      } finally {
        c.release();
      }
      g.release();
      expect((await running)?.kind).toBe('withdrawn');
      expect(await t.query('SELECT count(*)::int AS n FROM effects')).toEqual([{ n: 0 }]);
      expect(await setup.engine.drain()).toBe(0);
      expect((await outcome(t, id)).status).toBe('cancelled');
    } finally {
      g.release();
      await Promise.all([setup.db.end(), a.db.end()]);
    }
  });
});
