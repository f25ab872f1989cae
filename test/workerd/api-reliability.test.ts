/**
 * The REST API's reliability features in real workerd (Neon driver through the proxy): identical POSTs
 * with one Idempotency-Key start one instance, a failed step's SQLSTATE reaches the instance's `error`
 * (the engine keeps it with the Neon driver too), X-Request-Id is echoed, and the server-sent event
 * stream of an instance follows it to its end while the queue runs it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { sseReader } from '../api/helpers.ts';
import { pump, useWorkerd } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-api-reliability-token-0';
const w = useWorkerd(t, { bindings: { PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner`, PGFLARE_STREAM_POLL_MS: '50' } });
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

beforeAll(async () => {
  await w.sent();
});

describe('REST API in workerd', () => {
  it('identical POSTs with one Idempotency-Key at once start one instance', async () => {
    const body = JSON.stringify({ workflow: `'SELECT 1'`, label: 'workerd-idem' });
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => w.fetch('/v1/instances', { method: 'POST', headers: { ...headers, 'idempotency-key': 'wk-1', 'x-request-id': 'wk-req' }, body })),
    );
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as { instance_id: string }[];
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(answers.every((r) => r.headers.get('x-request-id') === 'wk-req')).toBe(true);
    expect(new Set(bodies.map((b) => b.instance_id)).size).toBe(1);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE label = 'workerd-idem'`)).toEqual([{ n: 1 }]);
  });

  it("a failed step's SQLSTATE is the instance's error code", async () => {
    const [{ id }] = await t.query(`SELECT df.start('SELECT 1/0', 'workerd-fail') AS id`);
    await w.cron();
    await pump(w);
    const res = await w.fetch(`/v1/instances/${id}?wait=5`, { headers });
    const inst = (await res.json()) as any;
    expect(inst).toMatchObject({ status: 'failed', result: null, error: { code: '22012', attempt: 1, node_id: expect.any(String) }, finished_at: expect.any(String) });
  });

  it('streams an instance as server-sent events until it is finished, then closes', async () => {
    const [{ id }] = await t.query(`SELECT df.start('SELECT 1' ~> 'SELECT 1/0', 'workerd-stream') AS id`);
    const res = await w.fetch(`/v1/instances/${id}/events/stream`, { headers });
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
    const s = sseReader(res);
    expect(await s.next()).toMatchObject({ event: 'instance', data: { instance_id: id, status: 'pending', started_at: null } });
    await w.cron();
    await pump(w);
    const rest = await s.until(() => false);
    const last = rest.filter((e) => e.event === 'instance').at(-1)!;
    expect(last.data).toMatchObject({ status: 'failed', error: { code: '22012' }, started_at: expect.any(String), finished_at: expect.any(String) });
    expect(rest.some((e) => e.event === 'event' && e.data.kind === 'failed')).toBe(true);
    expect(rest.at(-1)).toEqual({ event: 'end', data: { status: 'failed' } });
    const missing = await w.fetch('/v1/instances/0000beef/events/stream', { headers });
    expect([missing.status, ((await missing.json()) as any).error.code]).toEqual([404, 'not_found']);
  });
});
