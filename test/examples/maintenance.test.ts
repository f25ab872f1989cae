/**
 * examples/maintenance end to end: the setup and the workflow definition exactly as a user loads them,
 * then one run driven by the engine: partitions rotated, audit log pruned once, view refreshed, index
 * rebuilt concurrently (lease path), and a child instance with one VACUUM (ANALYZE) step per table that
 * needs it, picked by query.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';

const t = useTestDb();
const example = (f: string) => readFileSync(new URL(`../../examples/maintenance/${f}`, import.meta.url), 'utf8');
const day = (offset: number) => {
  const d = new Date();
  d.setUTCHours(0, 0, 0, 0);
  return new Date(d.getTime() + offset * 86_400_000);
};
const ymd = (d: Date) => d.toISOString().slice(0, 10).replaceAll('-', '');

beforeAll(async () => {
  await t.query(example('setup.sql'));
  await t.query(example('setup.sql')); // idempotent
  await t.query(example('workflow.sql'));
  // Old partitions (20 and 10 days ago) with rows, and today's.
  for (const offset of [-20, -10, 0]) {
    await t.query(`CREATE TABLE shop.events_${ymd(day(offset))} PARTITION OF shop.events FOR VALUES FROM ($1) TO ($2)`.replace('$1', `'${day(offset).toISOString()}'`).replace('$2', `'${day(offset + 1).toISOString()}'`));
    await t.query('INSERT INTO shop.events (created_at, kind) VALUES ($1, $2)', [new Date(day(offset).getTime() + 3_600_000), 'x']);
  }
  await t.query(`INSERT INTO shop.audit_log (at, what) SELECT now() - make_interval(days => d), 'a' FROM generate_series(0, 59) d`);
  await t.query(`INSERT INTO shop.orders (customer_id, total, placed_at) SELECT g % 50, g, now() - make_interval(days => g % 3) FROM generate_series(1, 3000) g`);
  // A table that is analyzed and clean: not picked.
  await t.query('CREATE TABLE shop.settled (id int PRIMARY KEY)');
  await t.query('INSERT INTO shop.settled SELECT generate_series(1, 100)');
  await t.query('ANALYZE shop.settled, shop.events, shop.audit_log');
  // A table loaded and never analyzed: picked.
  await t.query('CREATE TABLE shop.imports (id int, payload text)');
  await t.query(`INSERT INTO shop.imports SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g`);
});

describe('examples/maintenance', () => {
  it('one run does every step; the vacuum child covers exactly the tables that need it', async () => {
    const indexBefore = (await t.query(`SELECT 'shop.orders_customer_idx'::regclass::oid::int AS oid, pg_relation_filenode('shop.orders_customer_idx') AS f`))[0];
    const [{ id }] = await t.query(`SELECT df.start_workflow('nightly-maintenance', '{"keep_days": 7, "audit_days": 30, "min_dead": 1000000}') AS id`);
    const engine = engineFor(t);
    await engine.drain();
    expect(await outcome(t, id), JSON.stringify(await t.query('SELECT id, status, result FROM df.nodes WHERE instance_id = $1 AND status = $2', [id, 'failed']))).toMatchObject({ status: 'completed' });

    // 1. Rotation: tomorrow and the day after created, the partitions that ended > 7 days ago dropped.
    const parts = (await t.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'shop.events'::regclass ORDER BY 1`)).map((r: any) => r.relname);
    expect(parts).toEqual([0, 1, 2].map((o) => `events_${ymd(day(o))}`));
    // 2. Retention: days 0..30 kept (30 is on the boundary by a few ms at most), older pruned, exactly once.
    const [{ kept }] = await t.query('SELECT count(*)::int AS kept FROM shop.audit_log');
    expect(kept).toBeGreaterThanOrEqual(30);
    expect(kept).toBeLessThanOrEqual(31);
    const [{ r: pruned }] = await t.query(`SELECT df.result($1)::jsonb AS r`, [id]);
    expect(pruned).toMatchObject({ rows: [{ child: expect.stringMatching(/^[0-9a-f]{8}$/) }] });
    // 3. The view was refreshed concurrently (it was populated at setup, before the orders existed).
    expect((await t.query('SELECT sum(orders)::int AS n FROM shop.daily_orders'))[0].n).toBe(3000);
    // 4. REINDEX CONCURRENTLY swaps in a new index (same name, new relation).
    const indexAfter = (await t.query(`SELECT 'shop.orders_customer_idx'::regclass::oid::int AS oid`))[0];
    expect(indexAfter.oid).not.toBe(indexBefore.oid);
    // 5. The child: one VACUUM (ANALYZE) per table that needs it: imports was never analyzed; settled, events
    //    and audit_log were, orders got its statistics from the REINDEX, and the new partitions are empty.
    const child = pruned.rows[0].child as string;
    const steps = (await t.query(`SELECT query FROM df.nodes WHERE instance_id = $1 AND node_type = 'SQL' ORDER BY query`, [child])).map((r: any) => r.query);
    expect(steps).toEqual(['VACUUM (ANALYZE) shop.imports']);
    expect(await outcome(t, child)).toMatchObject({ status: 'completed' });
    expect((await t.query(`SELECT label FROM df.instances WHERE id = $1`, [child]))[0].label).toBe('vacuum-analyze');
    // VACUUM (ANALYZE) ran: the catalog has real statistics. (Not relallvisible: whether VACUUM may set the
    // visibility map depends on the oldest snapshot in the cluster, which other test files hold.)
    const [stats] = await t.query(`SELECT reltuples::int AS tuples, relpages > 0 AS pages FROM pg_class WHERE oid = 'shop.imports'::regclass`);
    expect(stats).toEqual({ tuples: 2000, pages: true });
  });

  it('a second run is a no-op where nothing is due', async () => {
    const [{ id }] = await t.query(`SELECT df.start_workflow('nightly-maintenance', '{"min_dead": 1000000}') AS id`);
    await engineFor(t).drain();
    const [{ r }] = await t.query(`SELECT df.result($1)::jsonb AS r`, [id]);
    const child = r.rows[0].child as string;
    expect((await t.query(`SELECT query FROM df.nodes WHERE instance_id = $1`, [child])).map((x: any) => x.query)).toEqual(["SELECT 'nothing to vacuum' AS note"]);
    const rotation = await t.query(`SELECT n.result::jsonb AS r FROM df.nodes n WHERE n.instance_id = $1 AND n.result_name = 'rotation'`, [id]);
    expect(rotation[0].r.rows[0].rotated).toBeNull();
  });
});
