/**
 * The Worker through a Hyperdrive binding (src/runtime/worker/open-db.ts, hyperdrive-db.ts): `pg` over
 * workerd's TCP sockets to the binding's local connection string, here the test PostgreSQL itself, as
 * `npm run dev` does with localConnectionString. No DATABASE_URL: everything goes through the binding.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pump, useWorkerd } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-hyperdrive-token-0000';
const w = useWorkerd(t, { bindings: { DATABASE_URL: '', WS_PROXY: '', PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` }, hyperdrives: { HYPERDRIVE: t.url() } });

const post = (path: string, body: unknown) =>
  w.fetch(path, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the Worker over its Hyperdrive binding', () => {
  it('runs a JOIN, a signal wait and a chain to completion, each effect once, with no DATABASE_URL to fall back on', async () => {
    await t.query('CREATE TABLE effects (k text PRIMARY KEY)');
    await w.sent();
    const join = await post('/v1/instances', {
      workflow: `('INSERT INTO effects VALUES (''a'') RETURNING 1 AS a' & 'INSERT INTO effects VALUES (''b'') RETURNING 2 AS b') ~> 'INSERT INTO effects VALUES (''c'') RETURNING 42 AS answer'`,
    });
    expect(join.status).toBe(201);
    const waiting = await post('/v1/instances', { workflow: `df.wait_for_signal('go') |=> 's' ~> 'INSERT INTO effects VALUES (''s'') RETURNING $s::jsonb -> ''data'' ->> ''who'' AS got'` });
    const [j, s] = [(await join.json()) as { instance_id: string }, (await waiting.json()) as { instance_id: string }];
    // Sent after the responses (waitUntil); a duplicate delivery of every message changes nothing.
    for (let i = 0; i < 50; i++) if ((await pump(w)) > 0) break;
    const sig = await post(`/v1/instances/${s.instance_id}/signals/go`, { who: 'yes' });
    expect(sig.status).toBeLessThan(300);
    await pump(w);
    await w.cron();
    await pump(w);
    expect(await outcome(t, j.instance_id)).toMatchObject({ status: 'completed', result: { rows: [{ answer: 42 }] } });
    expect(await outcome(t, s.instance_id)).toMatchObject({ status: 'completed', result: { rows: [{ got: 'yes' }] } });
    expect(await t.query('SELECT k FROM effects ORDER BY k')).toEqual([{ k: 'a' }, { k: 'b' }, { k: 'c' }, { k: 's' }]);
  });
});

describe('the Worker over Hyperdrive with PGFLARE_DIRECT_URL', () => {
  const direct = useWorkerd(t, {
    bindings: { DATABASE_URL: '', WS_PROXY: '', PGFLARE_DIRECT_URL: t.url() },
    hyperdrives: { HYPERDRIVE: t.url() },
  });
  it('runs a non-transactional step on the direct connection (node-postgres over a TCP socket)', async () => {
    const [{ id }] = await t.query(`SELECT df.start('VACUUM df.signals' ~> 'SELECT 6 AS six') AS id`);
    await direct.sent();
    await direct.cron();
    await pump(direct);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ six: 6 }] } });
  });
});
