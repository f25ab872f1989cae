/**
 * End to end through the real local queue: Miniflare's queue broker delivers the worker's own messages
 * back to its queue() handler. The test only starts an instance with plain SQL and fires the cron once;
 * everything after that is the worker and the queue. (Delivery is asynchronous, so the test waits for
 * the instance's row to change — bounded, polling the database, no fixed sleeps.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { eventually, useWorkerd } from './harness.ts';

const t = useTestDb();
// One message per batch, delivered at once: each step runs in its own queue invocation.
const w = useWorkerd(t, { consumer: { maxBatchSize: 1, maxBatchTimeout: 0 } });

beforeAll(async () => {
  await t.query(`CREATE TABLE effects (tag text NOT NULL, app text NOT NULL DEFAULT current_setting('application_name'))`);
});

/** The instance reaches `status` (the local queue delivers in the background: a bounded poll). */
const until = (id: string, status: string) => eventually(async () => (await outcome(t, id)).status === status, `instance ${id} ${status}`);

describe('workerd with the local queue delivering', () => {
  it('an instance started from psql completes through one cron tick: a three-way JOIN, a branch per invocation', async () => {
    const [r] = await t.query(
      `SELECT df.start(('INSERT INTO effects (tag) VALUES (''a'') RETURNING 1 AS a' & 'INSERT INTO effects (tag) VALUES (''b'') RETURNING 2 AS b' & 'INSERT INTO effects (tag) VALUES (''c'') RETURNING 3 AS c') ~> 'SELECT 42 AS answer') AS id`,
    );
    expect((await w.cron()).outcome).toBe('ok');
    await until(r.id, 'completed');
    expect(JSON.stringify((await outcome(t, r.id)).result)).toContain('42');
    const rows = await t.query<{ tag: string; app: string }>(`SELECT tag, app FROM effects ORDER BY tag`);
    expect(rows.map((x) => x.tag)).toEqual(['a', 'b', 'c']);
    expect(new Set(rows.map((x) => x.app)).size).toBe(3);
  });
});
