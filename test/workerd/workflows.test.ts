/**
 * Starting a named workflow through the real Worker: POST /v1/workflows/:name/instances answers 201 and
 * the instance's first queue message is sent after the response (no wait for the cron sweep); the queue
 * invocations run it with its input.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pump, useWorkerd, type Sent } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-workflows-token-0000';
const w = useWorkerd(t, { bindings: { PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` } });

beforeAll(async () => {
  await t.query(`SELECT df.define_workflow('double', 'SELECT ($input.n)::int * 2 AS doubled')`);
});

describe('named workflows on the Workers runtime', () => {
  it('a start by name is dispatched right after the response and runs with its input', async () => {
    await w.sent();
    const res = await w.fetch('/v1/workflows/double/instances', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input: { n: 21 } }),
    });
    expect(res.status).toBe(201);
    const { instance_id: id } = (await res.json()) as { instance_id: string };
    let sent: Sent[] = [];
    for (let i = 0; i < 50 && !sent.length; i++) sent = (await w.sent()).filter((m) => m.body.instanceId === id);
    expect(sent).toHaveLength(1);
    await w.deliver([sent[0].body]);
    await pump(w);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ doubled: 42 }] } });
  });
});
