/**
 * The timer leaves, SLEEP and WAIT_SCHEDULE. Their waiting is their row's run_at (set when they were
 * activated); claimed when it is due, they only complete, with pg_durable's result text.
 */
import type { Outcome } from '../../graph/changes.ts';
import { parseNodeConfig } from '../../graph/schema.ts';
import type { ClaimedRow } from '../queries/claim.ts';

/** The outcome of a due SLEEP or WAIT_SCHEDULE row. */
export function timerOutcome(row: ClaimedRow): Outcome {
  if (row.node_type === 'WAIT_SCHEDULE') return { kind: 'ok', text: '{"scheduled":true}' };
  const cfg = parseNodeConfig({ node_type: 'SLEEP', query: row.query });
  const seconds = cfg.node_type === 'SLEEP' ? cfg.seconds : 0;
  return { kind: 'ok', text: `{"slept":true,"seconds":${seconds}}` };
}
