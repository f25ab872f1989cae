/**
 * GET /healthz: the database answers, and a worker has been seen recently (the newest heartbeat in
 * df._worker_epoch: the Node worker's every few seconds, the Workers cron's once a minute). With
 * `maxAgeS` set, no heartbeat within it is a 503: the API would accept starts that nothing runs.
 */
import type { Db } from '../engine/db.ts';
import type { Logger } from '../log.ts';
import { errorBody } from './errors.ts';

export interface WorkerSeen {
  seen: boolean;
  last_seen_at: string | null;
  age_s: number | null;
  max_age_s: number | null;
}

export interface Health {
  status: 200 | 503;
  body: Record<string, unknown>;
}

export async function healthCheck(db: Db, log: Logger | undefined, maxAgeS: number | undefined): Promise<Health> {
  let row: { last_seen_at: Date | null; age_s: number | null } | undefined;
  try {
    row = await db.withClient(
      async (client) =>
        (
          await client.query<{ last_seen_at: Date | null; age_s: number | null }>(
            `SELECT max(last_seen_at) AS last_seen_at, extract(epoch FROM now() - max(last_seen_at))::float8 AS age_s FROM df._worker_epoch`,
          )
        ).rows[0],
    );
  } catch (err) {
    log?.warn('healthz: database unreachable', { error: err });
    return { status: 503, body: errorBody('unavailable', 'database unreachable') };
  }
  const age = row?.age_s == null ? null : Math.max(0, Math.round(row.age_s));
  const limit = maxAgeS && maxAgeS > 0 ? maxAgeS : null;
  const seen = age !== null && (limit === null || age <= limit);
  const worker: WorkerSeen = { seen, last_seen_at: row?.last_seen_at ? new Date(row.last_seen_at).toISOString() : null, age_s: age, max_age_s: limit };
  if (limit !== null && !seen) return { status: 503, body: { ok: false, database: 'ok', worker } };
  return { status: 200, body: { ok: true, database: 'ok', worker } };
}
