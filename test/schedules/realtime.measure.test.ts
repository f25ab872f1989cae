// Manual measurement, skipped unless PGFLARE_MEASURE=1 (it takes 3.3 minutes of real time): the
// maintenance example on a * * * * * schedule, one Node worker. Prints the instances per minute.
//   PGFLARE_MEASURE=1 npx vitest run test/schedules/realtime.measure.test.ts
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { startNodeWorker } from '../../src/runtime/node/worker.ts';
import { useTestDb } from '../helpers/db.ts';
const t = useTestDb();
const example = (f: string) => readFileSync(new URL(`../../examples/maintenance/${f}`, import.meta.url), 'utf8');
it.skipIf(!process.env.PGFLARE_MEASURE)('the maintenance example every minute: one instance per minute', async () => {
  await t.query(example('setup.sql'));
  await t.query(example('workflow.sql'));
  await t.query(`SELECT df.create_schedule('nightly-maintenance', 'nightly-maintenance', '* * * * *', input => '{"keep_days": 7}')`);
  const w = await startNodeWorker({ connectionString: t.url(), concurrency: 2, pruneIntervalMs: 0 });
  await new Promise((r) => setTimeout(r, 200_000)); // real time on purpose: a measurement, not a test
  await w.stop();
  const rows = await t.query(`SELECT to_char(date_trunc('minute', i.created_at), 'HH24:MI') AS minute, count(*)::int AS n,
      string_agg(i.status, ',') AS statuses, max(extract(epoch FROM i.created_at - date_trunc('minute', i.created_at)))::float AS max_late_s
      FROM df.instances i WHERE i.label = 'nightly-maintenance' GROUP BY 1 ORDER BY 1`);
  console.log(JSON.stringify(rows));
  console.log(JSON.stringify(await t.query(`SELECT fire_at, outcome FROM df.schedule_history('nightly-maintenance') ORDER BY 1`)));
  expect(rows.every((r: { n: number }) => r.n === 1)).toBe(true);
}, 300_000);
