/**
 * SPEC §5: the paginated df.list_instances overload — keyset on (created_at DESC, id ASC), next_cursor,
 * label filter, and rejection of every malformed after_cursor.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

// Six instances; 22000003 and 22000004 share a created_at (the id breaks the tie, ascending).
const ARRANGED: [string, string, string | null, string][] = [
  ['22000001', 'completed', 'batch', '2024-06-15 12:00:01.000001+00'],
  ['22000002', 'failed', 'batch', '2024-06-15 12:00:02+00'],
  ['22000004', 'completed', null, '2024-06-15 12:00:03.5+00'],
  ['22000003', 'running', 'batch', '2024-06-15 12:00:03.5+00'],
  ['22000005', 'completed', 'batch', '2024-06-15 12:00:04+00'],
  ['22000006', 'pending', 'other', '2024-06-15 12:00:05+00'],
];

beforeAll(async () => {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    for (const [id, status, label, createdAt] of ARRANGED) {
      await c.query(
        `INSERT INTO df.instances (id, label, root_node, status, submitted_by, created_at, completed_at)
         VALUES ($1, $2, 'f0000001', $3, quote_ident(current_user)::regrole, $4::timestamptz,
                 CASE WHEN $3 = 'completed' THEN $4::timestamptz + interval '1 second' END)`,
        [id, label, status, createdAt],
      );
      await c.query(
        `INSERT INTO df.nodes (id, instance_id, node_type, query, submitted_by) VALUES ('f0000001', $1, 'SQL', 'SELECT 1', quote_ident(current_user)::regrole)`,
        [id],
      );
    }
    await c.query('COMMIT');
  } finally {
    c.release();
  }
});

const page = (limit: number, cursor: string | null, label: string | null = null, status: string | null = null) =>
  t.query(`SELECT * FROM df.list_instances($1, $2, $3, $4)`, [status, limit, label, cursor]);

async function error(sql: string, params: unknown[] = []) {
  try {
    await t.query(sql, params);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error(`no error from ${sql}`);
}

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');

describe('df.list_instances (paginated)', () => {
  it('walks three pages of two, newest first, ties by id, with one next_cursor per page', async () => {
    const p1 = await page(2, null);
    expect(p1.map((r) => r.instance_id)).toEqual(['22000006', '22000005']);
    expect(new Set(p1.map((r) => r.next_cursor)).size).toBe(1);
    const c1 = p1[0].next_cursor;
    expect(c1).toMatch(/^[0-9a-f]+$/);

    const p2 = await page(2, c1);
    expect(p2.map((r) => r.instance_id)).toEqual(['22000003', '22000004']);
    expect(new Set(p2.map((r) => r.next_cursor)).size).toBe(1);

    const p3 = await page(2, p2[0].next_cursor);
    expect(p3.map((r) => r.instance_id)).toEqual(['22000002', '22000001']);
    // exactly at the end: still a further (empty) page would be wrong, so the last page has no cursor
    expect(p3.map((r) => r.next_cursor)).toEqual([null, null]);
  });

  it('encodes the cursor as hex of v1|<created_at USOF>|<id> of the last row on the page', async () => {
    const c = await t.owner.connect();
    try {
      await c.query(`SET TIME ZONE 'UTC'`);
      const { rows } = await c.query(`SELECT next_cursor FROM df.list_instances(NULL, 3, NULL)`);
      expect(rows[0].next_cursor).toBe(hex('v1|2024-06-15T12:00:03.500000+00|22000003'));
      await c.query(`SET TIME ZONE 'Asia/Kolkata'`);
      const again = await c.query(`SELECT next_cursor FROM df.list_instances(NULL, 3, NULL)`);
      expect(again.rows[0].next_cursor).toBe(hex('v1|2024-06-15T17:30:03.500000+05:30|22000003'));
    } finally {
      await c.query('RESET ALL');
      c.release();
    }
  });

  it('accepts a cursor made in another time zone, upper-case hex, and an id that sorts between rows', async () => {
    expect((await page(10, hex('v1|2024-06-15T17:30:03.500000+05:30|22000003'))).map((r) => r.instance_id)).toEqual([
      '22000004',
      '22000002',
      '22000001',
    ]);
    expect((await page(10, hex('v1|2024-06-15T12:00:03.500000+00|22000003').toUpperCase())).map((r) => r.instance_id)).toEqual([
      '22000004',
      '22000002',
      '22000001',
    ]);
  });

  it('returns the extra columns: created_at, completed_at (NULL unless completed)', async () => {
    const rows = await t.query(
      `SELECT instance_id, status, created_at = $1::timestamptz AS created_ok, completed_at IS NULL AS no_completed_at
         FROM df.list_instances(NULL, 2, 'batch', NULL)`,
      ['2024-06-15 12:00:04+00'],
    );
    expect(rows).toEqual([
      { instance_id: '22000005', status: 'completed', created_ok: true, no_completed_at: false },
      { instance_id: '22000003', status: 'running', created_ok: false, no_completed_at: true },
    ]);
    const [r] = await t.query(`SELECT pg_get_function_result('df.list_instances(text,integer,text,text)'::regprocedure) AS res,
                                      pg_get_function_arguments('df.list_instances(text,integer,text,text)'::regprocedure) AS args`);
    expect(r).toEqual({
      res: 'TABLE(instance_id text, label text, function_name text, status text, execution_count bigint, output text, created_at timestamp with time zone, completed_at timestamp with time zone, next_cursor text)',
      args: 'status_filter text, limit_count integer, label_filter text, after_cursor text DEFAULT NULL::text',
    });
  });

  it('combines the label and status filters with the keyset', async () => {
    const p1 = await page(2, null, 'batch');
    expect(p1.map((r) => r.instance_id)).toEqual(['22000005', '22000003']);
    const p2 = await page(2, p1[0].next_cursor, 'batch');
    expect(p2.map((r) => [r.instance_id, r.next_cursor])).toEqual([
      ['22000002', null],
      ['22000001', null],
    ]);
    expect((await page(10, null, 'batch', 'completed')).map((r) => r.instance_id)).toEqual(['22000005', '22000001']);
    expect(await page(10, null, 'nope')).toEqual([]);
  });

  it('resolves 3 and 4 positional arguments and named notation to this overload', async () => {
    const [r] = await t.query(`
      SELECT (SELECT count(*) FROM df.list_instances(NULL, 100, NULL))::int AS three,
             (SELECT count(*) FROM df.list_instances(status_filter => NULL, limit_count => 1, label_filter => 'other'))::int AS named`);
    expect(r).toEqual({ three: 6, named: 1 });
  });

  it('rejects every malformed after_cursor with 22023', async () => {
    const ts = '2024-06-15T12:00:03.500000+00';
    const bad = [
      '', // empty
      'a'.repeat(514), // longer than 512 hex characters
      hex(`v1|${ts}|22000003`).slice(0, -1), // odd length
      hex(`v1|${ts}|22000003`).replace(/^../, 'zz'), // not hex
      'c328' + hex(`|${ts}|x`), // not UTF-8
      hex(`v2|${ts}|22000003`), // unknown version
      hex(`|${ts}|22000003`), // empty version
      hex(`v1||22000003`), // empty timestamp
      hex(`v1|${ts}|`), // empty id
      hex(`v1|${ts}`), // no id part
      hex(`v1`), // no separators
      hex(`v1|2024-06-15 12:00:03.500000+00|22000003`), // wrong timestamp shape (space)
      hex(`v1|2024-06-15T12:00:03.5+00|22000003`), // fewer than 6 fractional digits
      hex(`v1|2024-06-15T12:00:03.500000Z|22000003`), // Z instead of an offset
      hex(`v1|2024-13-45T12:00:03.500000+00|22000003`), // well-shaped but impossible
    ];
    for (const cursor of bad) {
      expect({ cursor, ...(await error(`SELECT * FROM df.list_instances(NULL, 2, NULL, $1)`, [cursor])) }).toEqual({
        cursor,
        code: '22023',
        message: 'df.list_instances: invalid after_cursor',
      });
    }
    // a maximal-length but otherwise valid cursor is accepted
    const padded = hex(`v1|${ts}|${'9'.repeat(256 - 'v1|'.length - ts.length - '|'.length)}`);
    expect(padded.length).toBe(512);
    expect((await page(1, padded)).map((r) => r.instance_id)).toEqual(['22000002']);
  });
});
