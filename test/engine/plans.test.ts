/**
 * The checkpoint functions run with cached generic plans (0018: plan_cache_mode = force_generic_plan).
 * A generic plan is made from the table's statistics, not from the instance at hand, and statistics
 * never know a new instance's size. So each lookup must stay a primary-key probe however many nodes and
 * scopes the instance has: plans that read the instance's rows made each W1 chain step 1.2 ms slower
 * once df.nodes held a few large instances (bench/), and every branch of a wide JOIN read all its
 * sibling scopes. Counted with the transaction's own statistics (pg_stat_get_xact_tuples_returned):
 * rows and index entries read, not time.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDb } from '../helpers/db.ts';
import { start } from '../helpers/engine.ts';

const t = useTestDb();

/** A chain of n SQL steps, nested both ways so the graph is a balanced tree of THEN nodes. */
function chain(n: number): string {
  const build = (k: number, i: number): string => (k === 1 ? `'SELECT ${i}'` : `(${build(k >> 1, i)} ~> ${build(k - (k >> 1), i + (k >> 1))})`);
  return build(n, 1);
}

interface Big {
  id: string;
  root: string;
  /** The instance's last three nodes in key order: a scan of its rows would pass all the others first. */
  last: string[];
}
const big: Big[] = [];
let c: pg.PoolClient;

beforeAll(async () => {
  // The statistics are taken while instances are small (many of one node each), as on a busy system, and
  // kept so (autovacuum off here): to the planner, the instance at hand has a few rows.
  await t.query('ALTER TABLE df.nodes SET (autovacuum_enabled = false)');
  await t.query('ALTER TABLE df.scopes SET (autovacuum_enabled = false)');
  await t.query(`SELECT df.start('SELECT 1') FROM generate_series(1, 300)`);
  await t.query('ANALYZE df.nodes');
  await t.query('ANALYZE df.scopes');
  for (let i = 0; i < 3; i++) {
    const id = await start(t, chain(1000));
    // Many scopes too, as a JOIN of many branches has: ids <id>:00001 … <id>:01500.
    await t.query(
      `INSERT INTO df.scopes (instance_id, scope_id, root_node, submitted_by)
       SELECT i.id, i.id || ':' || lpad(g::text, 5, '0'), i.root_node, i.submitted_by FROM df.instances i, generate_series(1, 1500) g WHERE i.id = $1`,
      [id],
    );
    const [{ root_node: root }] = await t.query<{ root_node: string }>('SELECT root_node FROM df.instances WHERE id = $1', [id]);
    const last = (await t.query<{ id: string }>('SELECT id FROM df.nodes WHERE instance_id = $1 ORDER BY id DESC LIMIT 3', [id])).map((r) => r.id);
    big.push({ id, root, last });
  }
  const [{ n }] = await t.query<{ n: number }>('SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1', [big[0].id]);
  expect(n).toBeGreaterThan(1900);
  // One session, as a worker's: it plans each function statement once and keeps the plan.
  c = await t.owner.connect();
});

afterAll(() => c?.release());

/** Rows and index entries that `sql` read from df.nodes and df.scopes, inside a transaction rolled back. */
async function readsOf(
  sql: string,
  params: unknown[],
  after?: string,
): Promise<{ read: number; rows: Record<string, unknown>[]; after?: Record<string, unknown>[] }> {
  const reads = async () =>
    (
      await c.query<{ read: number }>(
        `SELECT sum(pg_stat_get_xact_tuples_returned(r))::int AS read
           FROM (SELECT 'df.nodes'::regclass::oid UNION ALL SELECT 'df.scopes'::regclass::oid
                 UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid IN ('df.nodes'::regclass, 'df.scopes'::regclass)) x(r)`,
      )
    ).rows[0].read;
  await c.query('BEGIN');
  try {
    // The counts include this session's earlier transactions until they are flushed: take the difference.
    const before = await reads();
    const { rows } = await c.query(sql, params);
    const read = (await reads()) - before;
    return { read, rows, after: after ? (await c.query(after, params.slice(0, 1))).rows : undefined };
  } finally {
    await c.query('ROLLBACK');
  }
}

const present = (b: Big) => ({ id: `${b.id}:01500`, parent: null, root: b.root, generation: 1, named: {}, status: 'running', result: null });

it('a checkpoint’s read (df._lock_and_load) reads the rows it returns', async () => {
  for (const b of big) {
    const { read, rows } = await readsOf('SELECT df._lock_and_load($1, $2, $3) AS r', [b.id, b.last, [`${b.id}:01500`, `${b.id}:zzzzz`]]);
    const r = rows[0].r as { nodes: unknown[]; scopes: unknown[] };
    expect(r.nodes).toHaveLength(3);
    expect(r.scopes).toEqual([present(b)]);
    // Three node probes and two scope probes (slack for a probe that meets a dead row).
    expect(read, `instance ${b.id}`).toBeLessThanOrEqual(8);
  }
});

it('the stale-copy check of df._apply reads the rows it checks', async () => {
  for (const b of big) {
    const { id: _scope, ...scope } = present(b);
    const expected = {
      instance: { status: 'running', generation: 1 },
      nodes: Object.fromEntries(b.last.map((id) => [id, { status: 'pending', stamp: null, state: null }])),
      // One scope expected absent (its id sorts after all), one present (the last in key order).
      scopes: { [`${b.id}:zzzzz`]: null, [`${b.id}:01500`]: { ...scope, id: `${b.id}:01500` } },
    };
    const [{ status }] = await t.query<{ status: string }>('SELECT status FROM df.instances WHERE id = $1', [b.id]);
    expected.instance.status = status;
    const { read } = await readsOf('SELECT df._apply($1, $2::jsonb, $3::jsonb)', [b.id, '{}', JSON.stringify(expected)]);
    expect(read, `instance ${b.id}`).toBeLessThanOrEqual(8);
  }
});

it('a checkpoint’s write (df._apply) reads the rows it writes', async () => {
  for (const b of big) {
    const changes = {
      nodes: b.last.map((id) => ({ id, state: { seen: true }, nowait: false })),
      scopes: [{ ...present(b), id: `${b.id}:new` }],
      scope_deletes: [`${b.id}:01500`],
      events: [{ node_id: b.last[0], kind: 'attempt_failed', attempt: 1, detail: 'x' }],
    };
    const { read, after } = await readsOf('SELECT df._apply($1, $2::jsonb)', [b.id, JSON.stringify(changes)], `
      SELECT (SELECT count(*)::int FROM df.nodes WHERE instance_id = $1 AND state = '{"seen": true}') AS changed,
             (SELECT array_agg(right(scope_id, 4) ORDER BY scope_id) FROM df.scopes WHERE instance_id = $1 AND scope_id IN ($1 || ':new', $1 || ':01500')) AS scopes`);
    expect(after).toEqual([{ changed: 3, scopes: [':new'] }]);
    // Three node probes and writes, a scope upsert and a scope delete.
    expect(read, `instance ${b.id}`).toBeLessThanOrEqual(12);
  }
});
