/**
 * Real workerd (through Miniflare) running the pgflare worker against the test PostgreSQL, reached
 * through scripts/ws-proxy.ts exactly as in `npm run dev`.
 */
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Miniflare } from 'miniflare';
import { startWsProxy, type WsProxy } from '../../scripts/ws-proxy.ts';
import type { TestDb } from '../helpers/db.ts';
import { bundleWorker, COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from './build.ts';

export const QUEUE_NAME = 'pgflare-steps';

export interface StepBody {
  instanceId: string;
  nodeId: string;
}
export interface Sent {
  body: StepBody;
  delaySeconds?: number;
}

export interface Workerd {
  mf: Miniflare;
  proxy: WsProxy;
  /** Messages the worker sent since the last call (recorded by test/workerd/entry.ts). */
  sent(): Promise<Sent[]>;
  /** Delivers one queue batch to the worker's queue() handler; resolves with the handler's result. */
  deliver(bodies: unknown[]): Promise<{ outcome: string; ackAll: boolean; explicitAcks: string[]; retryBatch: { retry: boolean } }>;
  /** The queries the worker sent since the last call (their text, whitespace folded, truncated). */
  queries(): Promise<string[]>;
  /** Fires the scheduled() handler once (the cron sweep). */
  cron(): Promise<{ outcome: string }>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export interface WorkerdOptions {
  /** Let the local queue deliver messages to the worker by itself (default: tests deliver by hand). */
  consumer?: { maxBatchSize: number; maxBatchTimeout: number };
  bindings?: Record<string, string>;
  /** Hyperdrive bindings: name → the local connection string workerd's Hyperdrive leads to (test/pooler/). */
  hyperdrives?: Record<string, string>;
  /** Bindings known only once other beforeAll hooks ran (a PgBouncer's port): read when workerd starts. */
  late?: () => Pick<WorkerdOptions, 'bindings' | 'hyperdrives'>;
  /** The Worker entry to bundle (default test/workerd/entry.ts). */
  entry?: string;
}

export function useWorkerd(t: TestDb, opts: WorkerdOptions = {}): Workerd {
  const h = {} as Workerd;
  beforeAll(async () => {
    const [proxy, bundle] = await Promise.all([startWsProxy(), bundleWorker(opts.entry ?? 'test/workerd/entry.ts')]);
    const late = opts.late?.() ?? {};
    const hyperdrives = { ...opts.hyperdrives, ...late.hyperdrives };
    h.proxy = proxy;
    h.mf = new Miniflare({
      modules: true,
      scriptPath: bundle.path,
      modulesRoot: dirname(bundle.path),
      compatibilityDate: COMPATIBILITY_DATE,
      compatibilityFlags: COMPATIBILITY_FLAGS,
      bindings: { DATABASE_URL: t.url(), WS_PROXY: proxy.address, PGFLARE_LOG_LEVEL: 'error', ...opts.bindings, ...late.bindings },
      queueProducers: { QUEUE: { queueName: QUEUE_NAME } },
      ...(Object.keys(hyperdrives).length ? { hyperdrives } : {}),
      ...(opts.consumer ? { queueConsumers: { [QUEUE_NAME]: opts.consumer } } : {}),
    });
    await h.mf.ready;
  });
  afterAll(async () => {
    await h.mf?.dispose();
    await h.proxy?.close();
  });

  h.queries = async () => (await (await h.mf.dispatchFetch('http://worker/__test/queries')).json()) as string[];
  h.sent = async () => (await (await h.mf.dispatchFetch('http://worker/__test/sent')).json()) as Sent[];
  h.deliver = async (bodies) => {
    const worker = await h.mf.getWorker();
    const messages = bodies.map((body) => ({ id: randomUUID(), timestamp: new Date(), body, attempts: 1 }));
    return (await worker.queue(QUEUE_NAME, messages as never)) as never;
  };
  h.cron = async () => {
    const worker = await h.mf.getWorker();
    return (await worker.scheduled({ scheduledTime: new Date(), cron: '* * * * *' })) as never;
  };
  h.fetch = (path, init) => h.mf.dispatchFetch(`http://worker${path}`, init as never) as unknown as Promise<Response>;
  return h;
}

/**
 * Polls (bounded, no fixed sleeps) until `check` is true: for work a Worker does in ctx.waitUntil, after
 * the response the test got.
 */
export async function eventually(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits (bounded) until the worker has sent at least one message that `match` accepts: for sends made in
 * ctx.waitUntil after a response. Messages that `match` rejects are dropped, as `sent()` drains them.
 */
export async function sentMatching(w: Workerd, match: (m: Sent) => boolean, what: string): Promise<Sent[]> {
  const got: Sent[] = [];
  await eventually(async () => {
    got.push(...(await w.sent()).filter(match));
    return got.length > 0;
  }, what);
  return got;
}

/** Delivers every recorded message, one message per queue() invocation, until the worker sends none. */
export async function pump(w: Workerd, max = 50): Promise<number> {
  let invocations = 0;
  for (let round = 0; round < max; round++) {
    const sent = await w.sent();
    if (!sent.length) return invocations;
    for (const m of sent) {
      await w.deliver([m.body]);
      invocations++;
    }
  }
  throw new Error(`pump: still sending after ${max} rounds`);
}
