/**
 * SPEC §5 / §2: df.await_instance polls df.instances.status every 100 ms until a terminal state;
 * df.wait_for_completion is its deprecated alias.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { sqlError, useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

async function arrange(id: string, status: string) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by) VALUES ($1, 'a0000001', $2, quote_ident(current_user)::regrole)`,
      [id, status],
    );
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, status, submitted_by)
       VALUES ('a0000001', $1, 'SQL', 'SELECT 1', 'running', quote_ident(current_user)::regrole)`,
      [id],
    );
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

const error = (sql: string, settings: string[] = []) => sqlError(t, sql, settings);

/** Resolves once a backend is running `df.await_instance` for `id` (no sleeping: polls pg_stat_activity). */
async function untilAwaiting(id: string) {
  for (let i = 0; i < 1000; i++) {
    const rows = await t.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
          AND query LIKE '%await_instance%' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`,
      [id],
    );
    if (rows.length > 0) return;
  }
  throw new Error(`no session is awaiting ${id}`);
}

describe('df.await_instance', () => {
  it('returns the terminal status at once for a finished instance', async () => {
    await arrange('a1000001', 'completed');
    await arrange('a1000002', 'failed');
    await arrange('a1000003', 'cancelled');
    expect(
      await t.query(`SELECT df.await_instance('a1000001') AS a, df.await_instance('a1000002', 1) AS b, df.await_instance(instance_id => 'a1000003') AS c`),
    ).toEqual([{ a: 'completed', b: 'failed', c: 'cancelled' }]);
  });

  it('sees a completion committed by another session while it waits', async () => {
    await arrange('a1000004', 'running');
    const started = Date.now();
    const waiting = t.query(`SELECT df.await_instance('a1000004', 2) AS s`);
    await untilAwaiting('a1000004');
    await t.query(`UPDATE df.instances SET status = 'completed', completed_at = now() WHERE id = 'a1000004'`);
    expect(await waiting).toEqual([{ s: 'completed' }]);
    expect(Date.now() - started).toBeLessThan(1900);
  });

  it('times out with 57014 and the last status it saw', async () => {
    await arrange('a1000005', 'running');
    const started = Date.now();
    expect(await error(`SELECT df.await_instance('a1000005', 1)`)).toEqual({
      code: '57014',
      message: 'Timeout after 1s waiting for instance a1000005 (status: running). Check if background worker is running.',
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(850);
    expect(elapsed).toBeLessThan(2500);
  });

  it('a caller-mode start awaited from its own open transaction times out (status: pending)', async () => {
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO df.instances (id, root_node, status, submitted_by) VALUES ('a1000006', 'a0000001', 'pending', quote_ident(current_user)::regrole)`);
      await c.query(`INSERT INTO df.nodes (id, instance_id, node_type, query, submitted_by) VALUES ('a0000001', 'a1000006', 'SQL', 'SELECT 1', quote_ident(current_user)::regrole)`);
      await expect(c.query(`SELECT df.await_instance('a1000006', 1)`)).rejects.toMatchObject({
        code: '57014',
        message: 'Timeout after 1s waiting for instance a1000006 (status: pending). Check if background worker is running.',
      });
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });

  it('raises P0002 for an unknown instance', async () => {
    expect(await error(`SELECT df.await_instance('deadbeef')`)).toEqual({ code: 'P0002', message: 'Instance not found: deadbeef' });
  });

  it('rejects a non-positive timeout with 22023', async () => {
    await arrange('a1000007', 'completed');
    expect(await error(`SELECT df.await_instance('a1000007', 0)`)).toEqual({ code: '22023', message: 'Timeout must be positive' });
    expect(await error(`SELECT df.await_instance('a1000007', -5)`)).toEqual({ code: '22023', message: 'Timeout must be positive' });
  });

  it('refuses to run inside a workflow (55000), before anything else', async () => {
    expect(await error(`SELECT df.await_instance('deadbeef', 0)`, [`SET df.in_workflow = 'true'`])).toEqual({
      code: '55000',
      message:
        'df.await_instance() cannot be called inside a workflow - it would block a worker thread (and self-deadlock if waiting on the current instance). Use df.signal() and df.wait_for_signal() for cross-workflow coordination.',
    });
  });

  it('is STRICT', async () => {
    expect(await t.query(`SELECT df.await_instance(NULL) AS a, df.await_instance('deadbeef', NULL) AS b`)).toEqual([{ a: null, b: null }]);
  });

  it('used as a workflow step in the same statement, trips the §1.4 helper trap', async () => {
    await arrange('a100000a', 'completed');
    expect(await error(`SELECT df.seq(df.await_instance('a100000a'), 'SELECT 1')`)).toEqual({
      code: '55000',
      message: 'df.await_instance cannot be used as a workflow step. Call df.await_instance before df.start().',
    });
  });

  it('leaves the §1.4 helper marker on success', async () => {
    await arrange('a1000008', 'completed');
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query(
        `WITH r AS MATERIALIZED (SELECT df.await_instance('a1000008') AS r)
         SELECT r.r, current_setting('df.non_future_helper') = E'df.await_instance\\n' || df._helper_stamp() AS marked FROM r`,
      );
      expect(rows).toEqual([{ r: 'completed', marked: true }]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  });
});

describe('df.wait_for_completion', () => {
  it('warns that it is deprecated and returns what df.await_instance returns', async () => {
    await arrange('a1000009', 'failed');
    const c = new pg.Client({ connectionString: t.url() });
    await c.connect();
    try {
      const notices: { severity?: string; message: string }[] = [];
      c.on('notice', (n) => notices.push({ severity: n.severity, message: n.message ?? "" }));
      expect((await c.query(`SELECT df.wait_for_completion('a1000009', 1) AS s`)).rows).toEqual([{ s: 'failed' }]);
      expect(notices).toEqual([{ severity: 'WARNING', message: 'df.wait_for_completion() is deprecated; use df.await_instance() instead' }]);
      await expect(c.query(`SELECT df.wait_for_completion('deadbeef')`)).rejects.toMatchObject({
        code: 'P0002',
        message: 'Instance not found: deadbeef',
      });
    } finally {
      await c.end();
    }
  });
});
