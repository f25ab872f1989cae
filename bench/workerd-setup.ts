/** bench/workerd.ts's fixtures: sizes, the ws-proxy in its own process, workerd under Miniflare, and waits on the database. */
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../src/runtime/node/embedded.ts';
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from '../test/workerd/build.ts';
import { connect, nowMs, sleep, type BenchContext } from './common.ts';
import { countOpen, stallGuard } from './engine.ts';
import type { Trace } from './workerd-trace.ts';

export const OWNER = 'bench_owner';
export const OWNER_PASSWORD = 'bench';
export const DATABASE = 'pgflare_bench';
export const QUEUE_NAME = 'pgflare-steps';
export const TOKEN = 'bench-token-0000000000000000';

export interface WorkerdSizes {
  chain: number;
  chainRepeats: number;
  drainItems: number;
  fanOut: number;
  w3Samples: number;
  rttQueries: number;
  rttSessions: number;
}

export function sizesFor(quick: boolean): WorkerdSizes {
  return quick
    ? { chain: 100, chainRepeats: 1, drainItems: 100, fanOut: 100, w3Samples: 20, rttQueries: 100, rttSessions: 10 }
    : // Scaled down from issue 4 (chain 1,000; 20,000 instances; fan-out 1,000; 200 W3 samples) so the
      // run stays under ~5 minutes on a shared 2-core machine: a workerd step costs 50–100 ms here and
      // the local queue delivers one at a time. The Node side runs the same sizes in this run, so every
      // ratio is like for like; per-step numbers do not depend on the size.
      { chain: 300, chainRepeats: 1, drainItems: 300, fanOut: 300, w3Samples: 100, rttQueries: 500, rttSessions: 30 };
}


// The ws-proxy, in its own process: in the bench's process it would share one event loop with the
// harness's polling and Miniflare's Node side, and every database byte of the worker would wait on them.

export interface WsProxy {
  address: string;
  close(): Promise<void>;
}

export async function startProxyProcess(): Promise<WsProxy> {
  const port = await freePort();
  const script = join(import.meta.dirname, '..', 'scripts', 'ws-proxy.ts');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`ws-proxy did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ws-proxy exited (${code}): ${err}`));
    });
  });
  child.stderr!.resume();
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// workerd

export interface Workerd {
  mf: Miniflare;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  trace(): Promise<Trace>;
  cron(): Promise<void>;
  deliver(body: unknown): Promise<void>;
  sent(): Promise<unknown[]>;
  dispose(): Promise<void>;
}

export async function startWorkerd(bundlePath: string, ownerUrl: string, proxy: WsProxy, mode: 'local-queue' | 'lanes', extra: Record<string, string> = {}): Promise<Workerd> {
  const mf = new Miniflare({
    modules: true,
    scriptPath: bundlePath,
    modulesRoot: dirname(bundlePath),
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: COMPATIBILITY_FLAGS,
    bindings: {
      DATABASE_URL: ownerUrl,
      WS_PROXY: proxy.address,
      PGFLARE_LOG_LEVEL: 'warn',
      PGFLARE_API_TOKENS: `${TOKEN}=${OWNER}`,
      // One sweep dispatches the whole W2 backlog; no pruning inside the timed phases.
      PGFLARE_SWEEP_LIMIT: '10000',
      PGFLARE_PRUNE_BATCH: '0',
      ...(mode === 'lanes' ? { BENCH_RECORD_SENT: '1' } : {}),
      ...extra,
    },
    queueProducers: { QUEUE: { queueName: QUEUE_NAME } },
    // As wrangler.toml: one message per batch, no batch timeout.
    ...(mode === 'local-queue' ? { queueConsumers: { [QUEUE_NAME]: { maxBatchSize: 1, maxBatchTimeout: 0 } } } : {}),
  });
  await mf.ready;
  const fetch = (path: string, init?: RequestInit) => mf.dispatchFetch(`http://worker${path}`, init as never) as unknown as Promise<Response>;
  const worker = await mf.getWorker();
  return {
    mf,
    fetch,
    trace: async () => (await (await fetch('/__bench/trace')).json()) as Trace,
    sent: async () => (await (await fetch('/__bench/sent')).json()) as unknown[],
    cron: async () => {
      await worker.scheduled({ scheduledTime: new Date(), cron: '* * * * *' });
    },
    deliver: async (body) => {
      await worker.queue(QUEUE_NAME, [{ id: randomUUID(), timestamp: new Date(), body, attempts: 1 }] as never);
    },
    dispose: () => mf.dispose(),
  };
}

/**
 * Waits until workerd has no queue invocation running and none finished in the last half second, so a
 * phase does not start (or delete rows) under the previous phase's leftover messages.
 */
export async function quiesce(w: Workerd): Promise<void> {
  const deadline = nowMs() + 120_000;
  let quietSince = nowMs();
  for (;;) {
    const t = await w.trace();
    if (t.running > 0 || t.invocations.some((i) => i.kind === 'queue')) quietSince = nowMs();
    else if (nowMs() - quietSince >= 500) return;
    if (nowMs() > deadline) throw new Error('workerd did not go quiet within 120 s');
    await sleep(100);
  }
}

/** Polls until no instance is pending/running; fails when the completed count stops growing for 30 s. */
export async function waitAllDone(ctx: BenchContext, what: string): Promise<void> {
  const c = await connect(ctx.ownerUrl);
  try {
    const progress = stallGuard(ctx, what);
    // Progress counts activations too: the queue is FIFO, so every instance's first (activation) run
    // comes before any of their steps, and nothing completes for a while.
    const q = `SELECT count(*) FILTER (WHERE status = 'running')::int + 2 * count(*) FILTER (WHERE status = 'completed')::int AS n FROM df.instances`;
    while ((await countOpen(c)) > 0) {
      progress((await c.query<{ n: number }>(q)).rows[0].n);
      await sleep(50);
    }
  } finally {
    await c.end();
  }
}

export async function waitInstance(ctx: BenchContext, id: string, what: string): Promise<void> {
  const c = await connect(ctx.ownerUrl);
  try {
    const progress = stallGuard(ctx, what);
    let checkedAt = nowMs();
    for (;;) {
      const s = (await c.query<{ s: string }>('SELECT df.status($1) AS s', [id])).rows[0].s;
      if (s === 'completed') return;
      if (s === 'failed' || s === 'cancelled') throw new Error(`${what}: instance ${id} ${s}`);
      if (nowMs() - checkedAt > 2000) {
        checkedAt = nowMs();
        const q = `SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND status = 'completed'`;
        progress((await c.query<{ n: number }>(q, [id])).rows[0].n);
      }
      await sleep(20);
    }
  } finally {
    await c.end();
  }
}
