import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();

// One pooled session runs all steps here (max 1), so any leak would show in the next step.
describe('nothing a step sets survives it (each node behaves as its own session)', () => {
  it('SET ROLE, settings, temp tables and advisory locks do not reach the next step', async () => {
    const side = t.role('side');
    await t.superuser.query(`CREATE ROLE ${side}; GRANT ${side} TO pgflare_owner`);
    const id = await start(
      t,
      `'SET ROLE ${side}' ~> 'SET search_path = nowhere' ~> 'CREATE TEMP TABLE scratch (a int)' ~> 'SELECT pg_advisory_lock(42)'
       ~> 'SELECT current_user::text AS u, current_setting(''search_path'') AS p, to_regclass(''pg_temp.scratch'') IS NULL AS no_temp,
                  (SELECT count(*) FROM pg_locks WHERE locktype = ''advisory'' AND pid = pg_backend_pid())::int AS locks'`,
    );
    const { createPgDb } = await import('../../src/runtime/node/pg-db.ts');
    const { createEngine } = await import('../../src/engine/engine.ts');
    const db = createPgDb({ connectionString: t.url(), max: 1 });
    try {
      await createEngine({ db }).drain();
    } finally {
      await db.end();
    }
    expect(await outcome(t, id)).toMatchObject({
      status: 'completed',
      result: { rows: [{ u: 'pgflare_owner', p: '"$user", public', no_temp: true, locks: 0 }] },
    });
  });

  it('a step cannot switch to a role its owner is not a member of', async () => {
    const id = await start(t, `'SET ROLE postgres'`);
    await engineFor(t).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe('SQL execution failed: error returned from database: permission denied to set role "postgres"');
  });

  it('a transaction-control statement cannot end the engine transaction under the step', async () => {
    const id = await start(t, `'COMMIT'`);
    await engineFor(t).drain();
    expect((await outcome(t, id)).output).toMatch(/transaction control statements/);
  });
});
