/**
 * The Worker in real workerd behind PgBouncer in transaction mode (test/helpers/pgbouncer.ts), both ways
 * it reaches PostgreSQL (src/runtime/worker/open-db.ts):
 *  - a Hyperdrive binding whose local connection string is PgBouncer (Hyperdrive itself pools in
 *    transaction mode), with no DATABASE_URL: a non-transactional step fails naming PGFLARE_DIRECT_URL;
 *  - the Neon driver through the WebSocket proxy to PgBouncer, PGFLARE_POOLED=1, and PGFLARE_DIRECT_URL
 *    to the server itself, where the non-transactional step runs.
 * Every message is delivered twice; effects are counted in a user table.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pgbouncerAvailable, usePgBouncer } from '../helpers/pgbouncer.ts';
import { useWorkerd, type Workerd } from '../workerd/harness.ts';

const t = useTestDb();
const bouncer = usePgBouncer(t);
const TOKEN = 'workerd-pooler-token-00000000';

// PgBouncer's port is known once its beforeAll ran: the connection strings through it are read late.
const viaHyperdrive = pgbouncerAvailable
  ? useWorkerd(t, {
      bindings: { DATABASE_URL: '', WS_PROXY: '', PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` },
      late: () => ({ hyperdrives: { HYPERDRIVE: bouncer.url() } }),
    })
  : null;
const viaNeon = pgbouncerAvailable
  ? useWorkerd(t, {
      bindings: { PGFLARE_POOLED: '1', PGFLARE_DIRECT_URL: t.url(), PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` },
      late: () => ({ bindings: { DATABASE_URL: bouncer.url() } }),
    })
  : null;

beforeAll(async () => {
  await t.query('CREATE TABLE effects (k text PRIMARY KEY)');
});

/** Delivers every message the worker sends, each twice (a duplicate finds its row taken or done). */
async function pumpTwice(w: Workerd): Promise<number> {
  let n = 0;
  for (let round = 0; round < 60; round++) {
    const sent = await w.sent();
    if (!sent.length) return n;
    for (const m of sent) {
      await w.deliver([m.body]);
      await w.deliver([m.body]);
      n++;
    }
  }
  throw new Error('still sending after 60 rounds');
}

async function runSuite(w: Workerd, tag: string): Promise<void> {
  const post = (path: string, body: unknown) =>
    w.fetch(path, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const ins = (k: string) => `'INSERT INTO effects VALUES (''${tag}-${k}'') RETURNING 1 AS one'`;
  await w.sent();
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await post('/v1/instances', { workflow: `${ins(`${i}a`)} ~> (${ins(`${i}b`)} & ${ins(`${i}c`)}) ~> ${ins(`${i}d`)}` });
    expect(r.status).toBe(201);
    ids.push(((await r.json()) as { instance_id: string }).instance_id);
  }
  const waiting = await post('/v1/instances', { workflow: `df.wait_for_signal('go') |=> 's' ~> ${ins('sig')}` });
  const sigId = ((await waiting.json()) as { instance_id: string }).instance_id;
  // Started from SQL: only the cron sweep sends its first message.
  const [{ id: fromSql }] = await t.query(`SELECT df.start(${ins('sql')}) AS id`);
  await pumpTwice(w);
  expect((await post(`/v1/instances/${sigId}/signals/go`, { x: 1 })).status).toBeLessThan(300);
  await w.cron();
  await pumpTwice(w);
  for (const id of [...ids, sigId, fromSql]) expect((await outcome(t, id)).status, id).toBe('completed');
  expect(await t.query(`SELECT count(*)::int AS n FROM effects WHERE k LIKE $1`, [`${tag}-%`])).toEqual([{ n: 26 }]);
}

describe.skipIf(!pgbouncerAvailable)('the Worker behind PgBouncer (transaction mode)', () => {
  it('through a Hyperdrive binding to PgBouncer: JOINs, a signal and a SQL start complete, each effect once', async () => {
    await runSuite(viaHyperdrive!, 'hd');
  });

  it('through a Hyperdrive binding without DATABASE_URL, a non-transactional step fails naming PGFLARE_DIRECT_URL', async () => {
    const [{ id }] = await t.query(`SELECT df.start('VACUUM df.signals') AS id`);
    await viaHyperdrive!.sent();
    await viaHyperdrive!.cron();
    await pumpTwice(viaHyperdrive!);
    expect(await t.query(`SELECT status, output FROM df.instances WHERE id = $1`, [id])).toEqual([
      { status: 'failed', output: expect.stringContaining('set PGFLARE_DIRECT_URL') },
    ]);
  });

  it('through the Neon driver to PgBouncer (PGFLARE_POOLED=1): the same workflows complete, each effect once', async () => {
    await runSuite(viaNeon!, 'neon');
  });

  it('through the Neon driver with PGFLARE_DIRECT_URL, a non-transactional step runs on the direct connection', async () => {
    const [{ id }] = await t.query(`SELECT df.start('VACUUM df.signals' ~> 'SELECT 5 AS five') AS id`);
    await viaNeon!.sent();
    await viaNeon!.cron();
    await pumpTwice(viaNeon!);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ five: 5 }] } });
  });
});
