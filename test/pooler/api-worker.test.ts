/**
 * The REST API and the Node worker behind PgBouncer in transaction mode (test/helpers/pgbouncer.ts): the
 * API's per-request SET LOCAL ROLE keeps roles apart on shared server sessions, idempotent starts hold;
 * the worker with a pooled DATABASE_URL runs workflows by polling, LISTENs on PGFLARE_DIRECT_URL when
 * given, and runs a non-transactional step there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { startNodeWorker, type NodeWorker } from '../../src/runtime/node/worker.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { grantedRole, useTestDb } from '../helpers/db.ts';
import { pgbouncerAvailable, usePgBouncer } from '../helpers/pgbouncer.ts';
import { serverUntil } from '../helpers/until.ts';
import { client } from '../api/helpers.ts';

const t = useTestDb();
const bouncer = usePgBouncer(t);
let pooled: ReturnType<typeof createPgDb>;
const workers: NodeWorker[] = [];

beforeAll(() => {
  pooled = createPgDb({ connectionString: bouncer.url(), max: 4, applicationName: 'pgflare:api' });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
  await pooled?.end();
});

const until = (sql: string) => serverUntil(t.query, sql, 1500, 0.02);

describe.skipIf(!pgbouncerAvailable)('the REST API behind PgBouncer', () => {
  let call: ReturnType<typeof client>;
  let ownerToken: string, aliceToken: string, alice: string;
  beforeAll(async () => {
    alice = await grantedRole(t, 'alice');
    [{ t: ownerToken }] = await t.query('SELECT df.create_api_token($1) AS t', ['owner']);
    [{ t: aliceToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', alice]);
    call = client(createApp({ db: pooled, log: silentLogger }));
  });

  it("starts, signals and reads instances; one role's instance is a 404 to another; the worker runs alice's as alice", async () => {
    const a = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: `df.wait_for_signal('go') |=> 's' ~> 'SELECT current_user::text AS u'` } });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    const o = await call('POST', '/v1/instances', { token: ownerToken, body: { workflow: `'SELECT 1 AS one'` } });
    expect(o.status).toBe(201);
    // Interleaved reads by both roles on the pooler's shared sessions: each sees only its own.
    const reads = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i % 2 ? call('GET', `/v1/instances/${o.body.instance_id}`, { token: aliceToken }) : call('GET', `/v1/instances/${a.body.instance_id}`, { token: aliceToken }),
      ),
    );
    expect(reads.map((r) => r.status)).toEqual(Array.from({ length: 12 }, (_, i) => (i % 2 ? 404 : 200)));
    const list = await call('GET', '/v1/instances', { token: aliceToken });
    expect(list.body.instances.map((i: { instance_id: string }) => i.instance_id)).toEqual([a.body.instance_id]);

    const w = await startNodeWorker({ connectionString: bouncer.url(), pooled: true, concurrency: 2, pollIntervalMs: 30, scheduleIntervalMs: 0, pruneIntervalMs: 0 });
    workers.push(w);
    await until(`(SELECT count(*) FROM df.instances WHERE status = 'completed') = 1`);
    const sig = await call('POST', `/v1/instances/${a.body.instance_id}/signals/go`, { token: aliceToken, body: { data: 1 } });
    expect(sig.status, JSON.stringify(sig.body)).toBeLessThan(300);
    await until(`(SELECT count(*) FROM df.instances WHERE status = 'completed') = 2`);
    const done = await call('GET', `/v1/instances/${a.body.instance_id}`, { token: aliceToken });
    expect(done.body).toMatchObject({ status: 'completed', result: { rows: [{ u: alice }] } });
    await w.stop();
  });

  it('an Idempotency-Key repeat returns the first answer, with one instance', async () => {
    const app = createApp({ db: pooled, log: silentLogger });
    const req = () =>
      app.request('/v1/instances', {
        method: 'POST',
        headers: { Authorization: `Bearer ${ownerToken}`, 'Content-Type': 'application/json', 'Idempotency-Key': 'k-1' },
        body: JSON.stringify({ workflow: `'SELECT 2 AS two'`, label: 'idem' }),
      });
    const [r1, r2] = [await req(), await req()];
    expect(r1.status).toBe(201);
    expect((await r2.json()).instance_id).toBe((await r1.json()).instance_id);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE label = 'idem'`)).toEqual([{ n: 1 }]);
  });
});

describe.skipIf(!pgbouncerAvailable)('the Node worker with a pooled DATABASE_URL', () => {
  const lines: { level: string; msg: string }[] = [];
  const log: Logger = { ...silentLogger, warn: (msg) => void lines.push({ level: 'warn', msg }) };

  it('without PGFLARE_DIRECT_URL: warns, holds no LISTEN session, polls, and refuses a non-transactional step naming PGFLARE_DIRECT_URL', async () => {
    await t.query('CREATE TABLE IF NOT EXISTS hits (n int)');
    const w = await startNodeWorker({ connectionString: bouncer.url(), pooled: true, concurrency: 2, pollIntervalMs: 30, scheduleIntervalMs: 0, pruneIntervalMs: 0, log });
    workers.push(w);
    expect(lines.find((l) => l.msg.includes('PGFLARE_DIRECT_URL'))).toBeDefined();
    for (let i = 0; i < 20; i++) await t.query(`SELECT df.start('INSERT INTO hits VALUES (${i})' ~> 'SELECT 1', 'poll')`);
    const vac = (await t.query(`SELECT df.start('VACUUM df.signals', 'vac') AS id`))[0].id;
    await until(`(SELECT count(*) FROM df.instances WHERE label IN ('poll', 'vac') AND status IN ('completed', 'failed')) = 21`);
    expect(await t.query(`SELECT count(*)::int AS n, count(DISTINCT n)::int AS d FROM hits`)).toEqual([{ n: 20, d: 20 }]);
    expect(await t.query(`SELECT status, output FROM df.instances WHERE id = $1`, [vac])).toEqual([
      { status: 'failed', output: expect.stringContaining('set PGFLARE_DIRECT_URL') },
    ]);
    expect(await t.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgflare:worker:listen'`)).toEqual([{ n: 0 }]);
    await w.stop();
  });

  it('with PGFLARE_DIRECT_URL: LISTENs on it and runs a non-transactional step there', async () => {
    const w = await startNodeWorker({
      connectionString: bouncer.url(),
      pooled: true,
      directUrl: t.url(),
      concurrency: 2,
      pollIntervalMs: 30,
      scheduleIntervalMs: 0,
      pruneIntervalMs: 0,
    });
    workers.push(w);
    const [listen] = await t.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgflare:worker:listen' AND query ILIKE 'LISTEN%'`,
    );
    expect(listen.n).toBe(1);
    const id = (await t.query(`SELECT df.start('VACUUM df.signals' ~> 'SELECT 3 AS three') AS id`))[0].id;
    await until(`(SELECT status FROM df.instances WHERE id = '${id}') = 'completed'`);
    await w.stop();
  });
});
