import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { serverUntil } from '../helpers/until.ts';

const t = useTestDb();
const bin = join(import.meta.dirname, '../../bin/pgflare.mjs');
const children: ChildProcess[] = [];

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [bin, 'worker', '--concurrency', '8'], {
    env: { ...process.env, DATABASE_URL: t.url(), PGFLARE_POLL_INTERVAL_MS: '50', PGFLARE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** The worker processes' progress: polled on the server, bounded (test/helpers/until.ts). */
const until = (sql: string) => serverUntil(t.query, sql, 3000, 0.02);

it('kill -9 of the worker mid-run, then a restart: all 200 instances complete, every effect exactly once', async () => {
  await t.query('CREATE TABLE effects (instance int, step int)');
  await t.query(`
    SELECT df.start(format('INSERT INTO effects VALUES (%s, 1)', i) ~> 'SELECT pg_sleep(0.01)'
                    ~> format('INSERT INTO effects VALUES (%s, 2)', i) ~> format('INSERT INTO effects VALUES (%s, 3)', i))
      FROM generate_series(1, 200) i`);
  const first = startWorker();
  await until(`(SELECT count(*) FROM df.instances WHERE status = 'completed') >= 30`);
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const [mid] = await t.query(`SELECT count(*) FILTER (WHERE status = 'completed')::int AS done FROM df.instances`);
  expect(mid.done).toBeLessThan(200); // killed in the middle, not after the end

  const second = startWorker();
  await until(`(SELECT count(*) FROM df.instances WHERE status = 'completed') = 200`);
  second.kill('SIGTERM');
  await new Promise((r) => second.once('exit', r));

  const [counts] = await t.query(`
    SELECT count(*)::int AS rows, count(DISTINCT (instance, step))::int AS distinct_rows FROM effects`);
  expect(counts).toEqual({ rows: 600, distinct_rows: 600 });
  expect(second.exitCode).toBe(0);
}, 120_000);
