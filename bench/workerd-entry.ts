/**
 * Bench-only entry around the real worker (src/runtime/worker/index.ts), bundled and loaded into
 * workerd by bench/workerd.ts. It changes nothing the worker does; it records timestamps so the bench
 * can explain where a step's time goes on Workers:
 *
 *  - every queue()/fetch()/scheduled() invocation: when the handler was entered and returned, the
 *    message bodies it got, and (through AsyncLocalStorage) every database session it opened and
 *    every query it sent, with their durations (the Neon driver's Client.prototype.connect/query are
 *    wrapped: it is the same module instance the worker uses, bundled once);
 *  - every QUEUE.send/sendBatch: when it was called and how long the producer call took, per body,
 *    so the bench can pair a message's send with the invocation that receives it (the queue hop);
 *  - optionally (`BENCH_RECORD_SENT=1`) the bodies themselves, for the harness that delivers
 *    messages with its own concurrency (GET /__bench/sent, like test/workerd/entry.ts).
 *
 * Routes (bench only): GET /__bench/trace returns and clears the records; GET /__bench/sent returns and
 * clears the recorded bodies; GET /__bench/rtt?n=…&sessions=… measures session setup and `SELECT 1`
 * round trips through the same driver and proxy the engine uses.
 *
 * Clock: workerd advances Date.now()/performance.now() only when I/O completes (a Spectre mitigation
 * it keeps locally too), so every duration here is "waiting for I/O plus the JavaScript between two
 * I/O events", never pure CPU time.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@neondatabase/serverless';
import worker, { type Env } from '../src/runtime/worker/index.ts';
import { createNeonDb } from '../src/runtime/worker/neon-db.ts';

export interface Invocation {
  kind: 'queue' | 'fetch' | 'cron';
  path?: string;
  start: number;
  end?: number;
  bodies: unknown[];
  /** Sessions opened (ms each: WebSocket through the proxy, startup, authentication). */
  connects: number[];
  /** Queries sent and their summed wait (ms). */
  queries: number;
  queryMs: number;
  /** Producer calls (ms each). */
  sends: number[];
  /** The first queries' text (first few invocations after each trace read): which round trips a step makes. */
  texts: string[];
  sample: boolean;
  /** When the last ctx.waitUntil promise settled (the pool's end). */
  settled?: number;
}

export interface SendRecord {
  key: string;
  at: number;
  ms: number;
}

const als = new AsyncLocalStorage<Invocation>();
let invocations: Invocation[] = [];
let sendRecords: SendRecord[] = [];
let sentBodies: unknown[] = [];
/** How many more invocations record their query texts (reset by each trace read). */
let textSamples = 5;
const now = () => performance.timeOrigin + performance.now();

const keyOf = (body: unknown) => {
  const b = body as { instanceId?: string; nodeId?: string } | null;
  return `${b?.instanceId}/${b?.nodeId}`;
};

// Wrap the driver once per isolate. The worker bundles the same @neondatabase/serverless module.
type AnyFn = (...args: unknown[]) => unknown;
const proto = Client.prototype as unknown as { connect: AnyFn; query: AnyFn; __benchWrapped?: boolean };
if (!proto.__benchWrapped) {
  proto.__benchWrapped = true;
  const connect = proto.connect;
  proto.connect = function (this: unknown, ...args: unknown[]) {
    const inv = als.getStore();
    const t0 = now();
    // pg-pool connects its clients with a callback; direct callers get a promise.
    const last = args.length - 1;
    if (inv && typeof args[last] === 'function') {
      const cb = args[last] as AnyFn;
      args[last] = (err: unknown, ...rest: unknown[]) => {
        if (!err) inv.connects.push(now() - t0);
        return cb(err, ...rest);
      };
    }
    const r = connect.apply(this, args);
    if (inv && r && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<unknown>).then(
        () => inv.connects.push(now() - t0),
        () => undefined,
      );
    }
    return r;
  };
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const inv = als.getStore();
    const t0 = now();
    const r = query.apply(this, args);
    if (inv && r && typeof (r as Promise<unknown>).then === 'function') {
      inv.queries++;
      if (inv.sample && inv.texts.length < 12) {
        const a = args[0] as string | { text?: string };
        inv.texts.push(String(typeof a === 'string' ? a : a?.text).replace(/\s+/g, ' ').slice(0, 90));
      }
      const done = () => {
        inv.queryMs += now() - t0;
      };
      (r as Promise<unknown>).then(done, done);
    }
    return r;
  };
}

function wrap(env: Env): Env {
  const q = env.QUEUE;
  const record = sent(env);
  const timed = async <T>(bodies: unknown[], call: () => Promise<T>): Promise<T> => {
    const at = now();
    const r = await call();
    const ms = now() - at;
    als.getStore()?.sends.push(ms);
    for (const b of bodies) sendRecords.push({ key: keyOf(b), at, ms });
    if (record) sentBodies.push(...bodies);
    return r;
  };
  const QUEUE = {
    send: (body: unknown, opts?: unknown) => timed([body], () => q.send(body as never, opts as never)),
    sendBatch: (messages: Iterable<{ body: unknown }>, opts?: unknown) => {
      const list = [...messages];
      return timed(
        list.map((m) => m.body),
        () => q.sendBatch(list as never, opts as never),
      );
    },
  };
  return { ...env, QUEUE: QUEUE as unknown as Env['QUEUE'] };
}

const sent = (env: Env) => (env as unknown as Record<string, string | undefined>).BENCH_RECORD_SENT === '1';

function begin(kind: Invocation['kind'], bodies: unknown[], path?: string): Invocation {
  const sample = kind === 'queue' && textSamples > 0;
  if (sample) textSamples--;
  return { kind, path, start: now(), bodies, connects: [], queries: 0, queryMs: 0, sends: [], texts: [], sample };
}

/** ctx whose waitUntil also records when the handed-over work (the pool's end) settled. */
function tracking(ctx: { waitUntil(p: Promise<unknown>): void }, inv: Invocation) {
  return {
    waitUntil: (p: Promise<unknown>) => {
      ctx.waitUntil(p.finally(() => (inv.settled = Math.max(inv.settled ?? 0, now()))));
    },
    passThroughOnException: () => undefined,
  };
}

async function traced<T>(inv: Invocation, fn: () => Promise<T>): Promise<T> {
  invocations.push(inv);
  try {
    return await als.run(inv, fn);
  } finally {
    inv.end = now();
  }
}

async function rtt(url: URL, env: Env): Promise<Response> {
  const n = Math.min(2000, Number(url.searchParams.get('n') ?? 200));
  const sessions = Math.min(100, Number(url.searchParams.get('sessions') ?? 20));
  const connectMs: number[] = [];
  const endMs: number[] = [];
  for (let i = 0; i < sessions; i++) {
    const db = createNeonDb({ connectionString: env.DATABASE_URL, wsProxy: env.WS_PROXY, max: 1, applicationName: 'pgflare:bench-rtt' });
    const t0 = now();
    const c = await db.pool.connect();
    connectMs.push(now() - t0);
    c.release();
    const t1 = now();
    await db.end();
    endMs.push(now() - t1);
  }
  const db = createNeonDb({ connectionString: env.DATABASE_URL, wsProxy: env.WS_PROXY, max: 1, applicationName: 'pgflare:bench-rtt' });
  const queryMs: number[] = [];
  try {
    const c = await db.pool.connect();
    try {
      await c.query('SELECT 1');
      for (let i = 0; i < n; i++) {
        const t0 = now();
        await c.query('SELECT 1');
        queryMs.push(now() - t0);
      }
    } finally {
      c.release();
    }
  } finally {
    await db.end();
  }
  return Response.json({ connectMs, endMs, queryMs });
}

export default {
  async fetch(request: Request, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }) {
    const url = new URL(request.url);
    if (url.pathname === '/__bench/trace') {
      // Hand over the finished invocations; keep the running ones for the next read.
      const done = invocations.filter((i) => i.end !== undefined);
      invocations = invocations.filter((i) => i.end === undefined);
      const out = { invocations: done, sends: sendRecords, running: invocations.filter((i) => i.kind === 'queue').length };
      sendRecords = [];
      textSamples = 5;
      return Response.json(out);
    }
    if (url.pathname === '/__bench/sent') return Response.json(sentBodies.splice(0));
    if (url.pathname === '/__bench/rtt') return rtt(url, env);
    const inv = begin('fetch', [], url.pathname);
    return traced(inv, () => worker.fetch(request as never, wrap(env), tracking(ctx, inv) as never) as unknown as Promise<Response>);
  },
  queue(batch: { messages: readonly { body: unknown }[] }, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }) {
    const inv = begin('queue', batch.messages.map((m) => m.body));
    return traced(inv, () => worker.queue(batch as never, wrap(env), tracking(ctx, inv) as never) as Promise<void>);
  },
  scheduled(controller: never, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }) {
    const inv = begin('cron', []);
    return traced(inv, () => worker.scheduled(controller, wrap(env), tracking(ctx, inv) as never) as Promise<void>);
  },
};
