/**
 * GET /v1/instances over a long history (issue 20, item 1; migration 0037): a page joins its rows back
 * to df.instances and df.nodes by key, and reads df.events only for its failed rows. Asserted on the
 * plan of the route's statement (EXPLAIN ANALYZE), which does not depend on the machine's speed.
 */
import { inject } from 'vitest';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { LIST_INSTANCES_SQL } from '../../src/api/instances.ts';
import { useTestDb } from '../helpers/db.ts';
import { executedPlan, planNodes, seedAsReplica } from '../helpers/plans.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const HISTORY = 20_000;
const TOKEN = 'static-token-for-the-owner-list-history';

beforeAll(async () => {
  // One finished instance a minute, one in twenty failed (its root node failed, a `failed` event), the
  // others completed with a result at their root. Consistent rows, so the foreign-key triggers can be skipped.
  await seedAsReplica(t, async (c, owner) => {
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by, created_at, completed_at, output)
       SELECT lpad(to_hex(g), 8, '0'), '00000001', CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'completed' END, $2::regrole,
              now() - make_interval(mins => g), now() - make_interval(mins => g), CASE WHEN g % 20 = 0 THEN 'boom' END
         FROM generate_series(1, $1::int) g`,
      [HISTORY, owner],
    );
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, status, result, submitted_by)
       SELECT '00000001', lpad(to_hex(g), 8, '0'), 'SQL', 'SELECT 1', CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'completed' END,
              CASE WHEN g % 20 = 0 THEN to_jsonb('boom'::text) ELSE jsonb_build_object('n', g) END, $2::regrole
         FROM generate_series(1, $1::int) g`,
      [HISTORY, owner],
    );
    await c.query(
      `INSERT INTO df.events (instance_id, node_id, kind, attempt, detail, submitted_by)
       SELECT lpad(to_hex(g), 8, '0'), '00000001', 'failed', 1, '{"code":"22012","message":"division by zero"}', $2::regrole
         FROM generate_series(20, $1::int, 20) g`,
      [HISTORY, owner],
    );
    await c.query('ANALYZE df.instances, df.nodes, df.events');
  });
});

describe('GET /v1/instances over a long history', () => {
  it('looks each row of the page up by key: no scan of the history, df.events read for the failed rows only', async () => {
    for (const status of [null, 'failed']) {
      const nodes = planNodes(await executedPlan(t, LIST_INSTANCES_SQL, [status, 100, null, null], 'ANALYZE'));
      const scans = nodes.filter((n) => n['Relation Name'] !== undefined);
      expect(scans.filter((n) => n['Node Type'] === 'Seq Scan').map((n) => n['Relation Name'])).toEqual([]);
      // The first page of 100 holds 5 failed instances; the failed list, 100.
      const events = scans.filter((n) => n['Relation Name'] === 'events');
      expect(events.map((n) => n['Actual Loops'])).toEqual([status === null ? 5 : 100]);
      const roots = scans.filter((n) => n['Relation Name'] === 'nodes');
      expect(roots.map((n) => n['Actual Loops'])).toEqual([status === null ? 95 : 0]);
    }
  });

  it('lists each instance with the result and error its own GET reports', async () => {
    const call = client(createApp({ db: t.db, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] }));
    const page = await call('GET', '/v1/instances?limit=20', { token: TOKEN });
    expect(page.status).toBe(200);
    const rows = page.body.instances as { instance_id: string; status: string; result: unknown; error: unknown }[];
    expect(rows.map((r) => r.instance_id)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1).toString(16).padStart(8, '0')));
    expect(rows[0]!.result).toEqual({ n: 1 });
    const failed = rows.find((r) => r.status === 'failed')!;
    expect(failed.result).toBeNull();
    expect(failed.error).toMatchObject({ code: '22012', message: 'division by zero', node_id: '00000001', attempt: 1 });
    for (const r of [rows[0]!, failed]) {
      const one = await call('GET', `/v1/instances/${r.instance_id}`, { token: TOKEN });
      expect({ result: one.body.result, error: one.body.error }).toEqual({ result: r.result, error: r.error });
    }
  });
});
