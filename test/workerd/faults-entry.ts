/**
 * Test entry for test/workerd/faults.test.ts: the real worker (src/runtime/worker/index.ts) with its
 * queue producer and consumer wrapped so the test can lose, repeat and kill.
 *
 *  - Producer: every message the worker sends is recorded (GET /__test/sent returns and clears the
 *    record) and not forwarded: the test is the queue, and decides what is lost or duplicated.
 *  - Consumer: a message body may carry `die: 'before-commit' | 'after-commit'` (stripped before the
 *    worker sees it). When the engine reaches that crash point (src/engine/points.ts) for that
 *    message's instance, the invocation dies: that point throws (rolling back, or skipping the dispatch
 *    after the commit), the batch hands out no further message, the invocation's later sends are lost
 *    and its later acks ignored, and the handler throws, so the queue redelivers every message not
 *    acked before the death (Cloudflare Queues' rule). Messages already running in the invocation's
 *    other lanes finish (as if they had committed just before the death) but are neither acked nor
 *    followed by their sends.
 *
 * The invocation a crash point belongs to is found through AsyncLocalStorage, so this holds however
 * the worker shares engines between invocations.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import worker, { type Env } from '../../src/runtime/worker/index.ts';
import type { CrashPoint, PointHandler } from '../../src/engine/points.ts';

type Death = Extract<CrashPoint, 'before-commit' | 'after-commit'>;

interface Invocation {
  /** instance → the point where this invocation dies running a step of it (by instance: a message for
   *  an instance's root reaches before-commit as its first step, another node) */
  armed: Map<string, Death>;
  dead: string | null;
  /** The batch handed to the worker: emptied at the death, so no further message starts. */
  messages: unknown[];
}

interface Sent {
  body: unknown;
  delaySeconds?: number;
}

const als = new AsyncLocalStorage<Invocation>();
const sent: Sent[] = [];
/** Deaths that happened, by point; returned (and cleared) with GET /__test/deaths. */
let deaths: Record<Death, number> = { 'before-commit': 0, 'after-commit': 0 };

class Died extends Error {}

// The worker logs each death as an engine error (it is one, to the worker): keep those out of the test's output.
const log = console.log.bind(console);
console.log = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && /"error":"died at /.test(args[0])) return;
  log(...args);
};

const key = (b: { instanceId: string; nodeId: string }) => `${b.instanceId}/${b.nodeId}`;

const points: PointHandler = (point, ctx) => {
  const inv = als.getStore();
  // After a death nothing throws: the worker would drop the session a step threw out of, and open a new one.
  if (!inv || inv.dead) return;
  const want = inv.armed.get(ctx.instanceId);
  if (want !== point) return;
  inv.dead = `${point} of ${key(ctx)}`;
  inv.messages.length = 0;
  deaths[want]++;
  throw new Died(`died at ${inv.dead}`);
};

function wrap(env: Env): Env {
  const record = (list: Sent[]) => {
    if (als.getStore()?.dead) return; // a dead invocation sends nothing more
    sent.push(...list);
  };
  const QUEUE = {
    send: async (body: unknown, opts?: { delaySeconds?: number }) => record([{ body, delaySeconds: opts?.delaySeconds }]),
    sendBatch: async (messages: Iterable<{ body: unknown; delaySeconds?: number }>) =>
      record([...messages].map((m) => ({ body: m.body, delaySeconds: m.delaySeconds }))),
  };
  return { ...env, QUEUE: QUEUE as unknown as Env['QUEUE'], TEST_POINTS: points };
}

interface InMessage {
  id: string;
  timestamp: Date;
  attempts: number;
  body: { instanceId: string; nodeId: string; die?: Death };
  ack(): void;
  retry(opts?: unknown): void;
}

async function queue(batch: { queue: string; messages: readonly InMessage[] }, env: Env, ctx: never): Promise<void> {
  const inv: Invocation = { armed: new Map(), dead: null, messages: [] };
  const messages = batch.messages.map((m) => {
    const { die, ...body } = m.body;
    if (die) inv.armed.set(body.instanceId, die);
    return {
      id: m.id,
      timestamp: m.timestamp,
      attempts: m.attempts,
      body,
      ack: () => void (inv.dead || m.ack()),
      retry: (o?: unknown) => void (inv.dead || m.retry(o)),
    };
  });
  inv.messages = messages;
  const wrapped = {
    queue: batch.queue,
    messages,
    ackAll: () => messages.forEach((m) => m.ack()),
    retryAll: (o?: unknown) => messages.forEach((m) => m.retry(o)),
  };
  await als.run(inv, () => worker.queue(wrapped as never, wrap(env), ctx));
  if (inv.dead) throw new Died(`invocation died at ${inv.dead}`);
}

export default {
  fetch(request: Request, env: Env, ctx: never) {
    const path = new URL(request.url).pathname;
    if (path === '/__test/sent') return Response.json(sent.splice(0));
    if (path === '/__test/deaths') {
      const d = deaths;
      deaths = { 'before-commit': 0, 'after-commit': 0 };
      return Response.json(d);
    }
    return worker.fetch(request as never, wrap(env), ctx);
  },
  queue,
  scheduled: (controller: never, env: Env, ctx: never) => worker.scheduled(controller, wrap(env), ctx),
};
