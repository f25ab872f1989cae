import type { DbClient } from './db.ts';
import { dueRows } from './queries/claim.ts';

/**
 * The sweep's dispatch pass: hands every ready row due before `now + horizonMs` to `dispatch` again.
 * Messages are hints (a duplicate finds its row taken), so re-sending is harmless; this is what finds
 * instances started from plain SQL, lost messages and expired leases. The rest of the sweep (schema
 * check, heartbeat, prune) is in maintenance.ts, shared with the Node worker.
 */
export async function sweepDue(
  client: DbClient,
  dispatch: (ready: { instanceId: string; nodeId: string; runAt: Date }[]) => void | Promise<void>,
  opts: { now: Date; horizonMs: number; limit: number },
): Promise<number> {
  const rows = await dueRows(client, new Date(opts.now.getTime() + opts.horizonMs), opts.limit);
  if (rows.length) await dispatch(rows.map((r) => ({ instanceId: r.instance_id, nodeId: r.id, runAt: r.run_at })));
  return rows.length;
}
