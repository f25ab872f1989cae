/**
 * SPEC §1.5 IDs: node ids are unique within a graph; the instance id is reserved with
 * INSERT … ON CONFLICT DO NOTHING and re-rolled up to 10 times. The id source (df._new_id) is
 * replaced in this file's database to force collisions.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

/** df._new_id returns 'aaaaaaaa' for its first `n` calls, then random ids. */
const collideFirst = (n: number) =>
  t.query(`
    DROP SEQUENCE IF EXISTS public.id_calls;
    CREATE SEQUENCE public.id_calls;
    CREATE OR REPLACE FUNCTION df._new_id() RETURNS varchar(8) LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT CASE WHEN nextval('public.id_calls') <= ${n} THEN 'aaaaaaaa'
                      ELSE right(replace(gen_random_uuid()::text, '-', ''), 8) END::varchar(8) $$;`);

describe('ids', () => {
  it('a colliding instance id is re-rolled; node ids may repeat across instances', async () => {
    await collideFirst(4); // start 1: node + instance; start 2: node, then one instance collision
    const [{ a }] = await t.query(`SELECT df.start('SELECT 1') AS a`);
    const [{ b }] = await t.query(`SELECT df.start('SELECT 2') AS b`);
    expect(a).toBe('aaaaaaaa');
    expect(b).toMatch(/^[0-9a-f]{8}$/);
    expect(b).not.toBe('aaaaaaaa');
    expect(await t.query(`SELECT instance_id = 'aaaaaaaa' AS first FROM df.nodes WHERE id = 'aaaaaaaa' ORDER BY 1`)).toEqual([
      { first: false },
      { first: true },
    ]);
  });

  it('after 10 collisions the start fails with "Failed to create instance" and writes nothing new', async () => {
    await collideFirst(1000);
    await expect(t.query(`SELECT df.start('SELECT 3')`)).rejects.toMatchObject({
      code: '23505',
      message: 'Failed to create instance: exhausted 10 attempts to generate a collision-free ID',
    });
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([{ n: 2 }]);
  });

  it('node ids are drawn again until unique within the graph', async () => {
    await collideFirst(2); // the first batch of three ids holds a duplicate, the second does not
    const rows = await t.query(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM df._flatten('{"node_type":"THEN","left_node":{"node_type":"SQL","query":"a"},"right_node":{"node_type":"SQL","query":"b"}}')`,
    );
    expect(rows).toEqual([{ n: 3, d: 3 }]);
    await collideFirst(1000);
    await expect(
      t.query(`SELECT * FROM df._flatten('{"node_type":"THEN","left_node":{"node_type":"SQL","query":"a"},"right_node":{"node_type":"SQL","query":"b"}}')`),
    ).rejects.toMatchObject({
      code: '23505',
      message: 'Invalid durable function graph: root: exhausted 10 attempts to generate a graph-unique node ID',
    });
  });
});
