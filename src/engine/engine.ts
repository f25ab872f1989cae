/**
 * The engine core: claim one ready df.nodes row, run it, checkpoint, report what became ready.
 * Runtime-agnostic: it sees the database through the Db port, time through `now`, and hands newly
 * ready nodes to a Dispatcher after commit (a Queue on Workers, the local loop on Node).
 *
 * Two paths (DESIGN 5):
 *  - transactional: claim, the user's SQL, the checkpoint and the successors' activation commit in one
 *    transaction, so a step's effects happen exactly once (step.ts, run-claimed.ts, batch.ts);
 *  - lease: HTTP and statements that cannot run in a transaction block first commit a lease, run
 *    outside any transaction, then checkpoint if the lease is still theirs (lease.ts). At-least-once;
 *    HTTP carries a stable Idempotency-Key.
 *
 * This file holds the loops around them: runOnce (one claim), runSeries (claims one after another on one
 * session, each COMMIT also claiming the next rows) and drain. The state they share is an EngineContext
 * (context.ts) made here once.
 */
import type { ClaimedRow, PreparedClaim } from './queries/claim.ts';
import { prepareClaim } from './queries/claim.ts';
import { BatchSizer } from './batch.ts';
import { createContext, roleOf, type EngineContext } from './context.ts';
import { runLeased } from './lease.ts';
import { observe } from './observe.ts';
import { stepOn } from './step.ts';
import type { Ahead } from './tx.ts';
import type { Engine, EngineOptions, RunResult, SeriesOptions } from './types.ts';

export type {
  Dispatcher,
  Engine,
  EngineOptions,
  HttpRunner,
  HttpStep,
  MetricsPort,
  ReadyNode,
  RunKind,
  RunResult,
  SeriesOptions,
} from './types.ts';

export function createEngine(options: EngineOptions): Engine {
  const ctx = createContext(options);
  return {
    runOnce: (opts) => runOnce(ctx, opts),
    runSeries: (opts) => runSeries(ctx, opts),
    drain: (opts) => drain(ctx, opts),
    stats: () => ({ ...ctx.counts, cachedGraphs: ctx.graphs.size, vacuums: ctx.queueVacuum.stats().vacuums }),
    settled: () => ctx.queueVacuum.settled(),
  };
}

async function runOnce(ctx: EngineContext, opts: { now?: Date; target?: { instanceId: string; nodeId: string } } = {}): Promise<RunResult | null> {
  const now = opts.now ?? new Date();
  const t0 = Date.now();
  const out = await ctx.db.withClient((client) => stepOn(ctx, client, now, opts.target, undefined, null));
  const result = out.lease ? await runLeased(ctx, out.lease, now) : (out.results[0] ?? null);
  if (result) {
    ctx.queueVacuum.stepDone();
    observe(ctx, result, t0, now);
  }
  return result;
}

async function runSeries(ctx: EngineContext, opts: SeriesOptions = {}): Promise<number> {
  const max = opts.maxSteps ?? Number.POSITIVE_INFINITY;
  let n = 0;
  const sizer = new BatchSizer(ctx.batchMax, ctx.options.batchBudgetMs);
  sizer.size = Math.min(ctx.batchCarry, ctx.batchMax);
  const more = () => n < max && (opts.more?.() ?? true);
  const ran = (r: RunResult, t0: number, now: Date) => {
    n++;
    ctx.queueVacuum.stepDone();
    observe(ctx, r, t0, now);
    opts.onResult?.(r);
  };
  while (more()) {
    let lease: { row: ClaimedRow; now: Date; t0: number } | null = null;
    const idle = await ctx.db.withClient(async (client) => {
      let next: ClaimedRow[] | undefined;
      // The claim is prepared on this session (only right after an idle wait: see prepareClaim).
      let prepared: PreparedClaim = false;
      // Whether a row can join a batch depends on its owner being the worker's role.
      if (ctx.batchMax > 1) await roleOf(ctx, client);
      try {
        while (more()) {
          const now = opts.now ?? new Date();
          const t0 = Date.now();
          // The next claim rides on this step's COMMIT unless this is the last step allowed.
          const ahead: Ahead = (inflight) => {
            const left = max - n - inflight;
            return left > 0 ? { at: opts.now ?? new Date(), limit: Math.min(sizer.size, left) } : null;
          };
          const pending = next;
          next = undefined;
          if (pending === undefined) sizer.size = Math.min(sizer.size, Math.max(1, max - n));
          const out = await stepOn(ctx, client, now, undefined, pending, ahead, prepared, sizer);
          // A SQL step's session restore deallocates it.
          if (out.claimed) prepared = false;
          next = out.next;
          if (out.lease) {
            lease = { row: out.lease, now, t0 };
            return false;
          }
          if (!out.claimed) {
            // After a wait the queue was empty: the claim a wake-up sends takes one row (prepared).
            sizer.size = 1;
            if (!opts.idle) return true;
            // Behind a transaction-mode pooler the next transaction may get another server session.
            if (!prepared && !ctx.options.pooled) prepared = await prepareClaim(client);
            if (await opts.idle()) continue;
            return true;
          }
          for (const r of out.results) ran(r, t0, now);
        }
        return false;
      } finally {
        // Stopped with a row claimed ahead: give it back (nothing was written in its transaction).
        if (next !== undefined) await client.query('ROLLBACK').catch(() => undefined);
      }
    });
    if (lease) {
      const l: { row: ClaimedRow; now: Date; t0: number } = lease;
      ran(await runLeased(ctx, l.row, l.now), l.t0, l.now);
      continue;
    }
    if (idle) break;
  }
  ctx.batchCarry = sizer.size;
  return n;
}

async function drain(ctx: EngineContext, opts: { concurrency?: number; now?: Date; maxSteps?: number } = {}): Promise<number> {
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const max = opts.maxSteps ?? Number.POSITIVE_INFINITY;
  let count = 0;
  // A series ends when its claim finds nothing; while another series still runs it waits, as the Node
  // worker's idle loops do: woken when a step made rows of its instance ready (a JOIN's activation readies
  // all its branches at once), else polling (5 ms, doubling to 100 ms) for rows made ready elsewhere (a
  // step that starts instances). The drain ends when every series has found nothing.
  let running = concurrency;
  const waiting: ((again: boolean) => void)[] = [];
  const wake = (again: boolean) => {
    for (const w of waiting.splice(0)) w(again);
  };
  const loop = async () => {
    let delay = 5;
    for (;;) {
      const before = count;
      await runSeries(ctx, {
        now: opts.now,
        more: () => count < max,
        onResult: (r) => {
          count++;
          if (r.ready.length && waiting.length) {
            running += waiting.length;
            wake(true);
          }
        },
      });
      if (count > before) delay = 5;
      running--;
      if (count >= max || running === 0) return wake(false);
      const again = await new Promise<boolean>((resolve) => {
        let settled = false;
        const settle = (v: boolean) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const i = waiting.indexOf(settle);
          if (i >= 0) waiting.splice(i, 1);
          resolve(v);
        };
        const timer = setTimeout(() => {
          running++;
          settle(true);
        }, delay);
        waiting.push(settle);
      });
      if (!again) return;
      delay = Math.min(delay * 2, 100);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return count;
}
