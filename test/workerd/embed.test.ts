/**
 * createPgflareWorker in a user's own Worker (test/workerd/embed-entry.ts), in real workerd: the user's
 * routes stay theirs, pgflare's API answers under the prefix, its queue consumer runs steps through the
 * renamed bindings, and only the cron routed to it sweeps.
 */
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWsProxy, type WsProxy } from '../../scripts/ws-proxy.ts';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { bundleWorker, COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from './build.ts';
import { eventually } from './harness.ts';

const t = useTestDb();
let mf: Miniflare;
let proxy: WsProxy;
let token = "";

beforeAll(async () => {
  const [p, bundle] = await Promise.all([startWsProxy(), bundleWorker('test/workerd/embed-entry.ts')]);
  proxy = p;
  mf = new Miniflare({
    modules: true,
    scriptPath: bundle.path,
    modulesRoot: dirname(bundle.path),
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: COMPATIBILITY_FLAGS,
    bindings: { PG_URL: t.url(), WS_PROXY: proxy.address },
    queueProducers: { STEPS: { queueName: 'my-steps' } },
  });
  await mf.ready;
  [{ token }] = await t.query(`SELECT df.create_api_token('embed') AS token`);
});

afterAll(async () => {
  await mf?.dispose();
  await proxy?.close();
});

const get = (path: string, init: RequestInit = {}) => mf.dispatchFetch(`http://app${path}`, init as never) as unknown as Promise<Response>;
const auth = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

it("leaves the user's routes to the user, including paths that only start like the prefix", async () => {
  expect(await (await get('/hello')).json()).toEqual({ hello: 'from my app' });
  expect(await (await get('/v1/instances', { headers: auth() })).text()).toBe('my app: /v1/instances');
  expect(await (await get('/pgflarex/v1/instances', { headers: auth() })).text()).toBe('my app: /pgflarex/v1/instances');
});

it('serves the API under the prefix, and runs the started instance through the renamed queue binding', async () => {
  expect((await get('/pgflare/v1/instances')).status).toBe(401);
  // The first step runs in the request's waitUntil; the second is a message on the renamed binding.
  const workflow = "'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'";
  const res = await get('/pgflare/v1/instances', { method: 'POST', headers: auth(), body: JSON.stringify({ workflow, label: 'embedded' }) });
  expect(res.status).toBe(201);
  const { instance_id: id } = (await res.json()) as { instance_id: string };
  expect(id).toMatch(/^[0-9a-f]{8}$/);
  const listed = (await (await get(`/pgflare/v1/instances?label=embedded`, { headers: auth() })).json()) as { instances: { instance_id: string }[] };
  expect(listed.instances.map((i) => i.instance_id)).toContain(id);

  const second = `SELECT id FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL AND query LIKE '%+ 22%'`;
  await eventually(async () => (await t.query(second, [id])).length === 1, 'the second step ready');
  const [ready] = await t.query(second, [id]);
  const worker = await mf.getWorker();
  const r = (await worker.queue('my-steps', [{ id: randomUUID(), timestamp: new Date(), body: { instanceId: id, nodeId: ready.id }, attempts: 1 }] as never)) as { outcome: string };
  expect(r.outcome).toBe('ok');
  expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ answer: 42 }] } });
});

it("sweeps on the cron routed to pgflare and not on the user's own", async () => {
  const beats = async () => (await t.query(`SELECT count(*)::int AS n FROM df._worker_epoch`))[0].n as number;
  const worker = await mf.getWorker();
  const before = await beats();
  expect(((await worker.scheduled({ scheduledTime: new Date(), cron: '0 3 * * *' })) as { outcome: string }).outcome).toBe('ok');
  expect(await beats()).toBe(before);
  expect(((await worker.scheduled({ scheduledTime: new Date(), cron: '* * * * *' })) as { outcome: string }).outcome).toBe('ok');
  expect(await beats()).toBe(before + 1);
});
