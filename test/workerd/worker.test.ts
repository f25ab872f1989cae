/**
 * The Workers runtime in real workerd (Miniflare), against the test PostgreSQL through the ws proxy.
 * Queue batches and cron events are delivered by hand: the worker's sends are recorded by
 * test/workerd/entry.ts and replayed through Miniflare's queue() — no waiting on timers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pump, sentMatching, useWorkerd, type Sent } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-test-token-0000';
const w = useWorkerd(t, { bindings: { PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` } });

beforeAll(async () => {
  await t.query(`CREATE TABLE effects (tag text NOT NULL, app text NOT NULL DEFAULT current_setting('application_name'), pid int NOT NULL DEFAULT pg_backend_pid())`);
});

const mine = (sent: Sent[], id: string) => sent.filter((m) => m.body.instanceId === id);

async function startSql(dsl: string): Promise<string> {
  const [r] = await t.query(`SELECT df.start(${dsl}) AS id`);
  return r.id;
}

describe('workerd runtime', () => {
  it('GET /healthz answers through the Neon driver and the proxy', async () => {
    // A worker seen just now (the cron's heartbeat): without one within 3 minutes /healthz is a 503.
    await t.query(`INSERT INTO df._worker_epoch (epoch_id) VALUES (gen_random_uuid())`);
    const res = await w.fetch('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, database: 'ok', worker: { seen: true, max_age_s: 180 } });
  });

  it('POST /v1/instances runs the first step in the request\'s waitUntil and sends its successor a message', async () => {
    await w.sent();
    const res = await w.fetch('/v1/instances', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: `'INSERT INTO effects (tag) VALUES (''api-1'') RETURNING 1 AS a' ~> 'INSERT INTO effects (tag) VALUES (''api-2'') RETURNING 2 AS b'` }),
    });
    expect(res.status).toBeLessThan(300);
    const { instance_id: id } = (await res.json()) as { instance_id: string };
    // The first step runs in ctx.waitUntil, after the response; then its successor gets a message.
    const sent = await sentMatching(w, (m) => m.body.instanceId === id, `a message for ${id}`);
    expect(sent).toHaveLength(1);
    await w.deliver([sent[0].body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    const rows = await t.query<{ tag: string; app: string }>(`SELECT tag, app FROM effects WHERE tag LIKE 'api-%' ORDER BY tag`);
    expect(rows).toEqual([
      { tag: 'api-1', app: expect.stringMatching(/^pgflare:api:/) },
      { tag: 'api-2', app: expect.stringMatching(/^pgflare:queue:/) },
    ]);
  });

  it('a signal through the API sends the waiting node its message at once (the ready port, no cron)', async () => {
    const id = await startSql(`df.wait_for_signal('go') ~> 'SELECT 42 AS answer'`);
    await w.sent();
    await w.cron();
    await pump(w);
    expect((await outcome(t, id)).status).toBe('running'); // parked on the signal, no message pending
    const res = await w.fetch(`/v1/instances/${id}/signals/go`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"ok":true}',
    });
    expect(res.status).toBe(200);
    const sent = await sentMatching(w, (m) => m.body.instanceId === id, `a message for ${id}`);
    expect(sent.length).toBeGreaterThanOrEqual(1);
    for (const m of sent) await w.deliver([m.body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
  });

  it('runs the branches of a three-way JOIN in separate queue invocations', async () => {
    const id = await startSql(
      `'INSERT INTO effects (tag) VALUES (''a'') RETURNING 1 AS a' & 'INSERT INTO effects (tag) VALUES (''b'') RETURNING 2 AS b' & 'INSERT INTO effects (tag) VALUES (''c'') RETURNING 3 AS c'`,
    );
    await w.sent(); // clear
    // Started from SQL: no message exists until the sweep sends one.
    expect((await w.cron()).outcome).toBe('ok');
    const first = await w.sent();
    expect(first).toEqual([{ body: { instanceId: id, nodeId: expect.any(String) } }]);

    // Each message gets its own queue() invocation: the root (which runs the first branch in its
    // activating transaction), then the other two branches.
    await w.deliver([first[0].body]);
    const branches = await w.sent();
    expect(branches).toHaveLength(2);
    for (const m of branches) await w.deliver([m.body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');

    const rows = await t.query<{ tag: string; app: string; pid: number }>(`SELECT tag, app, pid FROM effects WHERE tag IN ('a','b','c') ORDER BY tag`);
    expect(rows.map((r) => r.tag)).toEqual(['a', 'b', 'c']);
    // The application_name carries the invocation id (pgflare:queue:<id>): three different invocations.
    for (const r of rows) expect(r.app).toMatch(/^pgflare:queue:[0-9a-f]{8}$/);
    expect(new Set(rows.map((r) => r.app)).size).toBe(3);
    expect(new Set(rows.map((r) => r.pid)).size).toBe(3);
  });

  it('a duplicated message runs its step once, in one batch or in concurrent invocations', async () => {
    const id = await startSql(`'INSERT INTO effects (tag) VALUES (''dup'') RETURNING 1 AS x' ~> 'SELECT 2 AS y'`);
    await w.sent();
    await w.cron();
    const [root] = mine(await w.sent(), id);
    // The root activates the first step: deliver that message twice in one batch, and twice more at once.
    const r0 = await w.deliver([root.body]);
    expect(r0.explicitAcks).toHaveLength(1);
    const [step] = mine(await w.sent(), id);
    const batch = await w.deliver([step.body, step.body]);
    expect(batch.outcome).toBe('ok');
    expect(batch.explicitAcks).toHaveLength(2);
    await Promise.all([w.deliver([step.body]), w.deliver([step.body])]);
    expect((await t.query(`SELECT count(*)::int AS n FROM effects WHERE tag = 'dup'`))[0].n).toBe(1);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    expect((await t.query(`SELECT count(*)::int AS n FROM effects WHERE tag = 'dup'`))[0].n).toBe(1);
  });

  it('a dropped message is recovered by the sweeper', async () => {
    const id = await startSql(`'SELECT 0' ~> 'SELECT 1 AS a' ~> 'INSERT INTO effects (tag) VALUES (''dropped'') RETURNING 1 AS b'`);
    await w.sent();
    await w.cron();
    await w.deliver([mine(await w.sent(), id)[0].body]); // root and first step → second step ready
    await w.deliver([mine(await w.sent(), id)[0].body]); // second step → third step ready
    const lost = await w.sent();
    expect(lost).toHaveLength(1); // ... and this message is "lost": never delivered
    expect((await outcome(t, id)).status).toBe('running');

    await w.cron();
    const again = await w.sent();
    expect(again.map((m) => m.body)).toContainEqual(lost[0].body);
    await w.deliver([lost[0].body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    expect((await t.query(`SELECT count(*)::int AS n FROM effects WHERE tag = 'dropped'`))[0].n).toBe(1);
  });

  it('an instance started from psql completes through cron alone (manual delivery of what it sends)', async () => {
    const id = await startSql(`'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'`);
    await w.sent();
    for (let i = 0; i < 10 && (await outcome(t, id)).status !== 'completed'; i++) {
      await w.cron();
      await pump(w);
    }
    const o = await outcome(t, id);
    expect(o.status).toBe('completed');
    expect(JSON.stringify(o.result)).toContain('42');
  });

  it('a failing step never poisons the batch: siblings run, every message is acked', async () => {
    const bad = await startSql(`'SELECT 1/0 AS boom'`);
    const good = await startSql(`'INSERT INTO effects (tag) VALUES (''sibling'') RETURNING 1 AS ok'`);
    await w.sent();
    await w.cron();
    const roots = await w.sent();
    expect(roots.map((m) => m.body.instanceId).sort()).toEqual([bad, good].sort());
    const r = await w.deliver([...roots.map((m) => m.body), { nonsense: true }]);
    expect(r.outcome).toBe('ok');
    expect(r.explicitAcks).toHaveLength(3);
    await pump(w);
    expect((await outcome(t, bad)).status).toBe('failed');
    expect((await outcome(t, good)).status).toBe('completed');
  });

  it('timers get delaySeconds; a message that arrives early is re-sent with the remaining delay', async () => {
    const id = await startSql(`df.sleep(120) ~> 'SELECT 1 AS woke'`);
    await w.sent();
    await w.cron();
    await w.deliver([mine(await w.sent(), id)[0].body]); // root: activates the sleep
    const timers = await w.sent();
    expect(timers).toHaveLength(1);
    expect(timers[0].delaySeconds).toBeGreaterThan(100);
    expect(timers[0].delaySeconds).toBeLessThanOrEqual(120);
    // Delivered early: nothing runs, and a delayed message replaces it.
    await w.deliver([timers[0].body]);
    const resent = await w.sent();
    expect(resent).toHaveLength(1);
    expect(resent[0].body).toEqual(timers[0].body);
    expect(resent[0].delaySeconds).toBeGreaterThan(100);
    // Time passes (we move the timer instead of waiting): the sweep finds it due.
    await t.query(`UPDATE df.nodes SET run_at = now() - interval '1 second' WHERE instance_id = $1 AND run_at IS NOT NULL`, [id]);
    await w.cron();
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
  });

  it('a multi-statement step fails as in pg_durable (extended protocol through the Neon driver)', async () => {
    const id = await startSql(`'SELECT 1 AS a; SELECT 2 AS b'`);
    await w.sent();
    await w.cron();
    await pump(w);
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toMatch(/cannot insert multiple commands into a prepared statement/);
  });

  it('the sweep records a heartbeat and prunes history past retention', async () => {
    const id = await startSql(`'SELECT 1 AS a'`);
    await w.sent();
    await w.cron();
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    await t.query(`UPDATE df.instances SET completed_at = now() - interval '400 days' WHERE id = $1`, [id]);
    expect((await w.cron()).outcome).toBe('ok');
    expect(await t.query(`SELECT 1 FROM df.instances WHERE id = $1`, [id])).toHaveLength(0);
    const epochs = await t.query(`SELECT epoch_id FROM df._worker_epoch`);
    expect(epochs.length).toBeGreaterThanOrEqual(1);
  });
});
