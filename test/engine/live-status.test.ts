/**
 * Issue 16 item 3: an instance whose first step is running reads as `running` (df.status,
 * df.instance_info, df.list_instances, GET /v1/instances/{id}) while the step runs, though that step
 * runs in the transaction that activates the instance (nothing is committed before it): the claim holds a
 * shared advisory lock on the instance, which the status functions see in pg_locks. A step that takes a
 * lease (VACUUM) commits the activation first and reads as running through the table itself.
 */
import { inject } from 'vitest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb } from '../helpers/db.ts';
import { start } from '../helpers/engine.ts';
import { gate, waitUntilBlocked } from '../helpers/locks.ts';
import { createEngine } from '../../src/engine/engine.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { client } from '../api/helpers.ts';

const t = useTestDb();
const STATIC = 'static-token-for-the-owner-live-status';

function engineAs(app: string, points?: (p: string) => Promise<void> | void) {
  const db = createPgDb({ connectionString: t.url(), max: 2, applicationName: app });
  return { db, engine: createEngine({ db, points: points as never }) };
}

/** Every place that reports an instance's status, as the owner sees it. */
async function statuses(id: string) {
  const call = client(createApp({ db: t.db, staticTokens: [{ token: STATIC, role: inject('pg').owner }] }));
  const [s] = await t.query('SELECT df.status($1) AS status, (SELECT status FROM df.instance_info($1)) AS info, i.status AS stored FROM df.instances i WHERE i.id = $1', [id]);
  const listed = (await t.query('SELECT status FROM df.list_instances() WHERE instance_id = $1', [id]))[0]?.status;
  const paged = (await t.query('SELECT status FROM df.list_instances(NULL, 100, NULL) WHERE instance_id = $1', [id]))[0]?.status;
  const filtered = {
    running: (await t.query(`SELECT count(*)::int AS n FROM df.list_instances('running', 100, NULL) WHERE instance_id = $1`, [id]))[0].n,
    pending: (await t.query(`SELECT count(*)::int AS n FROM df.list_instances('pending') WHERE instance_id = $1`, [id]))[0].n,
  };
  const api = await call('GET', `/v1/instances/${id}`, { token: STATIC });
  const apiList = await call('GET', `/v1/instances?status=running`, { token: STATIC });
  return {
    status: s.status,
    info: s.info,
    stored: s.stored,
    listed,
    paged,
    filtered,
    api: api.body.status,
    apiListsIt: (apiList.body.instances as { instance_id: string }[]).some((x) => x.instance_id === id),
  };
}

describe('a live running status', () => {
  it('a pending instance whose first step is running reads as running everywhere, then completed', async () => {
    await t.query('CREATE TABLE held (n int); INSERT INTO held VALUES (1)');
    const id = await start(t, `'SELECT n FROM held FOR UPDATE'`);
    expect((await statuses(id)).status).toBe('pending');
    const holder = await t.owner.connect();
    const w = engineAs('live-status-worker');
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT n FROM held FOR UPDATE');
      const running = w.engine.runOnce(); // the step waits for the row this test holds
      await waitUntilBlocked(t.superuser, 'live-status-worker');
      expect(await statuses(id)).toEqual({
        status: 'running',
        info: 'running',
        stored: 'pending', // nothing is committed yet
        listed: 'running',
        paged: 'running',
        filtered: { running: 1, pending: 0 },
        api: 'running',
        apiListsIt: true,
      });
      await holder.query('COMMIT');
      expect((await running)?.kind).toBe('step');
      expect(await statuses(id)).toMatchObject({ status: 'completed', info: 'completed', stored: 'completed', listed: 'completed', api: 'completed' });
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await w.db.end();
    }
  });

  it('an activation given up (the step fails its attempt by a crash) reads as pending again', async () => {
    const id = await start(t, `'SELECT 1'`);
    const g = gate('before-commit');
    const w = engineAs('live-status-crash', async (p) => {
      await g.handler(p);
      if (p === 'before-commit') throw new Error('crash');
    });
    try {
      const running = w.engine.runOnce().catch((e: Error) => e.message);
      await g.arrived;
      expect(await t.query('SELECT df.status($1) AS s', [id])).toEqual([{ s: 'running' }]);
      g.release();
      expect(await running).toBe('crash');
      expect(await t.query('SELECT df.status($1) AS s', [id])).toEqual([{ s: 'pending' }]);
      expect(await createEngine({ db: t.db }).drain()).toBe(1);
      expect(await t.query('SELECT df.status($1) AS s', [id])).toEqual([{ s: 'completed' }]);
    } finally {
      g.release();
      await w.db.end();
    }
  });

  it('a first step on the lease path (VACUUM) reads as running from its committed activation', async () => {
    await t.query('CREATE TABLE vac (n int)');
    const id = await start(t, `'VACUUM vac'`);
    const g = gate('after-lease');
    const w = engineAs('live-status-lease', g.handler);
    try {
      // The activation cannot continue with a statement that runs outside a transaction: it commits alone.
      expect((await w.engine.runOnce())?.kind).toBe('start');
      const running = w.engine.runOnce();
      await g.arrived; // the lease is committed; the VACUUM has not run yet
      expect(await statuses(id)).toMatchObject({ status: 'running', stored: 'running', listed: 'running', api: 'running' });
      g.release();
      expect((await running)?.kind).toBe('lease');
      expect((await statuses(id)).status).toBe('completed');
    } finally {
      g.release();
      await w.db.end();
    }
  });
});
