import { describe, expect, it } from 'vitest';
import { createRole, useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome, start } from '../helpers/engine.ts';
import { heartbeat, pruneHistory, requireSchema } from '../../src/engine/maintenance.ts';
import { sweepDue } from '../../src/engine/sweep.ts';
import { migrations } from '../../src/migrate/generated/migrations.ts';

const t = useTestDb();

describe('targeted claims (queue messages)', () => {
  it('runs exactly the named node; a duplicate message finds nothing to do', async () => {
    const id = await start(t, `'SELECT 1 AS a' & 'SELECT 2 AS b' & 'SELECT 3 AS c'`);
    const e = engineFor(t);
    await e.runOnce(); // start, and the first ready branch ('a') in the same transaction
    const [b] = await t.query(`SELECT id FROM df.nodes WHERE instance_id = $1 AND query = 'SELECT 2 AS b'`, [id]);
    const r = await e.runOnce({ target: { instanceId: id, nodeId: b.id } });
    expect(r?.nodeId).toBe(b.id);
    expect(await e.runOnce({ target: { instanceId: id, nodeId: b.id } })).toBeNull();
    const [a] = await t.query(`SELECT status FROM df.nodes WHERE instance_id = $1 AND query = 'SELECT 3 AS c'`, [id]);
    expect(a.status).toBe('running'); // untouched: the message named the other branch
  });
});

describe('sweep, heartbeat, retention, schema version', () => {
  it('sweepDue hands every due row to dispatch, timers within the horizon too', async () => {
    const id = await start(t, `df.sleep(30) ~> 'SELECT 1'`);
    await engineFor(t).drain();
    const sent: string[] = [];
    const c = await t.owner.connect();
    try {
      expect(await sweepDue(c, (r) => void sent.push(...r.map((x) => x.instanceId)), { now: new Date(), horizonMs: 10_000, limit: 100 })).toBe(0);
      expect(await sweepDue(c, (r) => void sent.push(...r.map((x) => x.instanceId)), { now: new Date(), horizonMs: 60_000, limit: 100 })).toBe(1);
    } finally {
      c.release();
    }
    expect(sent).toEqual([id]);
  });

  it('heartbeat keeps one row per live worker epoch fresh', async () => {
    const c = await t.owner.connect();
    try {
      await heartbeat(c, '00000000-0000-4000-8000-000000000001');
      await c.query(`UPDATE df._worker_epoch SET last_seen_at = now() - interval '1 hour'`);
      await heartbeat(c, '00000000-0000-4000-8000-000000000001');
      const rows = (await c.query(`SELECT epoch_id, last_seen_at > now() - interval '1 minute' AS fresh FROM df._worker_epoch`)).rows;
      expect(rows).toEqual([{ epoch_id: '00000000-0000-4000-8000-000000000001', fresh: true }]);
    } finally {
      c.release();
    }
  });

  it('pruneHistory deletes terminal instances past retention and keeps running ones', async () => {
    const done = await start(t, `'SELECT 1'`);
    const waiting = await start(t, `df.sleep(600)`);
    await engineFor(t).drain();
    await t.query(`UPDATE df.instances SET completed_at = now() - interval '40 days', created_at = now() - interval '40 days'`);
    const c = await t.owner.connect();
    try {
      expect(await pruneHistory(c, { retentionDays: null, keep: 10_000, batch: 100 })).toBeGreaterThanOrEqual(1);
    } finally {
      c.release();
    }
    const left = (await t.query(`SELECT id FROM df.instances WHERE id IN ($1, $2)`, [done, waiting])).map((r) => r.id);
    expect(left).toEqual([waiting]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1`, [done])).toEqual([{ n: 0 }]);
  });

  it('a worker refuses a database whose schema is older than its code', async () => {
    const c = await t.owner.connect();
    try {
      await expect(requireSchema(c, migrations.length)).resolves.toBeUndefined();
      await expect(requireSchema(c, migrations.length + 1)).rejects.toThrow(/run `pgflare migrate`/);
    } finally {
      c.release();
    }
  });
});

describe('what the engine refuses to run', () => {
  it('a run_at set by hand on a finished node is withdrawn, not run again', async () => {
    await t.query('CREATE TABLE effects (n int)');
    const id = await start(t, `'INSERT INTO effects VALUES (1)' ~> df.sleep(600)`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`UPDATE df.nodes SET run_at = now() - interval '1 second' WHERE instance_id = $1 AND node_type = 'SQL'`, [id]);
    const r = await e.runOnce();
    expect(r?.kind).toBe('withdrawn');
    expect(await t.query('SELECT count(*)::int AS n FROM effects')).toEqual([{ n: 1 }]);
  });

  it('an instance owned by a superuser is failed at first claim while the gate is off (no node failed)', async () => {
    const c = await t.superuser.connect();
    let id: string;
    try {
      await c.query(`SET pg_durable.enable_superuser_instances = on`);
      id = (await c.query(`SELECT df.start('SELECT 1') AS id`)).rows[0].id;
    } finally {
      c.release();
    }
    await engineFor(t).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe(`pg_durable blocked instance ${id}: submitted_by role "postgres" is a superuser, but pg_durable.enable_superuser_instances is off`);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND status = 'failed'`, [id])).toEqual([{ n: 0 }]);
  });

  it("another role's instance without a step runner is failed at first claim, before any step runs", async () => {
    const other = t.role('other');
    await createRole(t, other, `LOGIN PASSWORD 'pw'`);
    await t.query(`SELECT df.grant_usage('${other}')`);
    // As if usage had been granted by someone who could not make the runner (test/security/runners.test.ts).
    await t.query(`DROP FUNCTION ${(await t.query(`SELECT runner FROM df._runners WHERE role = $1::regrole`, [other]))[0].runner}(text)`);
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString: t.url(other, 'pw'), max: 1 });
    let id: string;
    try {
      id = (await pool.query(`SELECT df.start('SELECT current_user AS u') AS id`)).rows[0].id;
    } finally {
      await pool.end();
    }
    await engineFor(t).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe(`pgflare: role "${other}" has no step runner: the owner of schema df (or a superuser) must run SELECT df.grant_usage('${other}')`);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND status <> 'pending'`, [id])).toEqual([{ n: 0 }]);
  });

  it('a crash after the lease is taken, before the step ran, re-runs it after the lease expires', async () => {
    await t.query('DROP TABLE IF EXISTS effects; CREATE TABLE effects (n int)');
    const id = await start(t, `'VACUUM effects' ~> 'SELECT 1 AS one'`);
    await engineFor(t).runOnce();
    let crashed = false;
    const points = (p: string) => {
      if (p === 'after-lease' && !crashed) {
        crashed = true;
        throw new Error('crash after lease');
      }
    };
    await expect(engineFor(t, { points: points as never, leaseMs: 30_000 }).runOnce()).rejects.toThrow('crash after lease');
    expect(await engineFor(t).drain()).toBe(0);
    await engineFor(t).drain({ now: later(31) });
    expect((await outcome(t, id)).status).toBe('completed');
  });
});
