/**
 * Round trips of a queue invocation in real workerd (issue 19, item 3): a warm isolate keeps the worker's
 * role, the instance's graph and the engine's copy of its rows between invocations, so a chain step is
 * three queries (the claim, the step, the checkpoint's write with COMMIT); a graph the isolate has not
 * seen rides in the claim's round trip; and the messages of one batch run on one session.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pump, useWorkerd, type Sent } from './harness.ts';

const t = useTestDb();
const w = useWorkerd(t);

beforeAll(async () => {
  await t.query(`CREATE TABLE effects (tag text NOT NULL, app text NOT NULL DEFAULT current_setting('application_name'), pid int NOT NULL DEFAULT pg_backend_pid())`);
});

const mine = (sent: Sent[], id: string) => sent.filter((m) => m.body.instanceId === id);
const step = (tag: string) => `'INSERT INTO effects (tag) VALUES (''${tag}'') RETURNING 1 AS ${tag}'`;

describe('round trips per queue invocation', () => {
  it('a warm isolate runs a chain step in three queries: claim, step, checkpoint with COMMIT', async () => {
    const [{ id }] = await t.query(`SELECT df.start(${['r1', 'r2', 'r3', 'r4'].map(step).join(' ~> ')}) AS id`);
    await w.sent();
    await w.cron();
    await w.queries();
    // The root's invocation: its graph (a sequence) is new to this isolate and comes with the claim.
    await w.deliver([mine(await w.sent(), id)[0].body]);
    const first = await w.queries();
    expect(first[0]).toMatch(/^BEGIN; SELECT c\.\*.*df\._claim\(/);
    expect(first[0]).toContain('FROM df.nodes WHERE instance_id');
    expect(first.filter((q) => q.includes('FROM df.nodes WHERE instance_id'))).toHaveLength(1);

    for (const tag of ['r2', 'r3', 'r4']) {
      const [next] = mine(await w.sent(), id);
      await w.deliver([next.body]);
      const qs = await w.queries();
      expect(qs).toHaveLength(3);
      expect(qs[0]).toMatch(/^BEGIN; SELECT c\.\*.*df\._claim\(/);
      expect(qs[0]).not.toContain('FROM df.nodes WHERE instance_id');
      expect(qs[1]).toContain(`VALUES ('${tag}')`);
      expect(qs[2]).toMatch(/df\._apply\(.*COMMIT/);
    }
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await t.query(`SELECT tag, count(*)::int AS n FROM effects WHERE tag LIKE 'r_' GROUP BY tag ORDER BY tag`)).toEqual(
      ['r1', 'r2', 'r3', 'r4'].map((tag) => ({ tag, n: 1 })),
    );
  });

  it('the messages of one batch run on one session, one after another', async () => {
    const ids: string[] = [];
    for (const tag of ['b1', 'b2', 'b3']) ids.push((await t.query(`SELECT df.start(${step(tag)}) AS id`))[0].id);
    await w.sent();
    await w.cron();
    const roots = (await w.sent()).filter((m) => ids.includes(m.body.instanceId));
    expect(roots).toHaveLength(3);
    const r = await w.deliver(roots.map((m) => m.body));
    expect(r.explicitAcks).toHaveLength(3);
    await pump(w);
    for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
    const rows = await t.query<{ pid: number; app: string }>(`SELECT pid, app FROM effects WHERE tag LIKE 'b_'`);
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((x) => x.pid)).size).toBe(1);
    expect(new Set(rows.map((x) => x.app)).size).toBe(1);
  });

  it('a step whose checkpoint meets a node row another session holds is sent again, delayed', async () => {
    const [{ id }] = await t.query(`SELECT df.start(${['h1', 'h2'].map(step).join(' ~> ')}) AS id`);
    await w.sent();
    await w.cron();
    const [root] = mine(await w.sent(), id);
    // Another session holds the second step's row: the first step's checkpoint (NOWAIT) steps aside.
    await t.db.withClient(async (c) => {
      await c.query('BEGIN');
      await c.query(`SELECT 1 FROM df.nodes WHERE instance_id = $1 AND query LIKE '%h2%' FOR UPDATE`, [id]);
      await w.deliver([root.body]);
      await c.query('ROLLBACK');
    });
    expect(await t.query(`SELECT tag FROM effects WHERE tag LIKE 'h_'`)).toEqual([]);
    const again = mine(await w.sent(), id);
    expect(again).toEqual([{ body: root.body, delaySeconds: 1 }]);
    await t.query(`UPDATE df.nodes SET run_at = now() - interval '1 second' WHERE instance_id = $1 AND run_at IS NOT NULL`, [id]);
    await w.deliver([again[0].body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await t.query(`SELECT tag, count(*)::int AS n FROM effects WHERE tag LIKE 'h_' GROUP BY tag ORDER BY tag`)).toEqual([
      { tag: 'h1', n: 1 },
      { tag: 'h2', n: 1 },
    ]);
  });
});
