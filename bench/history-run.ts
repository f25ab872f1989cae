/**
 * The `--history N` options of `npm run bench` (bench/run.ts) and their wiring to bench/history.ts,
 * kept here so run.ts only spreads the options in and calls runHistory.
 */
import type { BenchContext, Measurement } from './common.ts';
import type { EngineAvailability } from './engine.ts';
import { historyBench, historyTargets } from './history.ts';

export { historyTargets };

export const historyOptions = {
  history: { type: 'string' },
  'history-days': { type: 'string', default: '60' },
  'history-retention-days': { type: 'string', default: '30' },
  'history-rounds': { type: 'string' },
  'prune-segment': { type: 'string' },
  'prune-batch': { type: 'string', default: '1000' },
} as const;

export const HISTORY_HELP = `  --history N                also load N finished instances into a second database and compare (workload H):
                             W1 and the W2 drain with history vs the empty database, read latencies, steps during a prune
  --history-days D           days the history spans (default 60)
  --history-retention-days R the prune keeps R days (default 30: about half the history is pruned)
  --history-rounds K         alternating empty/history rounds of W1 and W2 (default 2; 1 with --quick)
  --prune-segment SECONDS    each of the 4 idle/pruning segments of the prune phase (default 15; 8 with --quick)
  --prune-batch B            instances per prune transaction (default 1000, the Node worker's)`;

export const HISTORY_TITLE = 'H — with N finished instances of history vs an empty schema, same server, alternating';

type Args = { [K in keyof typeof historyOptions]?: string } & { quick: boolean };

const int = (name: string, v: string | undefined, fallback: number): number => {
  const n = v === undefined ? fallback : Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number ≥ 0, got ${v}`);
  return n;
};

export async function runHistory(ctx: BenchContext, avail: EngineAvailability, owner: string, args: Args): Promise<Measurement[]> {
  const rows = int('history', args.history, 0);
  if (rows < 1) throw new Error('--only H needs --history N (N ≥ 1 finished instances to load)');
  ctx.log(`H: loading ${rows} finished instances …`);
  return historyBench(ctx, avail, owner, {
    rows,
    days: int('history-days', args['history-days'], 60),
    retentionDays: int('history-retention-days', args['history-retention-days'], 30),
    rounds: Math.max(1, int('history-rounds', args['history-rounds'], args.quick ? 1 : 2)),
    segmentSeconds: Math.max(1, int('prune-segment', args['prune-segment'], args.quick ? 8 : 15)),
    pruneBatch: Math.max(1, int('prune-batch', args['prune-batch'], 1000)),
  });
}
