/**
 * The maintenance both runtimes share (src/engine/maintenance.ts), against the real database: the
 * schema check and the Node worker's refusal, the heartbeat's staleness bound, the prune's retention,
 * keep and batch bounds (time moved by passing `now` over backdated rows), and its lock: a prune that
 * finds another one running skips instead of waiting.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { DbClient } from '../../src/engine/db.ts';
import { checkSchema, heartbeat, PRUNE_LOCK_KEY, pruneHistory, pruneHistoryBatches, requireSchema, retireEpoch, SchemaMismatchError } from '../../src/engine/maintenance.ts';
import { migrations } from '../../src/migrate/generated/migrations.ts';
import { startNodeWorker } from '../../src/runtime/node/worker.ts';
import { useEmptyDatabases, useTestDb } from '../helpers/db.ts';
import { engineFor, start } from '../helpers/engine.ts';
import { waitUntilBlocked } from '../helpers/locks.ts';

const t = useTestDb();
const empty = useEmptyDatabases();
const DAY = 86_400_000;

/** A session of its own, tagged so pg_stat_activity can tell when it waits on a lock. */
async function session(url: string, applicationName: string): Promise<pg.Client & DbClient> {
  const c = new pg.Client({ connectionString: url, application_name: applicationName });
  await c.connect();
  return c as pg.Client & DbClient;
}

const withClient = <T>(fn: (c: DbClient) => Promise<T>) => t.db.withClient(fn);
const ids = async () => (await t.query<{ id: string }>('SELECT id FROM df.instances ORDER BY id')).map((r) => r.id);

describe('schema check', () => {
  it('is ok on the migrated database, behind or ahead of other code, missing on an empty one', async () => {
    const n = migrations.length;
    expect(await withClient((c) => checkSchema(c, n))).toEqual({ state: 'ok', database: n, expected: n, message: null });
    expect(await withClient((c) => checkSchema(c, n + 1))).toMatchObject({ state: 'behind', database: n, message: `schema df is at migration ${n}, this pgflare needs ${n + 1}: run \`pgflare migrate\`` });
    expect(await withClient((c) => checkSchema(c, n - 1))).toMatchObject({ state: 'ahead', database: n, message: expect.stringMatching(/newer than this pgflare/) });
    const c = await session(await empty.create(), 'schema-check');
    try {
      expect(await checkSchema(c, n)).toMatchObject({ state: 'missing', database: null, message: expect.stringMatching(/not installed/) });
    } finally {
      await c.end();
    }
  });

  it('requireSchema refuses any mismatch with a SchemaMismatchError', async () => {
    await expect(withClient((c) => requireSchema(c, migrations.length))).resolves.toBeUndefined();
    const err = await withClient((c) => requireSchema(c, migrations.length + 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaMismatchError);
    expect((err as SchemaMismatchError).check.state).toBe('behind');
  });

  it('the Node worker refuses to start on a database without schema df', async () => {
    await expect(startNodeWorker({ connectionString: await empty.create(), concurrency: 1 })).rejects.toThrow(
      'schema df is not installed in this database: run `pgflare migrate` first',
    );
  });
});

describe('heartbeat', () => {
  it('records the epoch at `now`, keeps epochs seen within a minute and forgets older ones', async () => {
    const a = '00000000-0000-4000-8000-00000000000a';
    const b = '00000000-0000-4000-8000-00000000000b';
    const t0 = new Date('2030-01-01T12:00:00Z');
    const epochs = async () =>
      (await t.query<{ epoch_id: string; last_seen_at: Date }>('SELECT epoch_id, last_seen_at FROM df._worker_epoch ORDER BY epoch_id')).map((r) => [r.epoch_id, r.last_seen_at.toISOString()]);
    await withClient((c) => heartbeat(c, a, t0));
    await withClient((c) => heartbeat(c, b, new Date(t0.getTime() + 60_000)));
    expect(await epochs()).toEqual([
      [a, '2030-01-01T12:00:00.000Z'],
      [b, '2030-01-01T12:01:00.000Z'],
    ]);
    // A minute and a millisecond after a's last beat, b's beat retires it.
    await withClient((c) => heartbeat(c, b, new Date(t0.getTime() + 60_001)));
    expect(await epochs()).toEqual([[b, '2030-01-01T12:01:00.001Z']]);
    await withClient((c) => retireEpoch(c, b));
    expect(await epochs()).toEqual([]);
  });
});

describe('pruneHistory', () => {
  it('deletes terminal instances older than the retention, from `now`, and nothing else', async () => {
    await t.query('DELETE FROM df.instances');
    const done = await start(t, `'SELECT 1'`);
    const failed = await start(t, `'SELECT 1/0'`);
    const waiting = await start(t, `df.sleep(600)`);
    await engineFor(t).drain();
    const t0 = new Date('2030-01-01T00:00:00Z');
    await t.query(`UPDATE df.instances SET created_at = $1, completed_at = CASE WHEN status IN ('completed', 'failed') THEN $1::timestamptz END`, [t0]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE status IN ('completed', 'failed')`)).toEqual([{ n: 2 }]);

    const prune = (now: Date, retentionDays: number | null = null) => withClient((c) => pruneHistory(c, { retentionDays, keep: 10_000, batch: 100, now }));
    // pg_durable.retention_days defaults to 30: exactly 30 days on is not past it, a millisecond more is.
    expect(await prune(new Date(t0.getTime() + 30 * DAY))).toBe(0);
    expect(await prune(new Date(t0.getTime() + 7 * DAY), 7)).toBe(0);
    expect(await prune(new Date(t0.getTime() + 30 * DAY + 1))).toBe(2);
    expect(await ids()).toEqual([waiting]);
    // Their rows cascade with them.
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id IN ($1, $2)`, [done, failed])).toEqual([{ n: 0 }]);
    // However old, a running instance stays.
    expect(await prune(new Date(t0.getTime() + 1000 * DAY))).toBe(0);
    expect(await ids()).toEqual([waiting]);
  });

  it('keeps only the newest `keep` terminal instances, at most `batch` deleted per pass', async () => {
    await t.query('DELETE FROM df.instances');
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push(await start(t, `'SELECT ${i}'`));
    await engineFor(t).drain();
    // Completed a minute apart, made[0] the oldest.
    for (const [i, id] of made.entries()) await t.query(`UPDATE df.instances SET completed_at = $2 WHERE id = $1`, [id, new Date(Date.UTC(2030, 0, 1, 0, i))]);
    const now = new Date(Date.UTC(2030, 0, 2));
    const prune = (keep: number, batch: number) => withClient((c) => pruneHistory(c, { retentionDays: null, keep, batch, now }));
    expect(await prune(2, 2)).toBe(2);
    expect(await ids()).toEqual(made.slice(2).sort());
    expect(await prune(2, 2)).toBe(1);
    expect(await ids()).toEqual(made.slice(3).sort());
    expect(await prune(2, 2)).toBe(0);
  });

  it('a second prune while one is running skips (null) instead of waiting; the first then finishes', async () => {
    await t.query('DELETE FROM df.instances');
    const old = await start(t, `'SELECT 1'`);
    await engineFor(t).drain();
    await t.query(`UPDATE df.instances SET completed_at = now() - interval '400 days' WHERE id = $1`, [old]);

    // A reader holds the doomed row: the first prune takes the prune lock, then waits on that row.
    const holder = await session(t.url(), 'maint-holder');
    const first = await session(t.url(), 'maint-first');
    const second = await session(t.url(), 'maint-second');
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM df.instances WHERE id = $1 FOR UPDATE', [old]);
      const running = pruneHistory(first, { retentionDays: null, keep: 10_000, batch: 100 });
      await waitUntilBlocked(t.superuser, 'maint-first');
      const [lock] = await t.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted
                                      AND ((classid::bigint << 32) | objid::bigint) = $1::bigint`, [PRUNE_LOCK_KEY]);
      expect(lock.n).toBe(1);

      expect(await pruneHistory(second, { retentionDays: null, keep: 10_000, batch: 100 })).toBeNull();
      expect(await ids()).toEqual([old]);

      await holder.query('ROLLBACK');
      expect(await running).toBe(1);
      expect(await ids()).toEqual([]);
      // The lock went with the first prune's transaction.
      expect(await pruneHistory(second, { retentionDays: null, keep: 10_000, batch: 100 })).toBe(0);
    } finally {
      await Promise.all([holder.end(), first.end(), second.end()]);
    }
  });

  it('keep and retention together: the later of the two bounds wins, ties on the finish time go by id', async () => {
    await t.query('DELETE FROM df.instances');
    const made: string[] = [];
    for (let i = 0; i < 6; i++) made.push(await start(t, `'SELECT ${i}'`));
    await engineFor(t).drain();
    // Two pairs finished at the same instants, then two a day apart; sorted by (finish time, id).
    const at = (d: number) => new Date(Date.UTC(2030, 0, 1 + d));
    const when = [at(0), at(0), at(10), at(10), at(20), at(30)];
    for (const [i, id] of made.entries()) await t.query('UPDATE df.instances SET completed_at = $2 WHERE id = $1', [id, when[i]]);
    const order = (await t.query<{ id: string }>('SELECT id FROM df.instances ORDER BY completed_at, id')).map((r) => r.id);
    const now = at(40);
    const prune = (keep: number, retentionDays: number | null) => withClient((c) => pruneHistory(c, { retentionDays, keep, batch: 100, now }));
    // Retention (25 days: before day 15) would take 4; keep 3 takes only the oldest 3, one of a tie.
    expect(await prune(3, 1000)).toBe(3);
    expect(await ids()).toEqual(order.slice(3).sort());
    // Retention now reaches further than keep = 1000 does.
    expect(await prune(1000, 25)).toBe(1);
    expect(await ids()).toEqual(order.slice(4).sort());
    // keep = 0 keeps nothing, however new.
    expect(await prune(0, 1000)).toBe(2);
    expect(await ids()).toEqual([]);
  });
});

describe('pruneHistoryBatches', () => {
  /** The test database's client, recording every statement sent. */
  const recording = <T>(fn: (c: DbClient, sent: string[]) => Promise<T>) =>
    withClient((c) => {
      const sent: string[] = [];
      const rec: DbClient = { query: (text: string, values?: unknown[]) => (sent.push(text.trim().split(/\s+/)[0]!), c.query(text, values as never)) } as DbClient;
      return fn(rec, sent);
    });

  it('deletes in transactions of at most `batch` until one comes back short, or stops at maxBatches', async () => {
    await t.query('DELETE FROM df.instances');
    for (let i = 0; i < 5; i++) await start(t, `'SELECT ${i}'`);
    const live = await start(t, `df.sleep(600)`);
    await engineFor(t).drain();
    await t.query(`UPDATE df.instances SET completed_at = now() - interval '400 days' WHERE status = 'completed'`);

    const capped = await recording((c, sent) => pruneHistoryBatches(c, { retentionDays: null, keep: 0, batch: 2, maxBatches: 2 }).then((r) => ({ r, sent })));
    expect(capped.r).toEqual({ deleted: 4, batches: 2, skipped: false });
    expect(capped.sent.filter((s) => s === 'BEGIN')).toHaveLength(2);
    expect(capped.sent.filter((s) => s === 'COMMIT')).toHaveLength(2);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE status = 'completed'`)).toEqual([{ n: 1 }]);

    // The rest: one short batch ends the run. The running instance stays.
    const rest = await recording((c, sent) => pruneHistoryBatches(c, { retentionDays: null, keep: 0, batch: 2 }).then((r) => ({ r, sent })));
    expect(rest.r).toEqual({ deleted: 1, batches: 1, skipped: false });
    expect(rest.sent.filter((s) => s === 'COMMIT')).toHaveLength(1);
    expect(await ids()).toEqual([live]);
  });

  it('stops when stop() says so, and reports a skip when another prune holds the lock', async () => {
    await t.query('DELETE FROM df.instances');
    for (let i = 0; i < 3; i++) await start(t, `'SELECT ${i}'`);
    await engineFor(t).drain();
    await t.query(`UPDATE df.instances SET completed_at = now() - interval '400 days'`);
    let batches = 0;
    const stopped = await withClient((c) => pruneHistoryBatches(c, { retentionDays: null, keep: 0, batch: 1, stop: () => batches++ >= 1 }));
    expect(stopped).toEqual({ deleted: 1, batches: 1, skipped: false });

    const holder = await session(t.url(), 'maint-lock-holder');
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(${PRUNE_LOCK_KEY})`);
      expect(await withClient((c) => pruneHistoryBatches(c, { retentionDays: null, keep: 0, batch: 1 }))).toEqual({ deleted: 0, batches: 0, skipped: true });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await withClient((c) => pruneHistoryBatches(c, { retentionDays: null, keep: 0, batch: 1 }))).toEqual({ deleted: 2, batches: 3, skipped: false });
  });
});

