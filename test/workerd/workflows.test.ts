/**
 * Starting a named workflow through the real Worker: POST /v1/workflows/:name/instances answers 201 and
 * the instance's first step runs with its input after the response, in the request's ctx.waitUntil (no
 * queue message, no wait for the cron sweep).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { eventually, useWorkerd } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-workflows-token-0000';
const w = useWorkerd(t, { bindings: { PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` } });

beforeAll(async () => {
  await t.query(`CREATE TABLE seen (app text NOT NULL DEFAULT current_setting('application_name'))`);
  await t.query(`SELECT df.define_workflow('double', 'WITH s AS (INSERT INTO seen DEFAULT VALUES RETURNING 1) SELECT ($input.n)::int * 2 AS doubled FROM s')`);
});

describe('named workflows on the Workers runtime', () => {
  it('a start by name runs its step with its input in the request\'s waitUntil, with no queue message', async () => {
    await w.sent();
    const res = await w.fetch('/v1/workflows/double/instances', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input: { n: 21 } }),
    });
    expect(res.status).toBe(201);
    const { instance_id: id } = (await res.json()) as { instance_id: string };
    await eventually(async () => (await outcome(t, id)).status === 'completed', `instance ${id} completed`);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ doubled: 42 }] } });
    // The API's invocation ran it (its session's application_name), and no message was sent for it.
    expect(await t.query('SELECT app FROM seen')).toEqual([{ app: expect.stringMatching(/^pgflare:api:[0-9a-f]{8}$/) }]);
    expect((await w.sent()).filter((m) => m.body.instanceId === id)).toEqual([]);
  });
});
