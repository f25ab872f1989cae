/**
 * Migration 0025: df.list_instances(label => …) as the docs write it, beside pg_durable's positional
 * overloads, which keep resolving exactly as before.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sqlError, useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

// Newest last: 33000004 is the newest 'nightly', 33000005 the newest of all.
const ARRANGED: [string, string, string | null, number][] = [
  ['33000001', 'completed', 'nightly', 50],
  ['33000002', 'failed', 'nightly', 40],
  ['33000003', 'completed', 'other', 30],
  ['33000004', 'completed', 'nightly', 20],
  ['33000005', 'pending', null, 10],
];

beforeAll(async () => {
  const c = await t.owner.connect();
  await c.query('BEGIN');
  for (const [id, status, label, minutesAgo] of ARRANGED) {
    await c.query(
      `INSERT INTO df.instances (id, label, root_node, status, submitted_by, created_at)
       VALUES ($1, $2, 'f0000001', $3, quote_ident(current_user)::regrole, now() - make_interval(mins => $4))`,
      [id, label, status, minutesAgo],
    );
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, submitted_by) VALUES ('f0000001', $1, 'SQL', 'SELECT 1', quote_ident(current_user)::regrole)`,
      [id],
    );
  }
  await c.query('COMMIT');
  c.release();
});

const ids = async (call: string) => (await t.query<{ instance_id: string }>(`SELECT instance_id FROM ${call}`)).map((r) => r.instance_id);
const columns = async (call: string) => (await t.owner.query(`SELECT * FROM ${call} LIMIT 0`)).fields.map((f) => f.name);
const PAGINATED = ['instance_id', 'label', 'function_name', 'status', 'execution_count', 'output', 'created_at', 'completed_at', 'next_cursor'];
const BASIC = PAGINATED.slice(0, 6);

describe('df.list_instances with named arguments', () => {
  it('label => filters by label, newest first, with the paginated columns', async () => {
    expect(await ids(`df.list_instances(label => 'nightly')`)).toEqual(['33000004', '33000002', '33000001']);
    expect(await columns(`df.list_instances(label => 'nightly')`)).toEqual(PAGINATED);
    expect(await ids(`df.list_instances(label => 'nope')`)).toEqual([]);
  });

  it('combines label with status_filter, limit_count and after_cursor in any order', async () => {
    expect(await ids(`df.list_instances(label => 'nightly', status_filter => 'completed')`)).toEqual(['33000004', '33000001']);
    const [first] = await t.query(`SELECT instance_id, next_cursor FROM df.list_instances(limit_count => 1, label => 'nightly')`);
    expect(first.instance_id).toBe('33000004');
    expect(first.next_cursor).toMatch(/^[0-9a-f]+$/);
    expect(await ids(`df.list_instances(label => 'nightly', limit_count => 1, after_cursor => '${first.next_cursor}')`)).toEqual(['33000002']);
  });

  it('takes a text value for the label, not only a literal', async () => {
    const rows = await t.query(`SELECT instance_id FROM df.list_instances(label => $1::text)`, ['other']);
    expect(rows).toEqual([{ instance_id: '33000003' }]);
  });

  it('keeps the limit rules: limit_count below 1 is 22023', async () => {
    expect(await sqlError(t, `SELECT * FROM df.list_instances(label => 'nightly', limit_count => 0)`)).toMatchObject({ code: '22023' });
  });

  it('leaves every positional form on the overload it resolved to before', async () => {
    expect(await columns(`df.list_instances()`)).toEqual(BASIC);
    expect(await columns(`df.list_instances(NULL)`)).toEqual(BASIC);
    expect(await columns(`df.list_instances('completed')`)).toEqual(BASIC);
    expect(await columns(`df.list_instances('completed'::text)`)).toEqual(BASIC);
    expect(await columns(`df.list_instances('completed'::varchar)`)).toEqual(BASIC);
    expect(await columns(`df.list_instances(NULL, 2)`)).toEqual(BASIC);
    expect(await columns(`df.list_instances(status_filter => 'completed')`)).toEqual(BASIC);
    expect(await columns(`df.list_instances(NULL, 2, 'nightly')`)).toEqual(PAGINATED);
    expect(await ids(`df.list_instances('completed')`)).toEqual(['33000004', '33000003', '33000001']);
    expect(await ids(`df.list_instances(NULL, 10, 'nightly')`)).toEqual(['33000004', '33000002', '33000001']);
    expect(await ids(`df.list_instances(NULL, 10, 'nightly', NULL)`)).toEqual(['33000004', '33000002', '33000001']);
    expect(await ids(`df.list_instances(status_filter => NULL, limit_count => 10, label_filter => 'other')`)).toEqual(['33000003']);
    // untyped parameters, as drivers send them
    const untyped = async (sql: string, params: unknown[]) => (await t.owner.query(sql, params)).fields.map((f) => f.name);
    expect(await untyped(`SELECT * FROM df.list_instances($1)`, ['completed'])).toEqual(BASIC);
    expect(await untyped(`SELECT * FROM df.list_instances($1, $2)`, [null, 2])).toEqual(BASIC);
    expect(await untyped(`SELECT * FROM df.list_instances($1, $2, $3)`, [null, 2, 'nightly'])).toEqual(PAGINATED);
    expect(await untyped(`SELECT * FROM df.list_instances($1, $2, $3, $4)`, [null, 2, 'nightly', null])).toEqual(PAGINATED);
    expect((await t.query(`SELECT instance_id FROM df.list_instances($1, $2, $3, $4)`, ['failed', 10, 'nightly', null])).map((r) => r.instance_id)).toEqual(['33000002']);
  });
});
