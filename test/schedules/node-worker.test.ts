/**
 * The Node worker fires due schedules from its own timer and runs what they start. Two workers race on
 * the same schedules: exactly one instance per schedule and due time.
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

/** The real workers' progress: polled on the server, bounded (test/helpers/until.ts). */
const until = (sql: string) => serverUntil(t.query, sql, 1500, 0.02);

it('two Node workers fire 20 due schedules once each and run the instances', async () => {
  await t.query('CREATE TABLE hits (label text)');
  await t.query(`SELECT df.define_workflow('tick', 'INSERT INTO hits VALUES (''{sys_label}'')')`);
  await t.query(`SELECT df.create_schedule('node' || i, 'tick', '* * * * *') FROM generate_series(1, 20) i`);
  // Due at the start of this minute: less than the grace late, so policy 'skip' fires it.
  await t.query(`UPDATE df.schedules SET next_fire_at = date_trunc('minute', now())`);
  for (let i = 0; i < 2; i++) {
    workers.push(await startNodeWorker({ connectionString: t.url(), concurrency: 2, scheduleIntervalMs: 10, pollIntervalMs: 50, pruneIntervalMs: 0 }));
  }
  await until(`(SELECT count(DISTINCT label) FROM hits) = 20`);
  await until(`NOT EXISTS (SELECT 1 FROM df.instances WHERE status NOT IN ('completed', 'failed'))`);
  for (const w of workers.splice(0)) await w.stop();
  // Per schedule: one instance and one effect per recorded fire (the next minute may have begun on a
  // slow machine, so a schedule may have fired twice, for two due times).
  const rows = await t.query(`
    SELECT s.name,
           (SELECT count(*)::int FROM df.schedule_fires f WHERE f.schedule_id = s.id AND f.outcome = 'started') AS fires,
           (SELECT count(*)::int FROM df.instances i WHERE i.label = s.name) AS instances,
           (SELECT count(*)::int FROM df.instances i WHERE i.label = s.name AND i.status = 'completed') AS completed,
           (SELECT count(*)::int FROM hits h WHERE h.label = s.name) AS hits
      FROM df.schedules s ORDER BY s.name`);
  expect(rows).toHaveLength(20);
  for (const r of rows) {
    expect(r.fires, r.name).toBeGreaterThanOrEqual(1);
    expect(r).toEqual({ name: r.name, fires: r.fires, instances: r.fires, completed: r.fires, hits: r.fires });
  }
}, 60_000);
