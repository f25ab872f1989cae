/**
 * SPEC §5 / §3.12: df.cancel flips a non-terminal instance to cancelled and withdraws its queued work;
 * terminal instances stay as they are; an invisible instance is an error.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

/** THEN(a, b): a running (claimed), b queued with run_at set. */
async function arrange(id: string, status: string) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by, updated_at)
       VALUES ($1, 'c0000001', $2, quote_ident(current_user)::regrole, now() - interval '1 hour')`,
      [id, status],
    );
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, left_node, right_node, status, submitted_by, run_at) VALUES
         ('c0000001', $1, 'THEN', NULL, 'c0000002', 'c0000003', 'running', quote_ident(current_user)::regrole, NULL),
         ('c0000002', $1, 'SQL', 'SELECT 1', NULL, NULL, 'running', quote_ident(current_user)::regrole, now()),
         ('c0000003', $1, 'SQL', 'SELECT 2', NULL, NULL, 'pending', quote_ident(current_user)::regrole, now() + interval '1 minute')`,
      [id],
    );
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

async function error(sql: string, params: unknown[] = []) {
  try {
    await t.query(sql, params);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error(`no error from ${sql}`);
}

const instance = async (id: string) =>
  (await t.query(`SELECT status, updated_at > now() - interval '1 minute' AS touched FROM df.instances WHERE id = $1`, [id]))[0];
const queued = async (id: string) =>
  (await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL`, [id]))[0].n;

describe('df.cancel', () => {
  it('cancels a running instance with the default reason and withdraws its queued nodes', async () => {
    await arrange('ca000001', 'running');
    expect(await t.query(`SELECT df.cancel('ca000001') AS r`)).toEqual([{ r: 'Instance ca000001 cancelled: Cancelled by user' }]);
    expect(await instance('ca000001')).toEqual({ status: 'cancelled', touched: true });
    expect(await queued('ca000001')).toBe(0);
    // running nodes keep their physical status (§3.12)
    expect(await t.query(`SELECT id, status FROM df.nodes WHERE instance_id = 'ca000001' ORDER BY id`)).toEqual([
      { id: 'c0000001', status: 'running' },
      { id: 'c0000002', status: 'running' },
      { id: 'c0000003', status: 'pending' },
    ]);
  });

  it('cancels a pending instance and echoes a custom reason (named notation)', async () => {
    await arrange('ca000002', 'pending');
    expect(await t.query(`SELECT df.cancel(instance_id => 'ca000002', reason => 'no longer needed') AS r`)).toEqual([
      { r: 'Instance ca000002 cancelled: no longer needed' },
    ]);
    expect(await instance('ca000002')).toEqual({ status: 'cancelled', touched: true });
  });

  it('leaves completed and failed instances unchanged but still reports the cancel (test 22)', async () => {
    await arrange('ca000003', 'completed');
    await arrange('ca000004', 'failed');
    expect(await t.query(`SELECT df.cancel('ca000003') AS a, df.cancel('ca000004', 'x') AS b`)).toEqual([
      { a: 'Instance ca000003 cancelled: Cancelled by user', b: 'Instance ca000004 cancelled: x' },
    ]);
    expect(await instance('ca000003')).toEqual({ status: 'completed', touched: false });
    expect(await instance('ca000004')).toEqual({ status: 'failed', touched: false });
    expect(await queued('ca000003')).toBe(2);
  });

  it('is idempotent on a cancelled instance', async () => {
    await arrange('ca000005', 'running');
    await t.query(`SELECT df.cancel('ca000005')`);
    expect(await t.query(`SELECT df.cancel('ca000005', 'again') AS r`)).toEqual([{ r: 'Instance ca000005 cancelled: again' }]);
    expect((await instance('ca000005')).status).toBe('cancelled');
  });

  it('raises P0002 for an unknown instance', async () => {
    expect(await error(`SELECT df.cancel('deadbeef')`)).toEqual({
      code: 'P0002',
      message: 'Instance not found or access denied: deadbeef',
    });
  });

  it('is STRICT: NULL arguments give NULL without touching anything', async () => {
    await arrange('ca000006', 'running');
    expect(await t.query(`SELECT df.cancel(NULL) AS a, df.cancel('ca000006', NULL) AS b`)).toEqual([{ a: null, b: null }]);
    expect((await instance('ca000006')).status).toBe('running');
  });

  it('rolls back with the caller: the cancel is part of the caller transaction', async () => {
    await arrange('ca000007', 'running');
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT df.cancel('ca000007')`);
      expect((await c.query(`SELECT df.status('ca000007') AS s`)).rows).toEqual([{ s: 'cancelled' }]);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect((await instance('ca000007')).status).toBe('running');
    expect(await queued('ca000007')).toBe(2);
  });
});
