/**
 * The engine behind PgBouncer in transaction mode (test/helpers/pgbouncer.ts): every transaction may get
 * another server session, so nothing may lean on session state between transactions. Exactly-once,
 * crash points, signals, schedules, another role's instance, the session left clean after a step that
 * dirties it, and what needs a session of its own (the prepared wake-up claim, non-transactional steps).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type EngineOptions } from '../../src/engine/engine.ts';
import { DIRECT_URL_NEEDED, looksPooled } from '../../src/engine/pooled.ts';
import { fireDueSchedules } from '../../src/engine/schedules.ts';
import type { CrashPoint, PointHandler } from '../../src/engine/points.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { useTestDb } from '../helpers/db.ts';
import { later, outcome, start } from '../helpers/engine.ts';
import { pgbouncerAvailable, usePgBouncer } from '../helpers/pgbouncer.ts';
import { useRoles } from '../security/roles-helpers.ts';

const t = useTestDb();
const bouncer = usePgBouncer(t);
const role = useRoles(t);
let pooled: ReturnType<typeof createPgDb>;

beforeAll(() => {
  pooled = createPgDb({ connectionString: bouncer.url(), max: 8, applicationName: 'pgflare:pooled-test' });
});
afterAll(async () => {
  await pooled?.end();
});

const engine = (opts: Partial<EngineOptions> = {}) => createEngine({ db: pooled, pooled: true, ...opts });
const effects = async (table = 'effects') => (await t.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0].n;

class Crash extends Error {}
function crashOnce(point: CrashPoint): PointHandler & { fired: boolean } {
  const h = Object.assign(
    (p: CrashPoint) => {
      if (p === point && !h.fired) {
        h.fired = true;
        throw new Crash(`crash at ${point}`);
      }
    },
    { fired: false },
  );
  return h;
}

/** Holds `n` pooled transactions open at once, so each gets its own server session, and runs `sql` in each. */
async function onEveryServerSession<R>(n: number, sql: string): Promise<R[]> {
  const clients = await Promise.all(Array.from({ length: n }, () => new pg.Client({ connectionString: bouncer.url() })));
  await Promise.all(clients.map((c) => c.connect()));
  try {
    await Promise.all(clients.map((c) => c.query('BEGIN')));
    const rows = await Promise.all(clients.map(async (c) => (await c.query(sql)).rows[0] as R));
    await Promise.all(clients.map((c) => c.query('COMMIT')));
    return rows;
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

describe.skipIf(!pgbouncerAvailable)('the engine behind PgBouncer (transaction mode)', () => {
  it('the pooler shares server sessions: two transactions of one client can land on different backends', async () => {
    const pids = await onEveryServerSession<{ pid: number }>(3, 'SELECT pg_backend_pid() AS pid');
    expect(new Set(pids.map((p) => p.pid)).size).toBe(3);
  });

  it('runs 60 three-step chains from 4 loops with every effect exactly once', async () => {
    await t.query('CREATE TABLE effects (i int, step int, UNIQUE (i, step))');
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(await start(t, `'INSERT INTO effects VALUES (${i}, 1)' ~> 'INSERT INTO effects VALUES (${i}, 2)' ~> 'INSERT INTO effects VALUES (${i}, 3) RETURNING step'`));
    }
    const ran = await engine({ batchSize: 8 }).drain({ concurrency: 4 });
    expect(ran).toBeGreaterThanOrEqual(180);
    expect(await effects()).toBe(180);
    const statuses = await t.query(`SELECT status, count(*)::int AS n FROM df.instances WHERE id = ANY($1) GROUP BY 1`, [ids]);
    expect(statuses).toEqual([{ status: 'completed', n: 60 }]);
  });

  it.each<CrashPoint>(['after-claim', 'before-commit'])('a crash at %s rolls the step back; the re-run counts once', async (point) => {
    await t.query('DROP TABLE IF EXISTS crash_effects; CREATE TABLE crash_effects (n int)');
    const id = await start(t, `'SELECT 1' ~> 'INSERT INTO crash_effects VALUES (1) RETURNING n' ~> 'SELECT 2'`);
    await engine().runOnce();
    const h = crashOnce(point);
    await expect(engine({ points: h }).runOnce()).rejects.toBeInstanceOf(Crash);
    expect(h.fired).toBe(true);
    expect(await effects('crash_effects')).toBe(0);
    await engine().drain();
    expect(await effects('crash_effects')).toBe(1);
    expect((await outcome(t, id)).status).toBe('completed');
  });

  it('a crash after commit, before dispatch, loses nothing and repeats nothing', async () => {
    await t.query('DROP TABLE IF EXISTS crash_effects; CREATE TABLE crash_effects (n int)');
    const id = await start(t, `'SELECT 0' ~> 'INSERT INTO crash_effects VALUES (1)' ~> 'SELECT 2 AS two'`);
    await engine().runOnce();
    const h = crashOnce('after-commit');
    await expect(engine({ points: h }).runOnce()).rejects.toBeInstanceOf(Crash);
    await engine().drain();
    expect(await effects('crash_effects')).toBe(1);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ two: 2 }] } });
  });

  it('a signal wakes a waiting node through the pooler', async () => {
    const id = await start(t, `df.wait_for_signal('go') |=> 'sig' ~> 'SELECT $sig::jsonb -> ''data'' ->> ''who'' AS who'`);
    const e = engine();
    await e.drain();
    expect((await outcome(t, id)).status).toBe('running');
    const c = new pg.Client({ connectionString: bouncer.url() });
    await c.connect();
    await c.query(`SELECT df.signal($1, 'go', '{"who":"ann"}')`, [id]);
    await c.end();
    await e.drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ who: 'ann' }] } });
  });

  it('fires a due schedule through the pooler, once, and its instance runs', async () => {
    await t.query('CREATE TABLE ticks (label text)');
    await t.query(`SELECT df.define_workflow('tick', 'INSERT INTO ticks VALUES (''{sys_label}'')')`);
    await t.query(`SELECT df.create_schedule('every-minute', 'tick', '* * * * *')`);
    await t.query(`UPDATE df.schedules SET next_fire_at = '2030-01-01T12:00:00Z'`);
    const now = new Date('2030-01-01T12:00:05Z');
    const fired = await Promise.all([0, 1].map(() => pooled.withClient((c) => fireDueSchedules(c, { now }))));
    expect(fired.flat().filter((f) => f.instanceId)).toHaveLength(1);
    await engine().drain({ now });
    expect(await t.query('SELECT label FROM ticks')).toEqual([{ label: 'every-minute' }]);
  });

  it("another role's instance runs as that role through its step runner", async () => {
    const alice = await role('alice');
    const id = await alice.start(`'SELECT current_user::text AS u, session_user::text AS s'`);
    await engine().drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ u: alice.name, s: 'pgflare_owner' }] } });
  });

  it('a step that dirties its session (settings, role, temp table, prepared statement, advisory lock) leaves every server session clean', async () => {
    await t.query('CREATE TABLE dirty_done (n int)');
    const dirty = [
      `SELECT set_config('pgflare_test.dirty', 'yes', false)`,
      `CREATE TEMP TABLE dirty_temp (n int)`,
      `PREPARE dirty_stmt AS SELECT 1`,
      `SELECT pg_advisory_lock(4242)`,
      `SET search_path = pg_temp`,
    ];
    const ids = [];
    for (const sql of dirty) ids.push(await start(t, `'${sql.replaceAll("'", "''")}' ~> 'INSERT INTO public.dirty_done VALUES (1)'`));
    await engine().drain({ concurrency: 3 });
    // A contended checkpoint steps its row aside 250 ms, and a drain ends when nothing is due.
    await engine().drain({ concurrency: 3, now: later(1) });
    expect(await effects('dirty_done')).toBe(dirty.length);
    const seen = await onEveryServerSession<{ dirty: string | null; temp: number; prepared: number; locks: number; path: string }>(
      3,
      `SELECT current_setting('pgflare_test.dirty', true) AS dirty,
              (SELECT count(*)::int FROM pg_class WHERE relname = 'dirty_temp' AND relpersistence = 't') AS temp,
              (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
              (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
              current_setting('search_path') AS path`,
    );
    for (const s of seen) {
      expect(s).toEqual({ dirty: expect.toSatisfy((v: string | null) => !v), temp: 0, prepared: 0, locks: 0, path: '"$user", public' });
    }
  });

  it('without `pooled`, the wake-up claim prepared on an idle session breaks behind the pooler (prepared statement does not exist)', async () => {
    await t.query('CREATE TABLE woken (n int)');
    const result = await runSeriesAcrossAWait({ pooled: false });
    expect(String(result.error)).toMatch(/prepared statement "pgflare_claim" does not exist/);
  });

  it('with `pooled`, the wake-up claim is df._claim: the instance started during the wait runs', async () => {
    await engine().drain(); // the instance the test before left pending
    await t.query('TRUNCATE woken');
    const result = await runSeriesAcrossAWait({ pooled: true });
    expect(result.error).toBeUndefined();
    expect(result.ran).toBe(1);
    expect(await effects('woken')).toBe(1);
  });

  it('a non-transactional step behind the pooler fails naming PGFLARE_DIRECT_URL, and runs on the direct connection when there is one', async () => {
    const refused = await start(t, `'VACUUM df.signals'`);
    await engine().drain();
    expect(await t.query(`SELECT status, output FROM df.instances WHERE id = $1`, [refused])).toEqual([
      { status: 'failed', output: expect.stringContaining(DIRECT_URL_NEEDED) },
    ]);
    const direct = createPgDb({ connectionString: t.url(), max: 1 });
    try {
      const ok = await start(t, `'VACUUM df.signals' ~> 'SELECT 7 AS seven'`);
      await engine({ directDb: direct }).drain();
      expect(await outcome(t, ok)).toMatchObject({ status: 'completed', result: { rows: [{ seven: 7 }] } });
    } finally {
      await direct.end();
    }
  });
});

describe('looksPooled', () => {
  it.each([
    ['postgres://u:p@ep-cool-1234-pooler.us-east-2.aws.neon.tech/db?sslmode=require', true],
    ['postgres://u:p@ep-cool-1234.us-east-2.aws.neon.tech/db?sslmode=require', false],
    ['postgres://u.ref:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres', true],
    ['postgres://u:p@db.ref.supabase.co:5432/postgres', false],
    ['postgres://u:p@127.0.0.1:6432/db', true],
    ['postgres://u:p@127.0.0.1:5432/db', false],
    ['host=127.0.0.1 port=6432', false],
  ])('%s → %s', (url, expected) => {
    expect(looksPooled(url)).toBe(expected);
  });

  it('PGFLARE_POOLED overrides the look of the URL', () => {
    expect(looksPooled('postgres://u:p@127.0.0.1:5432/db', true)).toBe(true);
    expect(looksPooled('postgres://u:p@127.0.0.1:6432/db', false)).toBe(false);
  });
});

/**
 * One runSeries loop that goes idle (with `pooled: false` it prepares the wake-up claim then), while
 * another client starts an instance and holds a transaction open: PgBouncer reuses the most recently
 * freed server session, the one the claim was prepared on, for that other client, so the wake-up claim
 * lands on another server session.
 */
async function runSeriesAcrossAWait(opts: { pooled: boolean }): Promise<{ ran: number; error?: unknown }> {
  const e = engine({ pooled: opts.pooled });
  let waits = 0;
  const holder = new pg.Client({ connectionString: bouncer.url() });
  await holder.connect();
  try {
    const ran = await e.runSeries({
      idle: async () => {
        if (waits++ > 0) return false;
        await holder.query('BEGIN');
        await holder.query(`SELECT df.start('INSERT INTO public.woken VALUES (1)')`);
        await holder.query('COMMIT; BEGIN; SELECT 1');
        return true;
      },
    });
    return { ran };
  } catch (error) {
    return { ran: -1, error };
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
}
