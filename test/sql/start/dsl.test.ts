/**
 * df.start over graphs built with the SQL DSL (needs 0002_dsl + 0003_operators).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

beforeAll(async () => {
  const [{ ready }] = await t.query(`SELECT to_regprocedure('df.seq(text,text)') IS NOT NULL AS ready`);
  if (!ready) throw new Error('the SQL DSL (migrations/0002_dsl.sql) is not installed yet');
});

describe('DSL graphs', () => {
  it('200 chained df.seq steps start as 399 rows', async () => {
    const [{ id }] = await t.query(`
      WITH RECURSIVE c(i, g) AS (
        SELECT 1, 'SELECT 1'::text
        UNION ALL
        SELECT i + 1, df.seq(g, 'SELECT ' || (i + 1)) FROM c WHERE i < 200)
      SELECT df.start(g) AS id FROM c WHERE i = 200`);
    expect(await t.query(`SELECT node_type, count(*)::int AS n FROM df.nodes WHERE instance_id = $1 GROUP BY 1 ORDER BY 1`, [id])).toEqual([
      { node_type: 'SQL', n: 200 },
      { node_type: 'THEN', n: 199 },
    ]);
  });

  it("operators: 'a' ~> 'b' |=> 'x' names the THEN, an IF gets its condition id in query", async () => {
    const [{ id }] = await t.query(`SELECT df.start(('SELECT 1' ~> 'SELECT 2' |=> 'x') ~> ('SELECT true' ?> 'SELECT 3' !> 'SELECT 4')) AS id`);
    const rows = await t.query(`SELECT id, node_type, query, result_name FROM df.nodes WHERE instance_id = $1`, [id]);
    expect(rows.filter((r) => r.result_name === 'x').map((r) => r.node_type)).toEqual(['THEN']);
    const ifRow = rows.find((r) => r.node_type === 'IF')!;
    const cond = rows.find((r) => r.query === 'SELECT true')!;
    expect(ifRow.query).toBe(`{"condition_node":"${cond.id}"}`);
  });
});
