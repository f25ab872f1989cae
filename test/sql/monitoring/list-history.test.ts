/**
 * Migration 0035: with a long history of finished instances, df.list_instances and the retention prune
 * read index ranges, not the history. Measured in buffers touched (EXPLAIN ANALYZE of the call counts
 * the statements the function runs), which do not depend on the machine's speed: a walk over the 20,000
 * finished instances below touches hundreds of buffers, a page of 10 from an index range a few dozen.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { pruneHistory } from '../../../src/engine/maintenance.ts';
import { useTestDb } from '../../helpers/db.ts';
import { buffers } from '../../helpers/plans.ts';

const t = useTestDb();
const HISTORY = 20_000;

beforeAll(async () => {
  // One finished instance a minute for two weeks back, one in ten labelled nightly (half of them failed),
  // one in ten weekly (none failed), one in twenty failed; then
  // a few live ones, newest. Consistent rows, so the foreign-key triggers can be skipped.
  const [{ owner }] = await t.query<{ owner: string }>('SELECT current_user AS owner');
  const c = await t.superuser.connect();
  try {
    await c.query('SET session_replication_role = replica');
    await c.query(
      `INSERT INTO df.instances (id, label, root_node, status, submitted_by, created_at, completed_at)
       SELECT lpad(to_hex(g), 8, '0'), CASE g % 10 WHEN 0 THEN 'nightly' WHEN 1 THEN 'weekly' END, '00000001',
              CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'completed' END, $2::regrole,
              now() - make_interval(mins => g + 60), now() - make_interval(mins => g + 60)
         FROM generate_series(1, $1::int) g`,
      [HISTORY, owner],
    );
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by, created_at)
       SELECT 'ffff000' || g, '00000001', CASE WHEN g % 2 = 0 THEN 'running' ELSE 'pending' END, $1::regrole, now() - make_interval(secs => g)
         FROM generate_series(1, 6) g`,
      [owner],
    );
    await c.query('ANALYZE df.instances');
  } finally {
    c.release();
  }
});

describe('df.list_instances over a long history', () => {
  it('every filter reads an index range: a page of 10 touches a few dozen buffers, not the 20,000 finished instances', async () => {
    const calls: [string, unknown[]][] = [
      [`SELECT * FROM df.list_instances(NULL, 10)`, []],
      [`SELECT * FROM df.list_instances('running', 10)`, []],
      [`SELECT * FROM df.list_instances('pending', 10)`, []],
      [`SELECT * FROM df.list_instances('failed', 10, NULL, NULL)`, []],
      [`SELECT * FROM df.list_instances('cancelled', 10, NULL, NULL)`, []],
      [`SELECT * FROM df.list_instances(label => 'nightly', limit_count => 10)`, []],
      [`SELECT * FROM df.list_instances(label => 'nightly', status_filter => 'failed', limit_count => 10)`, []],
      // No instance has both: 2,000 weekly and 1,000 failed ones, none of them both.
      [`SELECT * FROM df.list_instances(label => 'weekly', status_filter => 'failed', limit_count => 10)`, []],
    ];
    const cursor = (await t.query<{ k: string }>(`SELECT next_cursor AS k FROM df.list_instances('completed', 10, NULL, NULL) OFFSET 9`))[0].k;
    calls.push([`SELECT * FROM df.list_instances('completed', 10, NULL, $1)`, [cursor]]);
    const read: { sql: string; buffers: number }[] = [];
    for (const [sql, params] of calls) read.push({ sql, buffers: await buffers(t, sql, params) });
    expect(read.filter((r) => r.buffers > 60)).toEqual([]);
  });

  it('lists what the stored status and the claim lock say, newest first', async () => {
    const ids = async (sql: string) => (await t.query<{ instance_id: string }>(sql)).map((r) => r.instance_id);
    // Nothing holds a claim lock here: the pending ones list as pending.
    expect(await ids(`SELECT instance_id FROM df.list_instances('running', 10)`)).toEqual(['ffff0002', 'ffff0004', 'ffff0006']);
    expect(await ids(`SELECT instance_id FROM df.list_instances('pending', 10)`)).toEqual(['ffff0001', 'ffff0003', 'ffff0005']);
    expect(await ids(`SELECT instance_id FROM df.list_instances('failed', 2)`)).toEqual(['00000014', '00000028']);
    expect(await ids(`SELECT instance_id FROM df.list_instances(label => 'nightly', status_filter => 'failed', limit_count => 2)`)).toEqual(['00000014', '00000028']);
  });
});

describe('the retention prune over a long history', () => {
  it('reads its edge and its batch from instances_finished_idx: bounded by keep + batch, not the history', async () => {
    const bound = `SELECT count(*) FROM df.instances
                    WHERE status IN ('completed', 'failed', 'cancelled')
                      AND (coalesce(completed_at, created_at), id) < (now() - interval '7 days', ''::varchar)`;
    const plan = (await t.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${bound}`)).map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/instances_finished_idx/);
    const due = (await t.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE completed_at < now() - interval '7 days'`))[0].n;
    expect(due).toBeGreaterThan(9000);
    const prune = (retentionDays: number, keep: number, batch: number) => t.db.withClient((c) => pruneHistory(c, { retentionDays, keep, batch }));
    // Retention alone (keep beyond the history): oldest first, a batch at a time, up to the cutoff.
    expect(await prune(7, 100_000, 500)).toBe(500);
    expect(await prune(7, 100_000, 100_000)).toBe(due - 500);
    expect(await prune(7, 100_000, 100_000)).toBe(0);
    // Keep alone (retention beyond the history): all but the 100 newest finished ones.
    expect(await prune(1000, 100, 100_000)).toBe(HISTORY - due - 100);
    expect((await t.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status IN ('completed', 'failed')`))[0].n).toBe(100);
  });
});
