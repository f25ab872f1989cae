/**
 * df._claim keeps a generic plan (0018) made from df.scopes' statistics. Taken when the table was nearly
 * empty but large on disk (after instances were deleted, before a vacuum), they say "one row", and the
 * claim's join to the row's scope became a scan of all of scopes_pkey with the key in a join filter:
 * found in bench W2 sustained after another contender's phase, 12 ms per claim once 11 000 finished
 * instances had left their root scope, and 1 000 → 200 steps/s within a minute. 0022 makes the lookup a
 * probe whatever the statistics say. Counted with pg_stat_get_xact_tuples_returned, as in plans.test.ts.
 */
import { beforeAll, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { start } from '../helpers/engine.ts';

const t = useTestDb();
let running: { id: string; node: string };

beforeAll(async () => {
  await t.query('ALTER TABLE df.scopes SET (autovacuum_enabled = false)');
  // A big df.scopes emptied but for one row, then analysed: one row on 20 000 rows' worth of pages. Then it
  // grows to 40 000 rows (finished instances keep their root scopes).
  const id = await start(t, `'SELECT 1' ~> 'SELECT 2'`);
  const scope = (from: number, to: number) =>
    t.query(
      `INSERT INTO df.scopes (instance_id, scope_id, root_node, submitted_by, status, result)
       SELECT i.id, lpad(to_hex(g), 8, '0'), i.root_node, i.submitted_by, 'running', '[{"?column?":1}]'
         FROM df.instances i, generate_series($2::int, $3::int) g WHERE i.id = $1`,
      [id, from, to],
    );
  await scope(1, 20000);
  await t.query(`DELETE FROM df.scopes WHERE scope_id <> '00000001'`);
  await t.query('ANALYZE df.scopes');
  const [{ reltuples }] = await t.query<{ reltuples: number }>(`SELECT reltuples FROM pg_class WHERE oid = 'df.scopes'::regclass`);
  expect(reltuples).toBe(1);
  await scope(20001, 60000);
  // The instance's first step runs in scope <id>:60000 (as a JOIN branch would); it is the one ready row.
  const [{ root_node: node }] = await t.query<{ root_node: string }>('SELECT root_node FROM df.instances WHERE id = $1', [id]);
  const [{ first }] = await t.query<{ first: string }>(`SELECT left_node AS first FROM df.nodes WHERE instance_id = $1 AND id = $2`, [id, node]);
  await t.query(`UPDATE df.nodes SET run_at = NULL WHERE instance_id = $1`, [id]);
  await t.query(
    `UPDATE df.nodes SET status = 'running', status_details = jsonb_build_object('execution_id', '0000ea60::1'), run_at = now() - interval '1 s'
      WHERE instance_id = $1 AND id = $2`,
    [id, first],
  );
  running = { id, node: first };
});

/** Scope rows and index entries one claim reads, three times, on a new session (it plans the claim anew). */
async function claimReads(): Promise<number[]> {
  const c = await t.owner.connect();
  const reads = async () =>
    (
      await c.query<{ read: number }>(
        `SELECT sum(pg_stat_get_xact_tuples_returned(r))::int AS read
           FROM (SELECT 'df.scopes'::regclass::oid UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = 'df.scopes'::regclass) x(r)`,
      )
    ).rows[0].read;
  try {
    const out: number[] = [];
    for (let i = 0; i < 3; i++) {
      await c.query('BEGIN');
      try {
        const before = await reads();
        const { rows } = await c.query(`SELECT instance_id, id, scope_status FROM df._claim(now())`);
        out.push((await reads()) - before);
        expect(rows).toEqual([{ instance_id: running.id, id: running.node, scope_status: 'running' }]);
      } finally {
        await c.query('ROLLBACK');
      }
    }
    return out;
  } finally {
    c.release();
  }
}

it("a claim probes the claimed row's scope instead of reading all scopes (was: a merge join over scopes_pkey)", async () => {
  for (const read of await claimReads()) expect(read).toBeLessThanOrEqual(3);
});
