/**
 * Firing cron schedules (df.schedules, migration 0012), shared by the Node worker's timer and the Workers
 * cron sweep. One schedule per transaction:
 *
 *   claim      the most overdue unpaused schedule with next_fire_at <= now, FOR UPDATE SKIP LOCKED
 *              (two sweepers never hold the same schedule; the second skips it)
 *   plan       df._schedule_plan: the oldest due time at most `graceMs` old (fired on time, one per pass
 *              iteration), else the latest due time <= now (an outage) and the first fire time after now
 *   decide     missed: after an outage, policy 'skip' records the latest due time as `missed`, and
 *              'catch_up_once' starts one instance for it (earlier due times of the outage are dropped);
 *              overlap 'skip': while the last instance is pending/running, record `skipped_overlap`
 *   record     INSERT the df.schedule_fires row; its primary key (schedule_id, fire_at) is the double-fire
 *              guard: ON CONFLICT DO NOTHING means this due time was already handled, so nothing starts
 *   start      df.start_workflow as the schedule's owner (SET LOCAL ROLE when the owner is another role
 *              the worker is a member of) in the same transaction as the fire row, under a savepoint: a
 *              failed start is recorded (`failed`, last_error) and the schedule moves on
 *   advance    next_fire_at = the first fire time after now
 *
 * Nothing here waits on a clock: `now` is the caller's (the worker's clock, as for claims).
 */
import type { DbClient } from './db.ts';
import { inTransaction } from './db.ts';
import { silentLogger, type Logger } from '../log.ts';

/** A due time seen later than this counts as missed (policy 'skip'). Covers a late or skipped sweep tick. */
export const DEFAULT_SCHEDULE_GRACE_MS = 5 * 60_000;
/** Fire rows kept per schedule (the newest); older ones are deleted as new ones are written. */
export const FIRE_HISTORY_KEEP = 100;

export type FireOutcome = 'started' | 'skipped_overlap' | 'missed' | 'failed' | 'duplicate';

export interface ScheduleFire {
  scheduleId: string;
  schedule: string;
  owner: string;
  fireAt: Date;
  outcome: FireOutcome;
  instanceId: string | null;
  error: string | null;
  nextFireAt: Date | null;
}

export interface FireOptions {
  /** The sweeper's clock (default: new Date()). */
  now?: Date;
  /** At most this many schedules per call (default 100). */
  limit?: number;
  graceMs?: number;
  log?: Logger;
}

interface Claimed {
  id: string;
  name: string;
  owner_name: string | null;
  workflow: string;
  cron: string;
  timezone: string;
  input: string | null;
  missed: 'skip' | 'catch_up_once';
  overlap: 'skip' | 'allow';
  next_fire_at: Date;
  last_status: string | null;
  is_self: boolean;
  may_act: boolean;
}

const CLAIM = `
  SELECT s.id::text AS id, s.name, r.rolname::text AS owner_name, s.workflow, s.cron, s.timezone,
         s.input::text AS input, s.missed, s.overlap, s.next_fire_at,
         (SELECT i.status FROM df.instances i WHERE i.id = s.last_instance_id) AS last_status,
         coalesce(r.rolname = current_user, false) AS is_self,
         CASE WHEN r.oid IS NULL THEN false ELSE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') END AS may_act
    FROM df.schedules s
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.owner::oid
   WHERE NOT s.paused AND s.next_fire_at IS NOT NULL AND s.next_fire_at <= $1
     AND NOT (s.id = ANY ($2::bigint[]))
   ORDER BY s.next_fire_at, s.id
   LIMIT 1
     FOR UPDATE OF s SKIP LOCKED`;

/**
 * Fires every due schedule (at most `limit`), one transaction each, on one session. Never throws for
 * one schedule's sake: an unexpected error is logged, written to that schedule's last_error, and the
 * pass goes on with the others. Returns what happened, in order.
 */
export async function fireDueSchedules(client: DbClient, opts: FireOptions = {}): Promise<ScheduleFire[]> {
  const now = opts.now ?? new Date();
  const limit = opts.limit ?? 100;
  const graceMs = opts.graceMs ?? DEFAULT_SCHEDULE_GRACE_MS;
  const log = opts.log ?? silentLogger;
  const out: ScheduleFire[] = [];
  const failed: string[] = [];
  while (out.length + failed.length < limit) {
    let claimedId: string | null = null;
    let fire: ScheduleFire | null;
    try {
      fire = await inTransaction(client, async (c) => {
        const { rows } = await c.query<Claimed>(CLAIM, [now, failed]);
        const s = rows[0];
        if (!s) return null;
        claimedId = s.id;
        return fireOne(c, s, now, graceMs);
      });
    } catch (err) {
      if (claimedId === null) throw err; // the claim itself failed: the database is the problem, not a schedule
      failed.push(claimedId);
      const message = (err as Error).message ?? String(err);
      log.error('schedule: firing failed; recorded on the schedule, retried in a minute', { schedule: claimedId, error: err });
      // Retried a minute later (not every pass), until someone fixes or drops it.
      await client
        .query(`UPDATE df.schedules SET last_error = $2, last_error_at = now(), next_fire_at = $3::timestamptz + interval '1 minute' WHERE id = $1`, [
          claimedId,
          message,
          now,
        ])
        .catch(() => undefined);
      continue;
    }
    if (!fire) break;
    out.push(fire);
    if (fire.outcome === 'failed') log.warn('schedule: start failed', { schedule: fire.schedule, owner: fire.owner, error: fire.error });
    else log.debug('schedule: fired', { schedule: fire.schedule, outcome: fire.outcome, instance: fire.instanceId });
  }
  return out;
}

async function fireOne(c: DbClient, s: Claimed, now: Date, graceMs: number): Promise<ScheduleFire> {
  const { rows: plan } = await c.query<{ on_time_at: Date | null; after_on_time: Date | null; due_at: Date; next_at: Date | null }>(
    'SELECT on_time_at, after_on_time, due_at, next_at FROM df._schedule_plan($1, $2, $3, $4, make_interval(secs => $5::float8 / 1000))',
    [s.cron, s.timezone, s.next_fire_at, now, graceMs],
  );
  const p = plan[0];
  // Every due time within the grace fires, oldest first (the pass claims the schedule again while it
  // is still due). When all are older: 'catch_up_once' starts one instance for the latest, 'skip'
  // records the latest as missed; the earlier ones of the outage are dropped either way.
  const dueAt = p.on_time_at ?? p.due_at;
  const nextAt = p.on_time_at ? p.after_on_time : p.next_at;
  let outcome: FireOutcome =
    !p.on_time_at && s.missed === 'skip'
      ? 'missed'
      : s.overlap === 'skip' && (s.last_status === 'pending' || s.last_status === 'running')
        ? 'skipped_overlap'
        : 'started';
  const fire: ScheduleFire = {
    scheduleId: s.id,
    schedule: s.name,
    owner: s.owner_name ?? '?',
    fireAt: dueAt,
    outcome,
    instanceId: null,
    error: null,
    nextFireAt: nextAt,
  };

  const { rowCount } = await c.query(
    `INSERT INTO df.schedule_fires (schedule_id, fire_at, owner, outcome)
     SELECT s.id, $2, s.owner, $3 FROM df.schedules s WHERE s.id = $1
     ON CONFLICT (schedule_id, fire_at) DO NOTHING`,
    [s.id, dueAt, outcome],
  );
  if (!rowCount) {
    // Someone already handled this due time: start nothing, only move on.
    fire.outcome = 'duplicate';
    await c.query('UPDATE df.schedules SET next_fire_at = $2 WHERE id = $1', [s.id, nextAt]);
    return fire;
  }

  if (outcome === 'started') {
    await c.query('SAVEPOINT pgflare_schedule');
    try {
      if (!s.is_self) {
        if (!s.owner_name) throw new Error('the schedule\'s owner role no longer exists');
        if (!s.may_act) {
          throw new Error(
            `the worker's role may not act as the schedule's owner "${s.owner_name}" (GRANT "${s.owner_name}" TO the worker's role, or recreate the schedule as the worker's role)`,
          );
        }
        await c.query("SELECT pg_catalog.set_config('role', $1, true)", [s.owner_name]);
      }
      const { rows } = await c.query<{ id: string }>('SELECT df.start_workflow($1, $2::jsonb, $3) AS id', [s.workflow, s.input, s.name]);
      fire.instanceId = rows[0].id;
      if (!s.is_self) await c.query("SELECT pg_catalog.set_config('role', 'none', true)");
      await c.query('RELEASE SAVEPOINT pgflare_schedule');
    } catch (err) {
      // Rolls back the start and the role switch; the fire row (outside the savepoint) stays.
      await c.query('ROLLBACK TO SAVEPOINT pgflare_schedule');
      await c.query('RELEASE SAVEPOINT pgflare_schedule');
      outcome = fire.outcome = 'failed';
      fire.error = (err as Error).message ?? String(err);
    }
  }

  const started = outcome === 'started';
  await c.query(
    `WITH f AS (
       UPDATE df.schedule_fires SET outcome = $3, instance_id = $4, error = $5 WHERE schedule_id = $1 AND fire_at = $2
     )
     UPDATE df.schedules
        SET next_fire_at = $6,
            last_fire_at = CASE WHEN $7 THEN $2 ELSE last_fire_at END,
            last_instance_id = CASE WHEN $7 THEN $4 ELSE last_instance_id END,
            last_error = CASE WHEN $5::text IS NOT NULL THEN $5 WHEN $7 THEN NULL ELSE last_error END,
            last_error_at = CASE WHEN $5::text IS NOT NULL THEN now() WHEN $7 THEN NULL ELSE last_error_at END
      WHERE id = $1`,
    [s.id, dueAt, outcome, fire.instanceId, fire.error, nextAt, started],
  );
  await c.query(
    `DELETE FROM df.schedule_fires f
      WHERE f.schedule_id = $1
        AND f.fire_at < (SELECT k.fire_at FROM df.schedule_fires k WHERE k.schedule_id = $1
                          ORDER BY k.fire_at DESC OFFSET $2 LIMIT 1)`,
    [s.id, FIRE_HISTORY_KEEP - 1],
  );
  return fire;
}
