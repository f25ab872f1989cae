/**
 * One named step in a Worker invocation, and, when the deployment allows it (PGFLARE_CHAIN_STEPS > 1),
 * the chain after it: when a step's checkpoint makes exactly one node ready and it is due now, its queue
 * message is not sent and the same invocation claims and runs it next, on the same session, until the
 * step count or the time budget (PGFLARE_CHAIN_MS) is spent. Anything else (several ready nodes, a timer,
 * the budget spent) is sent as messages, as with one step per invocation.
 *
 * The rows stay the only truth: a held node is committed ready before it is held, so an invocation that
 * dies holding it leaves a ready row without a message, which the cron sweep re-sends within a minute
 * (the same as a lost message); its claim is df._claim's like any other, so a duplicate finds it taken.
 * A step that met another invocation's instance lock (kind 'contended') is sent again, delayed.
 */
import type { Queue } from '@cloudflare/workers-types/index.ts';
import type { Db } from '../../engine/db.ts';
import { createEngine, type Engine, type EngineOptions, type ReadyNode, type RunResult } from '../../engine/engine.ts';
import type { Logger } from '../../log.ts';
import { createQueueDispatcher, delayFor, type StepMessage } from './dispatch.ts';

/** How far a contended row is stepped aside (src/engine/queries/steps.ts stepAside): its message waits that long. */
const STEP_ASIDE_MS = 250;

export interface ChainBudget {
  /** Steps this run may take, the first included (1: no continuation). */
  steps: number;
  /** Date.now() after which no continuation starts. */
  until: number;
}

export interface ChainRun {
  /** The first step's result (null: taken, done, or not yet due). */
  first: RunResult | null;
  /** Steps run, the first included. */
  ran: number;
}

export type EngineFor = (dispatch: (ready: ReadyNode[]) => Promise<void>) => Engine;

/** Builds the engine of one run: `base` options with a dispatcher that may hold the chain's next node. */
export function engineMaker(base: Omit<EngineOptions, 'dispatch'>): EngineFor {
  return (dispatch) => createEngine({ ...base, dispatch });
}

/**
 * Runs `target`, then its chain within `budget`. `now` is the first claim's clock (an API start may pass
 * the row's own run_at, so a database clock a little ahead of the Worker's does not make it "not due").
 * Throws what the first step throws; a continuation's error is logged and its node gets a message.
 */
export async function runChain(
  engineFor: EngineFor,
  queue: Queue<StepMessage>,
  log: Logger,
  target: StepMessage,
  budget: ChainBudget,
  now?: Date,
  /** Called once the first step has run (the queue acks its message there). */
  onFirst?: () => void,
): Promise<ChainRun> {
  const send = createQueueDispatcher(queue);
  let ran = 0;
  let held: ReadyNode | null = null;
  const engine = engineFor(async (ready) => {
    if (ready.length === 1 && ran + 1 < budget.steps && Date.now() < budget.until && delayFor(ready[0].runAt, Date.now()) === 0) {
      held = ready[0];
      return;
    }
    await send(ready);
  });
  // A checkpoint that met another invocation's lock stepped its row aside (a little later, still
  // ready): it gets a message again, or it would wait for the sweep.
  const contended = async (r: RunResult | null) => {
    if (r?.kind === 'contended') await send([{ instanceId: r.instanceId, nodeId: r.nodeId, runAt: new Date(Date.now() + STEP_ASIDE_MS) }]);
  };
  const first = await engine.runOnce({ target, now });
  ran = 1;
  onFirst?.();
  await contended(first);
  while (held) {
    const next: ReadyNode = held;
    held = null;
    try {
      const r = await engine.runOnce({ target: { instanceId: next.instanceId, nodeId: next.nodeId } });
      if (r) ran++;
      await contended(r);
    } catch (err) {
      log.warn('queue: a chain continuation failed; its node gets a message', { instance_id: next.instanceId, node_id: next.nodeId, error: err });
      await send([next]).catch(() => undefined);
    }
  }
  return { first, ran };
}
