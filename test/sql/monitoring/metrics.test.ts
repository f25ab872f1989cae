/**
 * df.metrics()'s columns added by 0029: steps completed/failed/retried, schedule fires and webhook
 * deliveries over the last hour, the ready backlog and its oldest entry's age; the caller's rows only
 * (RLS); and the migration gives back the EXECUTE grants the function had.
 */
import { describe, expect, it } from 'vitest';
import { migrations } from '../../../src/migrate/generated/migrations.ts';
import { asRole, useTestDb } from '../../helpers/db.ts';
import { engineFor, start } from '../../helpers/engine.ts';

const t = useTestDb();
const metrics = async () => (await t.query(`SELECT * FROM df.metrics()`))[0];

describe('df.metrics() (0029)', () => {
  it('counts steps, failures, retries, fires, deliveries and the ready backlog', async () => {
    const before = await metrics();
    expect(before).toMatchObject({ steps_completed: 0, steps_failed: 0, steps_retried: 0, ready_backlog: 0, oldest_ready_age_seconds: 0 });
    expect(Object.keys(before).slice(0, 6)).toEqual(['total_instances', 'running_instances', 'completed_instances', 'failed_instances', 'total_executions', 'total_events']);

    await start(t, `'SELECT 1 AS a' ~> 'SELECT 2 AS b'`);
    await start(t, `'SELECT 1/0'`);
    await engineFor(t, { retry: { maxAttempts: 3, baseMs: 0, maxMs: 0, jitter: 0 } }).drain();
    // Older than the hour: outside the window.
    await t.query(`UPDATE df.events SET created_at = now() - interval '2 hours' WHERE kind = 'attempt_failed' AND attempt = 1`);

    await t.query(`SELECT df.define_workflow('m_tick', 'SELECT 1')`);
    await t.query(`SELECT df.create_schedule('m_tick', 'm_tick', '* * * * *')`);
    await t.query(`SELECT df.create_hook('m_hook', 'm_tick', 'hmac')`);
    const waiting = await start(t, `'SELECT 3'`);
    await t.query(`
      INSERT INTO df.schedule_fires (schedule_id, fire_at, fired_at, owner, outcome, instance_id)
      SELECT id, now() - interval '1 minute', now(), owner, 'started', $1 FROM df.schedules WHERE name = 'm_tick'
      UNION ALL SELECT id, now() - interval '2 minutes', now(), owner, 'failed', NULL FROM df.schedules WHERE name = 'm_tick'
      UNION ALL SELECT id, now() - interval '3 hours', now() - interval '3 hours', owner, 'started', NULL FROM df.schedules WHERE name = 'm_tick'`, [waiting]);
    await t.query(`INSERT INTO df.hook_deliveries (hook_id, delivery_id, instance_id) SELECT id, 'd1', $1 FROM df._hooks WHERE name = 'm_hook'`, [waiting]);
    await t.query(`UPDATE df.nodes SET run_at = now() - interval '45 seconds' WHERE instance_id = $1 AND run_at IS NOT NULL`, [waiting]);

    const m = await metrics();
    expect(m).toMatchObject({
      total_instances: 3,
      completed_instances: 1,
      failed_instances: 1,
      steps_completed: 2,
      steps_failed: 1,
      steps_retried: 1,
      ready_backlog: 1,
      schedules_fired: 1,
      schedule_fires_failed: 1,
      webhook_deliveries: 1,
    });
    expect(m.oldest_ready_age_seconds).toBeGreaterThanOrEqual(45);
    expect(m.oldest_ready_age_seconds).toBeLessThan(120);
    expect(Date.now() - new Date(m.window_start).getTime()).toBeGreaterThanOrEqual(3_600_000 - 5_000);
  });

  it("a granted role counts only its own rows, and the migration keeps the function's grants", async () => {
    const role = t.role('metrics_viewer');
    await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    await t.superuser.query(`GRANT ${role} TO ${(await t.query('SELECT current_user AS u'))[0].u}`);
    await t.query('SELECT df.grant_usage($1, with_grant => true)', [role]);
    const [mine] = await asRole(t, role, 'SELECT * FROM df.metrics()');
    expect(mine).toMatchObject({ total_instances: 0, steps_completed: 0, steps_failed: 0, ready_backlog: 0 });

    // 0029 again: the function is dropped and made again, with its grants given back.
    const m29 = migrations.find((m) => m.name.startsWith('0029'))!;
    await t.query(m29.sql);
    const [p] = await t.query(
      `SELECT has_function_privilege($1, 'df.metrics()', 'EXECUTE WITH GRANT OPTION') AS granted,
              has_function_privilege('public', 'df.metrics()', 'EXECUTE') AS public`,
      [role],
    );
    expect(p).toEqual({ granted: true, public: false });
  });
});
