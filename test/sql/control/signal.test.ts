/**
 * SPEC §5 / §3.10: df.signal validates, records the signal in df.signals and makes every running SIGNAL
 * node of the instance waiting on that name claimable (DESIGN decision 6: it never advances the graph).
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

const sig = (name: string, timeout: number | null = null) => JSON.stringify({ signal_name: name, timeout_seconds: timeout });

/**
 * JOIN(s1 'approve' running, JOIN(s2 'approve' running, s3 'other' running)) plus s4 'approve' still
 * pending (not subscribed yet).
 */
async function arrange(id: string, status = 'running') {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by) VALUES ($1, '5e000001', $2, quote_ident(current_user)::regrole)`,
      [id, status],
    );
    const me = `quote_ident(current_user)::regrole`;
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, left_node, right_node, status, submitted_by) VALUES
         ('5e000001', $1, 'THEN', NULL, '5e000002', '5e000005', 'running', ${me}),
         ('5e000002', $1, 'JOIN', NULL, '5e000003', '5e000004', 'running', ${me}),
         ('5e000003', $1, 'SIGNAL', $2, NULL, NULL, 'running', ${me}),
         ('5e000004', $1, 'SIGNAL', $3, NULL, NULL, 'running', ${me}),
         ('5e000005', $1, 'JOIN', NULL, '5e000006', '5e000007', 'pending', ${me}),
         ('5e000006', $1, 'SIGNAL', $4, NULL, NULL, 'pending', ${me}),
         ('5e000007', $1, 'SQL', 'SELECT 1', NULL, NULL, 'pending', ${me})`,
      [id, sig('approve'), sig('other', 30), sig('approve')],
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

const claimable = async (id: string) =>
  (await t.query(`SELECT id FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL ORDER BY id`, [id])).map((r) => r.id);

describe('df.signal', () => {
  it('returns OK, records the JSON payload and makes only the running waits on that name claimable', async () => {
    await arrange('5e0000a1');
    expect(await t.query(`SELECT df.signal('5e0000a1', 'approve', '{"ok": true}') AS r`)).toEqual([{ r: 'OK' }]);
    expect(
      await t.query(`SELECT instance_id, signal_name, payload, submitted_by::text AS owner FROM df.signals WHERE instance_id = '5e0000a1'`),
    ).toEqual([{ instance_id: '5e0000a1', signal_name: 'approve', payload: { ok: true }, owner: 'pgflare_owner' }]);
    expect(await claimable('5e0000a1')).toEqual(['5e000003']);
    // nothing else changed: the graph is the engine's to advance
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = '5e0000a1' AND status = 'completed'`)).toEqual([{ n: 0 }]);
  });

  it('stores non-JSON text as a JSON string and defaults the payload to {}', async () => {
    await arrange('5e0000a2');
    await t.query(`SELECT df.signal('5e0000a2', 'other', 'approve'), df.signal('5e0000a2', 'other')`);
    expect(await t.query(`SELECT payload FROM df.signals WHERE instance_id = '5e0000a2' ORDER BY id`)).toEqual([
      { payload: 'approve' },
      { payload: {} },
    ]);
    expect(await claimable('5e0000a2')).toEqual(['5e000004']);
  });

  it('records but wakes nothing when no wait is subscribed, or the instance is terminal', async () => {
    await arrange('5e0000a3');
    await arrange('5e0000a4', 'cancelled');
    await t.query(`SELECT df.signal('5e0000a3', 'nobody-waits'), df.signal('5e0000a4', 'approve')`);
    expect(await claimable('5e0000a3')).toEqual([]);
    expect(await claimable('5e0000a4')).toEqual([]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.signals WHERE instance_id IN ('5e0000a3', '5e0000a4')`)).toEqual([{ n: 2 }]);
  });

  it('notifies pgflare_ready with the instance id when it wakes a wait', async () => {
    await arrange('5e0000a5');
    const listener = new pg.Client({ connectionString: t.url() });
    await listener.connect();
    try {
      await listener.query('LISTEN pgflare_ready');
      const got = new Promise<string | undefined>((resolve) => listener.once('notification', (n) => resolve(n.payload)));
      await t.query(`SELECT df.signal('5e0000a5', 'approve')`);
      expect(await got).toBe('5e0000a5');
    } finally {
      await listener.end();
    }
  });

  it('rejects empty ids and names with 22023 before looking the instance up', async () => {
    expect(await error(`SELECT df.signal('', 'approve')`)).toEqual({ code: '22023', message: 'Instance ID cannot be empty' });
    expect(await error(`SELECT df.signal('deadbeef', '')`)).toEqual({ code: '22023', message: 'Signal name cannot be empty' });
  });

  it('raises P0002 for an unknown instance and records nothing', async () => {
    expect(await error(`SELECT df.signal('deadbeef', 'approve', 'x')`)).toEqual({
      code: 'P0002',
      message: 'Instance not found or access denied: deadbeef',
    });
    expect(await t.query(`SELECT count(*)::int AS n FROM df.signals WHERE instance_id = 'deadbeef'`)).toEqual([{ n: 0 }]);
  });

  it('is STRICT', async () => {
    expect(await t.query(`SELECT df.signal(NULL, 'a') AS a, df.signal('5e0000a1', NULL) AS b, df.signal('5e0000a1', 'a', NULL) AS c`)).toEqual([
      { a: null, b: null, c: null },
    ]);
  });
});
