/**
 * The Workers Dispatcher (DESIGN 8): every newly ready node becomes its own Queue message, so the
 * branches of a JOIN run in parallel invocations. Messages are hints — the df.nodes rows are the truth:
 * a duplicate finds its row taken or done, and a lost one is found by the cron sweep.
 */
import { z } from 'zod';
import type { Queue } from '@cloudflare/workers-types/index.ts';
import type { ReadyNode } from '../../engine/engine.ts';

/** A queue message names one node. ~60 bytes: far below the 128 KB message limit. */
export const StepMessage = z.object({
  instanceId: z.string().min(1).max(64),
  nodeId: z.string().min(1).max(64),
});
export type StepMessage = z.infer<typeof StepMessage>;

/** Queues: at most 100 messages (and 256 KB) per sendBatch call. */
export const SEND_BATCH_MAX = 100;
/** Queues: `delaySeconds` may be at most 24 h (86 400 s; Cloudflare Queues limits page). */
export const MAX_DELAY_SECONDS = 86_400;

export interface QueueDispatchOptions {
  /** The clock the delays are measured from (tests pin it). */
  now?: () => number;
  maxDelaySeconds?: number;
}

/**
 * Delay for a node due at `runAt`: 0 when due, the whole seconds still to wait when that fits the
 * queue's delay limit, null when it is further out (no message: the sweep sends one when it is close).
 */
export function delayFor(runAt: Date, nowMs: number, maxDelaySeconds = MAX_DELAY_SECONDS): number | null {
  const ms = runAt.getTime() - nowMs;
  if (!(ms > 0)) return 0;
  const s = Math.ceil(ms / 1000);
  return s <= maxDelaySeconds ? s : null;
}

export function createQueueDispatcher(queue: Queue<StepMessage>, opts: QueueDispatchOptions = {}) {
  const now = opts.now ?? Date.now;
  const maxDelay = opts.maxDelaySeconds ?? MAX_DELAY_SECONDS;
  return async (ready: ReadyNode[]): Promise<number> => {
    const t = now();
    const messages: { body: StepMessage; contentType: 'json'; delaySeconds?: number }[] = [];
    for (const r of ready) {
      const delay = delayFor(r.runAt, t, maxDelay);
      if (delay === null) continue;
      messages.push({ body: { instanceId: r.instanceId, nodeId: r.nodeId }, contentType: 'json', ...(delay > 0 ? { delaySeconds: delay } : {}) });
    }
    for (let i = 0; i < messages.length; i += SEND_BATCH_MAX) {
      await queue.sendBatch(messages.slice(i, i + SEND_BATCH_MAX));
    }
    return messages.length;
  };
}
