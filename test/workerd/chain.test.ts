/**
 * Chain continuation in real workerd (PGFLARE_CHAIN_STEPS): a step whose checkpoint makes exactly one
 * node ready, due now, runs that node next in the same invocation, with no queue message for it, up to
 * the step count; several ready nodes get messages. The rows stay the truth: duplicates run nothing
 * twice, and a continued step whose session dies mid-statement rolls back and gets a message.
 * Also PGFLARE_API_RUN_STEP=off: an API start sends its first message instead of running it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pump, sentMatching, useWorkerd, type Sent } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-chain-token-00000000';
const w = useWorkerd(t, { bindings: { PGFLARE_CHAIN_STEPS: '3', PGFLARE_API_RUN_STEP: 'off', PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` } });

beforeAll(async () => {
  await t.query(`CREATE TABLE effects (tag text NOT NULL, app text NOT NULL DEFAULT current_setting('application_name'))`);
  await t.query(`CREATE SEQUENCE kill_once`);
});

const mine = (sent: Sent[], id: string) => sent.filter((m) => m.body.instanceId === id);
const step = (tag: string) => `'INSERT INTO effects (tag) VALUES (''${tag}'') RETURNING 1 AS ${tag}'`;
const counts = async (like: string) => t.query<{ tag: string; n: number }>(`SELECT tag, count(*)::int AS n FROM effects WHERE tag LIKE $1 GROUP BY tag ORDER BY tag`, [like]);
const apps = async (tags: string[]) => (await t.query<{ app: string }>(`SELECT app FROM effects WHERE tag = ANY($1) ORDER BY tag`, [tags])).map((r) => r.app);

async function startFromSql(dsl: string): Promise<{ id: string; root: Sent }> {
  const [{ id }] = await t.query(`SELECT df.start(${dsl}) AS id`);
  await w.sent();
  await w.cron();
  return { id, root: mine(await w.sent(), id)[0] };
}

describe('chain continuation (PGFLARE_CHAIN_STEPS=3)', () => {
  it('continues a chain within one invocation up to 3 steps, sending no message for them', async () => {
    const { id, root } = await startFromSql(['c1', 'c2', 'c3', 'c4', 'c5'].map(step).join(' ~> '));
    await w.deliver([root.body]);
    // c1 (with the activation), c2 and c3 ran here; c4 got the one message.
    const after = mine(await w.sent(), id);
    expect(after).toHaveLength(1);
    expect(await counts('c_')).toEqual(['c1', 'c2', 'c3'].map((tag) => ({ tag, n: 1 })));
    expect(new Set(await apps(['c1', 'c2', 'c3'])).size).toBe(1);
    await w.deliver([after[0].body]);
    expect(mine(await w.sent(), id)).toEqual([]);
    expect((await outcome(t, id)).status).toBe('completed');
    const [a, b] = [await apps(['c1']), await apps(['c4', 'c5'])];
    expect(new Set(b).size).toBe(1);
    expect(b[0]).not.toBe(a[0]);
  });

  it('sends messages when several nodes become ready (a JOIN), continuing none', async () => {
    const { id, root } = await startFromSql(`${step('j1')} & ${step('j2')} & ${step('j3')}`);
    await w.deliver([root.body]);
    const branches = mine(await w.sent(), id);
    expect(branches).toHaveLength(2);
    expect(await counts('j_')).toEqual([{ tag: 'j1', n: 1 }]);
    for (const m of branches) await w.deliver([m.body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
  });

  it('duplicated deliveries of a chained instance run every step once', async () => {
    const { id, root } = await startFromSql(['d1', 'd2', 'd3', 'd4'].map(step).join(' ~> '));
    await Promise.all([w.deliver([root.body]), w.deliver([root.body]), w.deliver([root.body, root.body])]);
    await w.cron(); // the sweep re-sends whatever is ready, as it would for a lost message
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await counts('d_')).toEqual(['d1', 'd2', 'd3', 'd4'].map((tag) => ({ tag, n: 1 })));
  });

  it('a continued step whose session dies mid-statement rolls back, gets a message and runs once', async () => {
    // The second step's first attempt ends its own backend after its INSERT (a sequence is not rolled back).
    const dies = `'WITH e AS (INSERT INTO effects (tag) VALUES (''k2'') RETURNING 1) SELECT (SELECT count(*) FROM e) AS k2, CASE WHEN nextval(''kill_once'') = 1 THEN pg_terminate_backend(pg_backend_pid()) END AS killed'`;
    const { id, root } = await startFromSql(`${step('k1')} ~> ${dies} ~> ${step('k3')}`);
    await w.deliver([root.body]);
    expect(await counts('k_')).toEqual([{ tag: 'k1', n: 1 }]);
    const again = mine(await w.sent(), id);
    expect(again).toHaveLength(1);
    await w.deliver([again[0].body]);
    await pump(w);
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await counts('k_')).toEqual(['k1', 'k2', 'k3'].map((tag) => ({ tag, n: 1 })));
  });

  it('with PGFLARE_API_RUN_STEP=off an API start sends its first message instead of running it', async () => {
    await w.sent();
    const res = await w.fetch('/v1/instances', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: step('a1') }),
    });
    expect(res.status).toBe(201);
    const { instance_id: id } = (await res.json()) as { instance_id: string };
    const sent = await sentMatching(w, (m) => m.body.instanceId === id, `a message for ${id}`);
    expect(sent).toHaveLength(1);
    expect(await counts('a_')).toEqual([]);
    await w.deliver([sent[0].body]);
    expect(await counts('a_')).toEqual([{ tag: 'a1', n: 1 }]);
    expect(await apps(['a1'])).toEqual([expect.stringMatching(/^pgflare:queue:/)]);
  });
});
