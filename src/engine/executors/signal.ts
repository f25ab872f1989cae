/**
 * The SIGNAL leaf (df.wait_for_signal). Its row is queued for its deadline, and df.signal makes it due
 * at once; claimed, it looks for a signal sent after it began waiting (state.after_signal_id). Found:
 * it completes with the payload; past the deadline: it completes as timed out; woken by another wait's
 * signal: it is parked again.
 */
import type { DbClient } from '../db.ts';
import type { Outcome } from '../../graph/changes.ts';
import { parseNodeConfig } from '../../graph/schema.ts';
import { findSignal, type ClaimedRow } from '../queries/claim.ts';
import { parkSignalWait } from '../queries/steps.ts';

/** The outcome of a claimed SIGNAL row, or null when it was parked again (nothing to checkpoint). */
export async function signalOutcome(client: DbClient, row: ClaimedRow, now: Date): Promise<Outcome | null> {
  const cfg = parseNodeConfig({ node_type: 'SIGNAL', query: row.query });
  if (cfg.node_type !== 'SIGNAL') throw new Error('unreachable');
  const name = cfg.config.signal_name;
  const floor = Number((row.state ?? {}).after_signal_id ?? 0);
  const payload = await findSignal(client, row.instance_id, name, floor);
  if (payload !== undefined) {
    return { kind: 'ok', text: `{"signal_name":${JSON.stringify(name)},"timed_out":false,"data":${payload ?? 'null'}}` };
  }
  const deadline = (row.state ?? {}).deadline;
  if (typeof deadline === 'string' && Date.parse(deadline) <= now.getTime()) {
    return { kind: 'ok', text: `{"signal_name":${JSON.stringify(name)},"timed_out":true,"data":null}` };
  }
  // Woken without a signal for it (another wait's signal): park again until the deadline or a signal.
  await parkSignalWait(client, row, typeof deadline === 'string' ? deadline : null);
  return null;
}
