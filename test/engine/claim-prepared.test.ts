/**
 * The wake-up claim (src/engine/queries/claim.ts, prepareClaim): a prepared statement that mirrors
 * df._claim's query under a cached generic plan. It must return what df._claim returns, defer to df._claim
 * when role limits exist, and leave plan_cache_mode as it was before the step runs.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, start } from '../helpers/engine.ts';
import { beginAndClaim, claimedRows, claimSql, prepareClaim } from '../../src/engine/queries/claim.ts';
import type { DbClient } from '../../src/engine/db.ts';

const t = useTestDb();

/** The claimed rows through `sql` (a claim statement) in a transaction rolled back afterwards. */
async function claimWith(c: DbClient, sql: string): Promise<unknown[]> {
  const res = (await c.query(`BEGIN; ${sql}; ROLLBACK`)) as unknown as { rows: never[] }[];
  // The claim's result: the one with rows (SET LOCAL and RESET return none).
  const rows = claimedRows(res.find((r) => r.rows?.length) ?? { rows: [] });
  return rows;
}

describe('the prepared wake-up claim', () => {
  it("returns df._claim's columns and values, for a first claim and for a step inside a scope with named results", async () => {
    await t.query('DELETE FROM df.instances');
    const first = await start(t, `'SELECT 1 AS a' |=> 'x'`, 'first-label');
    const chain = await start(t, `'SELECT 1 AS a' |=> 'x' ~> 'SELECT $x.a + 1 AS b'`, 'chain-label');
    // Run the chain's first step only: its second step is then the ready row, with a stamp and a scope.
    await t.query(`UPDATE df.nodes SET run_at = NULL WHERE instance_id = $1`, [first]);
    await engineFor(t).runOnce();
    await t.query(`UPDATE df.nodes SET run_at = now() - interval '1 hour' WHERE instance_id = $1 AND id = (SELECT root_node FROM df.instances WHERE id = $1)`, [first]);
    await t.db.withClient(async (c) => {
      // Six executions on going idle settle the statement on its generic plan.
      expect(await prepareClaim(c)).toBe('generic');
      const now = new Date(Date.now() + 60_000);
      for (let round = 0; round < 2; round++) {
        const viaPrepared = await claimWith(c, claimSql(now, undefined, 1234, round === 0 ? 'generic' : 'force'));
        const viaFunction = await claimWith(c, claimSql(now, undefined, 1234, false));
        expect(viaPrepared).toHaveLength(1);
        expect(viaPrepared).toEqual(viaFunction);
        // The first round gets the oldest ready row (the first claim), the second the chain's step.
        const row = viaPrepared[0] as { instance_id: string; stamp: string | null; named: unknown };
        if (round === 0) expect(row).toMatchObject({ instance_id: first, stamp: null, named: null });
        else expect(row).toMatchObject({ instance_id: chain, named: { x: expect.any(String) } });
        expect(row.stamp === null).toBe(round === 0);
        await t.query(`UPDATE df.nodes SET run_at = NULL WHERE instance_id = $1`, [first]);
      }
      // The wake-up claims reused the generic plan: no custom plan after the five of the warm-up.
      const { rows } = await c.query(`SELECT generic_plans >= 3 AS generic, custom_plans FROM pg_prepared_statements WHERE name = 'pgflare_claim'`);
      expect(rows).toEqual([{ generic: true, custom_plans: 5 }]);
    });
  });

  it("takes the same rows as df._claim at the edge of `now`'s millisecond", async () => {
    await t.query('DELETE FROM df.instances');
    const id = await start(t, `'SELECT 1'`);
    const now = new Date('2026-12-05T04:30:00.123Z');
    await t.db.withClient(async (c) => {
      expect(await prepareClaim(c)).toBe('generic');
      // Due up to the end of now's millisecond (…123 999 µs), not a microsecond later.
      for (const [runAt, due] of [
        ['2026-12-05T04:30:00.123999Z', true],
        ['2026-12-05T04:30:00.124Z', false],
        ['1970-01-01T00:00:00.000001Z', true],
      ] as const) {
        await t.query(`UPDATE df.nodes SET run_at = $2 WHERE instance_id = $1`, [id, runAt]);
        for (const mode of ['generic', 'force', false] as const) {
          expect(await claimWith(c, claimSql(now, undefined, 0, mode)), `${runAt} ${mode}`).toHaveLength(due ? 1 : 0);
        }
      }
    });
  });

  it.each(['generic', 'force'] as const)('runs the step (%s) with plan_cache_mode as before and the settings the claim sets', async (mode) => {
    await t.query('DELETE FROM df.instances');
    await start(t, `'SELECT 1'`);
    await t.db.withClient(async (c) => {
      await prepareClaim(c);
      const rows = await beginAndClaim(c, new Date(Date.now() + 60_000), undefined, 4321, mode);
      expect(rows).toHaveLength(1);
      const { rows: s } = await c.query<{ mode: string; timeout: string; wf: string }>(
        `SELECT current_setting('plan_cache_mode') AS mode, current_setting('statement_timeout') AS timeout, current_setting('df.in_workflow') AS wf`,
      );
      expect(s[0]).toEqual({ mode: 'auto', timeout: '4321ms', wf: 'true' });
      await c.query('ROLLBACK');
    });
  });

  it("gives the step DateStyle ISO, MDY and its own timeout, whatever the session's values", async () => {
    await t.query('DELETE FROM df.instances');
    await start(t, `'SELECT 1'`);
    await t.db.withClient(async (c) => {
      const mode = await prepareClaim(c);
      const settings = async () =>
        (await c.query<{ d: string; s: string }>(`SELECT current_setting('datestyle') AS d, current_setting('statement_timeout') AS s`)).rows[0];
      try {
        for (const [session, timeout, expected] of [
          [`SET datestyle = 'SQL, DMY'; SET statement_timeout = '7s'`, 4321, { d: 'ISO, MDY', s: '4321ms' }],
          [`SET datestyle = 'German'; SET statement_timeout = '7s'`, 0, { d: 'ISO, MDY', s: '0' }],
          // Already the step's values: left as they are.
          [`SET datestyle = 'ISO, MDY'; SET statement_timeout = 0`, 0, { d: 'ISO, MDY', s: '0' }],
        ] as const) {
          for (const m of [mode, false] as const) {
            await c.query(session);
            expect(await beginAndClaim(c, new Date(Date.now() + 60_000), undefined, timeout, m)).toHaveLength(1);
            expect(await settings(), `${session} ${m}`).toEqual(expected);
            await c.query('ROLLBACK');
          }
        }
      } finally {
        await c.query('RESET datestyle; RESET statement_timeout');
      }
    });
  });

  it('defers to df._claim when role limits exist, which applies them', async () => {
    await t.query('DELETE FROM df.instances');
    await start(t, `'SELECT 1'`);
    await start(t, `'SELECT 2'`);
    const [{ me }] = await t.query<{ me: string }>('SELECT current_user::text AS me');
    await t.query('SELECT df.set_role_limit($1, 1)', [me]);
    try {
      await t.db.withClient(async (c) => {
        const mode = await prepareClaim(c);
        // The statement alone claims nothing.
        const res = (await c.query(`BEGIN; ${claimSql(new Date(Date.now() + 60_000), undefined, 0, mode)}`)) as unknown as { rows: unknown[] }[];
        expect(res[1].rows).toEqual([]);
        await c.query('ROLLBACK');
        // The claim the engine sends falls back to df._claim: one row, and the role's one slot taken, so
        // the same claim on another session gets nothing although the second instance is ready.
        const rows = await beginAndClaim(c, new Date(Date.now() + 60_000), undefined, 0, mode);
        expect(rows).toHaveLength(1);
        await t.db.withClient(async (other) => {
          expect(await beginAndClaim(other, new Date(Date.now() + 60_000), undefined, 0, await prepareClaim(other))).toEqual([]);
          await other.query('ROLLBACK');
        });
        await c.query('ROLLBACK');
      });
    } finally {
      await t.query('SELECT df.set_role_limit($1, NULL)', [me]);
    }
  });
});
