/**
 * SPEC §5: df.status and df.result read df.instances / the root node as the caller.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

/** Inserts an instance whose root is one SQL node, as the engine would leave it. */
async function arrangeOne(id: string, status: string, root: { status: string; result?: unknown }, label: string | null = null) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO df.instances (id, label, root_node, status, submitted_by)
       VALUES ($1, $2, $3, $4, quote_ident(current_user)::regrole)`,
      [id, label, `${id.slice(0, 7)}f`, status],
    );
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, status, result, submitted_by)
       VALUES ($1, $2, 'SQL', 'SELECT 1', $3, $4::jsonb, quote_ident(current_user)::regrole)`,
      [`${id.slice(0, 7)}f`, id, root.status, root.result === undefined ? null : JSON.stringify(root.result)],
    );
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

const one = async (sql: string, params: unknown[] = []) => (await t.query(sql, params))[0];

describe('df.status', () => {
  it('returns the stored status in lower case for each state', async () => {
    for (const [i, s] of ['pending', 'running', 'completed', 'failed', 'cancelled'].entries()) {
      await arrangeOne(`5a00000${i}`, s, { status: 'pending' });
      expect(await one('SELECT df.status($1) AS s', [`5a00000${i}`])).toEqual({ s });
    }
  });

  it('is NULL for an unknown id, a label, and NULL input (STRICT)', async () => {
    await arrangeOne('5a0000aa', 'running', { status: 'running' }, 'nightly');
    expect(await one(`SELECT df.status('ffffffff') AS a, df.status('nightly') AS b, df.status(NULL) AS c`)).toEqual({
      a: null,
      b: null,
      c: null,
    });
  });

  it('keeps the pg_durable parameter name for named notation', async () => {
    await arrangeOne('5a0000ab', 'running', { status: 'running' });
    expect(await one(`SELECT df.status(instance_id => '5a0000ab') AS s`)).toEqual({ s: 'running' });
  });
});

describe('df.result', () => {
  it('is the root result as jsonb text once the root completed', async () => {
    await arrangeOne('5b000001', 'completed', { status: 'completed', result: { rows: [{ answer: 42 }], row_count: 1 } });
    expect(await one(`SELECT df.result('5b000001') AS r`)).toEqual({ r: '{"rows": [{"answer": 42}], "row_count": 1}' });
  });

  it('keeps a JSON string result quoted (break value "done")', async () => {
    await arrangeOne('5b000002', 'completed', { status: 'completed', result: 'done' });
    expect(await one(`SELECT df.result('5b000002') AS r`)).toEqual({ r: '"done"' });
  });

  it('is NULL for a failed root, a running root, and an unknown instance', async () => {
    await arrangeOne('5b000003', 'failed', { status: 'failed', result: 'SQL execution failed: boom' });
    await arrangeOne('5b000004', 'running', { status: 'running' });
    expect(await one(`SELECT df.result('5b000003') AS a, df.result('5b000004') AS b, df.result('ffffffff') AS c`)).toEqual({
      a: null,
      b: null,
      c: null,
    });
  });

  it('reads the root node of its own instance even when another instance reuses the node id', async () => {
    await arrangeOne('5b000005', 'completed', { status: 'completed', result: 1 });
    // same node id 5b00000f in another instance (node ids are unique per instance only)
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO df.instances (id, root_node, status, submitted_by) VALUES ('5b000006', '5b00000f', 'completed', quote_ident(current_user)::regrole)`);
      await c.query(
        `INSERT INTO df.nodes (id, instance_id, node_type, query, status, result, submitted_by)
         VALUES ('5b00000f', '5b000006', 'SQL', 'SELECT 2', 'completed', '2', quote_ident(current_user)::regrole)`,
      );
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    expect(await one(`SELECT df.result('5b000005') AS a, df.result('5b000006') AS b`)).toEqual({ a: '1', b: '2' });
  });
});
