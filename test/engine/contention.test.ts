import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome, start } from '../helpers/engine.ts';
import { gate } from '../helpers/locks.ts';
import { createEngine } from '../../src/engine/engine.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';

const t = useTestDb();

describe('a checkpoint never waits for a node row while holding the instance row', () => {
  it('a loop that re-activates a RACE loser still running steps aside instead of deadlocking', async () => {
    await t.query('CREATE SEQUENCE iter');
    // Iteration 1: the fast branch wins; the slow loser's step is held (parked before its checkpoint).
    const id = await start(t, `df.loop(('SELECT 1 AS fast' | 'SELECT 2 AS slow'), 'SELECT nextval(''iter'') < 2')`);
    const mk = (app: string, points?: (p: string) => Promise<void> | void) => {
      const db = createPgDb({ connectionString: t.url(), max: 2, applicationName: app });
      return { db, engine: createEngine({ db, points: points as never }) };
    };
    const main = mk('contention-main');
    const g = gate('after-claim');
    const slow = mk('contention-slow', async (p) => {
      await g.handler(p);
    });
    try {
      await main.engine.runOnce(); // start: the loop activates the race, both branches ready
      // Claim order is by run_at, then undefined: run until one of the branch leaves is parked.
      const parked = slow.engine.runOnce();
      await g.arrived;
      let r;
      const now = new Date(Date.now() + 5000); // the loop's pacing second has passed
      do r = await main.engine.runOnce({ now });
      while (r && r.kind !== 'contended' && (await outcome(t, id)).status === 'running');
      // Either the loop moved on to re-activate the held row (and stepped aside), or it finished.
      g.release();
      await parked;
      await main.engine.drain({ now: new Date(Date.now() + 10_000) });
      expect((await outcome(t, id)).status).toBe('completed');
      const [d] = await t.superuser.query(`SELECT deadlocks FROM pg_stat_database WHERE datname = $1`, [t.name]).then((x) => x.rows);
      expect(Number(d.deadlocks)).toBe(0);
    } finally {
      g.release();
      await Promise.all([main.db.end(), slow.db.end()]);
    }
  });
});
