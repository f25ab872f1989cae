/**
 * Migration 0037: many instances with one created_at (started in one transaction: one now()). The page
 * after a cursor within that instant reads the rest of the instant from the cursor's id on, not every
 * row of the instant from the lowest id. Measured in buffers touched (EXPLAIN ANALYZE of the call counts
 * the statements the function runs), which do not depend on the machine's speed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { buffers, seedAsReplica } from '../../helpers/plans.ts';

const t = useTestDb();
const SAME = 20_000;

beforeAll(async () => {
  // SAME finished instances of one instant, and a few older ones after them.
  await seedAsReplica(t, async (c, owner) => {
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by, created_at, completed_at)
       SELECT lpad(to_hex(g), 8, '0'), '00000001', 'completed', $2::regrole,
              CASE WHEN g <= $1 THEN now() - interval '1 hour' ELSE now() - make_interval(hours => g) END, now()
         FROM generate_series(1, $1::int + 5) g`,
      [SAME, owner],
    );
    await c.query('ANALYZE df.instances');
  });
});

/** The cursor a page ending at the n-th newest instance returns (a page holds at most 1 000). */
const cursorAt = async (n: number) =>
  (await t.query<{ k: string }>(`SELECT df._list_cursor(created_at, id::text) AS k FROM df.instances ORDER BY created_at DESC, id OFFSET $1 - 1 LIMIT 1`, [n]))[0].k;

describe('df.list_instances pages through one instant', () => {
  it('lists every instance once, in id order within the instant, then the older ones', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const rows: { instance_id: string; next_cursor: string | null }[] = await t.query(
        `SELECT instance_id, next_cursor FROM df.list_instances(NULL, 500, NULL, $1)`,
        [cursor],
      );
      seen.push(...rows.map((r) => r.instance_id));
      cursor = rows.at(-1)?.next_cursor ?? null;
      if (!cursor) break;
    }
    const expected = Array.from({ length: SAME + 5 }, (_, i) => (i + 1).toString(16).padStart(8, '0'));
    expect(seen).toEqual(expected);
    // The same through a status filter (the stored status's index).
    const k = await cursorAt(19_990);
    const rest = await t.query<{ instance_id: string }>(`SELECT instance_id FROM df.list_instances('completed', 100, NULL, $1)`, [k]);
    expect(rest.map((r) => r.instance_id)).toEqual(expected.slice(19_990));
  });

  it('a page deep in the instant reads from the cursor on: a few dozen buffers, not the instant', async () => {
    const read: { status: string | null; buffers: number }[] = [];
    for (const status of [null, 'completed']) {
      const k = await cursorAt(19_800);
      read.push({ status, buffers: await buffers(t, `SELECT * FROM df.list_instances($1, 10, NULL, $2)`, [status, k]) });
    }
    expect(read.filter((r) => r.buffers > 60)).toEqual([]);
  });
});
