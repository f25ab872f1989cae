/**
 * The Node worker's loops wait for work on the sessions they claim on. A session can be lost while it
 * waits (a server restart, pg_terminate_backend, idle_session_timeout): the worker must carry on.
 */
import { afterAll, expect, it } from 'vitest';
import { startNodeWorker, type NodeWorker } from '../../src/runtime/node/worker.ts';
import { useTestDb } from '../helpers/db.ts';
import { serverUntil } from '../helpers/until.ts';

const t = useTestDb();
const workers: NodeWorker[] = [];

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
});

/** The real worker's progress: polled on the server, bounded (test/helpers/until.ts). */
const until = (sql: string) => serverUntil(t.query, sql, 1500, 0.02);

const LOOP_SESSIONS = `(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgflare:worker' AND state = 'idle')`;

it('an idle worker whose sessions are terminated runs the next instance on new ones', async () => {
  await t.query('CREATE TABLE hits (n int, pid int)');
  const w = await startNodeWorker({ connectionString: t.url(), concurrency: 2, pollIntervalMs: 50, scheduleIntervalMs: 0, pruneIntervalMs: 0 });
  workers.push(w);
  await t.query(`SELECT df.start('INSERT INTO hits VALUES (1, pg_backend_pid())')`);
  await until(`(SELECT count(*) FROM hits) = 1`);
  // Both loops are now waiting on their sessions.
  await until(`${LOOP_SESSIONS} >= 2`);
  const before = await t.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgflare:worker'`);
  const killed = await t.superuser.query(
    `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'pgflare:worker') k`,
  );
  expect(killed.rows[0].n).toBeGreaterThanOrEqual(2);

  await t.query(`SELECT df.start('INSERT INTO hits VALUES (2, pg_backend_pid())')`);
  await until(`(SELECT count(*) FROM hits WHERE n = 2) = 1`);
  const [second] = await t.query(`SELECT pid FROM hits WHERE n = 2`);
  expect(before.map((r) => r.pid)).not.toContain(second.pid);
  expect(await t.query(`SELECT status FROM df.instances ORDER BY created_at`)).toEqual([{ status: 'completed' }, { status: 'completed' }]);
  await w.stop();
}, 60_000);

it('the retention pass at start deletes a backlog of more than one batch, in batches of 1000, before the next interval', async () => {
  await t.query('DELETE FROM df.instances');
  // 2,500 finished instances 40 days old (past the 30-day retention) and one that is not due.
  await t.query(`SELECT df.start('SELECT 1') FROM generate_series(1, 2501)`);
  await t.query(`UPDATE df.nodes SET run_at = NULL, status = 'completed'`);
  await t.query(`UPDATE df.instances SET status = 'completed', completed_at = now() - interval '40 days'`);
  await t.query(`UPDATE df.instances SET completed_at = now() WHERE id = (SELECT min(id) FROM df.instances)`);
  const logged: Record<string, unknown>[] = [];
  const log = { debug() {}, info: (msg: string, f?: Record<string, unknown>) => void (msg === 'pruned history' && logged.push(f ?? {})), warn() {}, error() {}, child() { return log; } };
  const w = await startNodeWorker({ connectionString: t.url(), concurrency: 1, scheduleIntervalMs: 0, pruneIntervalMs: 3_600_000, log: log as never });
  workers.push(w);
  await until(`(SELECT count(*) FROM df.instances) = 1`);
  await w.stop();
  expect(logged).toEqual([{ instances: 2500, batches: 3 }]);
}, 60_000);
