/**
 * The claim's column list is defined once, by df._claim's RETURNS TABLE. Its other copies (df._claim_many's
 * RETURNS TABLE, the prepared wake-up claim PREPARED_CLAIM_SQL, and CLAIMED_COLUMNS / ClaimedRow in
 * src/engine/queries/claim.ts) are read here and must agree with it, names, order and types.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { CLAIMED_COLUMNS, PREPARED_CLAIM_SQL } from '../../src/engine/queries/claim.ts';

const t = useTestDb();

/** A function's output columns (RETURNS TABLE), in order, from the catalog. */
const outputColumns = (fn: string) =>
  t.query<{ name: string; type: number }>(
    `SELECT a.name, a.type::int AS type
       FROM pg_proc p, unnest(p.proargnames, p.proallargtypes, p.proargmodes) WITH ORDINALITY AS a(name, type, mode, n)
      WHERE p.oid = $1::regprocedure AND a.mode = 't' ORDER BY a.n`,
    [fn],
  );

describe('the claim column list', () => {
  it("df._claim_many returns df._claim's columns", async () => {
    const claim = await outputColumns('df._claim(timestamptz, varchar, varchar)');
    expect(claim.length).toBeGreaterThan(20);
    expect(await outputColumns('df._claim_many(timestamptz, integer)')).toEqual(claim);
  });

  it("CLAIMED_COLUMNS (ClaimedRow's fields) is df._claim's column list, in order", async () => {
    const claim = await outputColumns('df._claim(timestamptz, varchar, varchar)');
    expect([...CLAIMED_COLUMNS]).toEqual(claim.map((c) => c.name));
  });

  it("the prepared wake-up claim returns df._claim's columns (and its step settings), names and types", async () => {
    const claim = await outputColumns('df._claim(timestamptz, varchar, varchar)');
    const c = await t.owner.connect();
    try {
      // Executed, claiming nothing (due before 1970): the result still describes its columns.
      await c.query(`PREPARE claim_columns(int8, text) AS ${PREPARED_CLAIM_SQL}`);
      const res = await c.query(`EXECUTE claim_columns(0, '0')`);
      expect(res.rows).toEqual([]);
      const fields = res.fields.map((f) => ({ name: f.name, type: f.dataTypeID }));
      expect(fields.at(-1)?.name).toBe('step_settings');
      expect(fields.slice(0, -1)).toEqual(claim);
    } finally {
      await c.query('DEALLOCATE ALL');
      c.release();
    }
  });
});
