/**
 * Following an instance from outside (`tail`, `start --wait`): each look reads df.status, then the
 * steps from df.instance_nodes, so a terminal status always comes with the node rows that led to it.
 */
import type { Client } from './db.ts';
import { EXIT } from './program.ts';

export interface StepRow {
  node_id: string;
  node_type: string;
  query: string | null;
  result_name: string | null;
  status: string;
  updated_at: Date;
}

export interface Snapshot {
  status: string;
  steps: StepRow[];
}

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** Leaf node types: the steps a progress count counts. */
const LEAVES = ['SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL'];

export function exitCodeOf(status: string): number {
  return status === 'completed' ? EXIT.ok : status === 'failed' ? EXIT.failed : status === 'cancelled' ? EXIT.cancelled : EXIT.error;
}

export async function snapshot(client: Client, id: string): Promise<Snapshot> {
  const s = await client.query<{ status: string | null }>('SELECT df.status($1) AS status', [id]);
  const status = s.rows[0]?.status;
  if (!status) throw new Error(`instance ${id} not found (or not visible to this role)`);
  const n = await client.query<StepRow>(
    `SELECT node_id, node_type, query, result_name, status, updated_at
       FROM df.instance_nodes($1) WHERE node_type = ANY($2::text[]) ORDER BY updated_at, node_id`,
    [id, LEAVES],
  );
  return { status, steps: n.rows };
}

/**
 * Looks every `intervalMs` until the instance ends or `timeoutMs` passes, handing each look to
 * `onSnapshot`. Returns the last status and whether the time-out ended it.
 */
export async function follow(
  client: Client,
  id: string,
  opts: { intervalMs: number; timeoutMs?: number; onSnapshot: (s: Snapshot) => void },
): Promise<{ status: string; timedOut: boolean }> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  for (;;) {
    const snap = await snapshot(client, id);
    opts.onSnapshot(snap);
    if (TERMINAL.has(snap.status)) return { status: snap.status, timedOut: false };
    const wait = Math.min(opts.intervalMs, deadline - Date.now());
    if (wait <= 0) return { status: snap.status, timedOut: true };
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** The instance's output and the duration of its current run, for the closing line. */
export async function outcome(client: Client, id: string): Promise<{ output: string | null; durationMs: number | null }> {
  const { rows } = await client.query<{ output: string | null; duration_ms: string | null }>(
    `SELECT i.output, (SELECT e.duration_ms FROM df.instance_executions($1, 1) e) AS duration_ms FROM df.instance_info($1) i`,
    [id],
  );
  const r = rows[0];
  return { output: r?.output ?? null, durationMs: r?.duration_ms == null ? null : Number(r.duration_ms) };
}
