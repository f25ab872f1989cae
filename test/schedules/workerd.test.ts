/**
 * The Workers cron handler fires due schedules and dispatches what they start, in real workerd.
 */
import { expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { pump, useWorkerd } from '../workerd/harness.ts';

const t = useTestDb();
const w = useWorkerd(t);

it('scheduled() fires a due schedule once, even from two overlapping sweeps, and its instance runs through the queue', async () => {
  await t.query('CREATE TABLE hits (label text)');
  await t.query(`SELECT df.define_workflow('tick', 'INSERT INTO hits VALUES (''{sys_label}'')')`);
  await t.query(`SELECT df.create_schedule('cf', 'tick', '*/5 * * * *', 'Europe/Berlin')`);
  await t.query(`UPDATE df.schedules SET next_fire_at = now() - interval '1 second'`);
  await w.sent(); // clear

  const [a, b] = await Promise.all([w.cron(), w.cron()]);
  expect([a.outcome, b.outcome]).toEqual(['ok', 'ok']);

  const instances = await t.query<{ id: string }>(`SELECT id FROM df.instances WHERE label = 'cf'`);
  expect(instances).toHaveLength(1);
  const sent = (await w.sent()).filter((m) => m.body.instanceId === instances[0].id);
  expect(sent.length).toBeGreaterThanOrEqual(1); // each sweep's dispatch pass may hint it
  await w.deliver([sent[0].body]);
  await pump(w);
  expect((await outcome(t, instances[0].id)).status).toBe('completed');
  expect(await t.query(`SELECT label FROM hits`)).toEqual([{ label: 'cf' }]);

  const [s] = await t.query(`SELECT last_instance_id, last_instance_status, next_fire_at > now() AS future FROM df.list_schedules()`);
  expect(s).toEqual({ last_instance_id: instances[0].id, last_instance_status: 'completed', future: true });
}, 60_000);
