/**
 * W1–W3 through local workerd and its queue (issue 5, item 7), each printed as a ratio to the Node
 * runtime measured in the same run, plus a timestamped breakdown of where a step's time goes on Workers.
 *
 *   npm run bench:workerd [-- --quick] [--chain 300] [--drain 300] [--fan-out 300] [--w3 100]
 *   npm run bench -- workerd …          (the same)
 *
 * One embedded PostgreSQL; scripts/ws-proxy.ts; the real worker (src/runtime/worker/index.ts, wrapped by
 * bench/workerd-entry.ts, which only records timestamps) bundled like the workerd tests and loaded into
 * workerd by Miniflare, twice:
 *  - "local queue": the queue consumer bound as in wrangler.toml (max_batch_size 1, timeout 0), so
 *    Miniflare's queue broker delivers every message the worker sends to its queue() handler. The broker
 *    keeps one batch in flight at a time: this is concurrency 1.
 *  - "8 lanes": no consumer; the worker's sends are recorded and the bench delivers them through
 *    workerd's queue() handler with 8 deliveries in flight (what Cloudflare's consumer autoscaling does
 *    and the local broker cannot), for W2's "8 concurrent steps".
 * Instances start from SQL (df.start) and get their first message from one cron sweep, except W3, which
 * starts through POST /v1/instances (the only path on Workers that does not wait for the cron).
 * See bench/README.md, "Workers runtime (workerd)".
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import pg from 'pg';
import WebSocket from 'ws';
import { neonConfig } from '@neondatabase/serverless';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/runtime/node/embedded.ts';

import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { createNeonDb } from '../src/runtime/worker/neon-db.ts';
import { migrate } from '../src/migrate/runner.ts';
import type { Db, DbClient } from '../src/engine/db.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../src/runtime/node/embedded.ts';
import { bundleWorker, COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from '../test/workerd/build.ts';
import { checkpoint, connect, idleGapMs, mean, median, nowMs, percentile, round, sleep, table, type BenchContext, type Measurement } from './common.ts';
import {
  chainExpression,
  clearInstances,
  countCompleted,
  countOpen,
  engineChain,
  engineDrain,
  engineFanOut,
  engineLogger,
  engineWakeup,
  loadEngine,
  stallGuard,
  startMany,
  type EngineAvailability,
} from './engine.ts';
import { W3_TABLES } from './w3.ts';
import { targetRows, workerdCpuMs } from './workerd-targets.ts';

const OWNER = 'bench_owner';
const OWNER_PASSWORD = 'bench';
const DATABASE = 'pgflare_bench';
const QUEUE_NAME = 'pgflare-steps';
const TOKEN = 'bench-token-0000000000000000';

export interface WorkerdSizes {
  chain: number;
  chainRepeats: number;
  drainItems: number;
  fanOut: number;
  w3Samples: number;
  rttQueries: number;
  rttSessions: number;
}

function sizesFor(quick: boolean): WorkerdSizes {
  return quick
    ? { chain: 100, chainRepeats: 1, drainItems: 100, fanOut: 100, w3Samples: 20, rttQueries: 100, rttSessions: 10 }
    : // Scaled down from issue 4 (chain 1,000; 20,000 instances; fan-out 1,000; 200 W3 samples) so the
      // run stays under ~5 minutes on a shared 2-core machine: a workerd step costs 50–100 ms here and
      // the local queue delivers one at a time. The Node side runs the same sizes in this run, so every
      // ratio is like for like; per-step numbers do not depend on the size.
      { chain: 300, chainRepeats: 1, drainItems: 300, fanOut: 300, w3Samples: 100, rttQueries: 500, rttSessions: 30 };
}

// ---------------------------------------------------------------------------------------------------
// The trace bench/workerd-entry.ts records

interface Invocation {
  kind: 'queue' | 'fetch' | 'cron';
  path?: string;
  start: number;
  end: number;
  bodies: unknown[];
  connects: number[];
  queries: number;
  queryMs: number;
  sends: number[];
  texts: string[];
  settled?: number;
}
interface SendRecord {
  key: string;
  at: number;
  ms: number;
}
interface Trace {
  invocations: Invocation[];
  sends: SendRecord[];
  /** queue invocations still running when the trace was read */
  running: number;
}

const keyOf = (body: unknown) => {
  const b = body as { instanceId?: string; nodeId?: string } | null;
  return `${b?.instanceId}/${b?.nodeId}`;
};

/** Per-invocation means over the queue invocations of a trace (ms unless named otherwise). */
export interface QueueProfile {
  invocations: number;
  /** handler entered → returned */
  handlerMs: number;
  /** sessions opened per invocation, and ms each (WebSocket via the proxy + startup + auth) */
  sessions: number;
  connectMs: number;
  queries: number;
  /** queries per invocation, median, and all the invocations' queries together */
  queriesP50: number;
  queriesSum: number;
  /** summed query waits per invocation */
  queryMs: number;
  /** producer calls (QUEUE.sendBatch) per invocation, summed ms */
  sendMs: number;
  /** handler time not spent connecting, querying or sending: the engine's JavaScript, pool checkout, timers */
  otherMs: number;
  /** the message's send was called → the handler that got it was entered (median) */
  hopP50: number;
  /** handler returned → its ctx.waitUntil work (the pool's end) settled */
  settleMs: number | null;
  /** the queries of one invocation (the first sampled one), in order */
  texts: string[];
  /** previous queue handler returned → this one entered (serial delivery only; median) */
  gapP50: number | null;
  gapMean: number | null;
}

export function profileQueue(trace: Trace, serial: boolean): QueueProfile | null {
  const inv = trace.invocations.filter((i) => i.kind === 'queue').sort((a, b) => a.start - b.start);
  if (!inv.length) return null;
  const sendsByKey = new Map<string, number[]>();
  for (const s of trace.sends) {
    const list = sendsByKey.get(s.key) ?? [];
    list.push(s.at);
    sendsByKey.set(s.key, list);
  }
  const hops: number[] = [];
  for (const i of inv) {
    for (const b of i.bodies) {
      // The latest send of this body before the handler started (a sweep may have sent it too).
      const before = (sendsByKey.get(keyOf(b)) ?? []).filter((t) => t <= i.start);
      if (before.length) hops.push(i.start - Math.max(...before));
    }
  }
  const gaps: number[] = [];
  for (let k = 1; k < inv.length; k++) gaps.push(inv[k].start - inv[k - 1].end);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const handler = inv.map((i) => i.end - i.start);
  const connect = inv.map((i) => sum(i.connects));
  const query = inv.map((i) => i.queryMs);
  const send = inv.map((i) => sum(i.sends));
  const allConnects = inv.flatMap((i) => i.connects);
  return {
    invocations: inv.length,
    handlerMs: round(mean(handler), 2),
    sessions: round(mean(inv.map((i) => i.connects.length)), 2),
    connectMs: round(mean(allConnects), 2),
    queries: round(mean(inv.map((i) => i.queries)), 2),
    queriesP50: median(inv.map((i) => i.queries)),
    queriesSum: sum(inv.map((i) => i.queries)),
    queryMs: round(mean(query), 2),
    sendMs: round(mean(send), 2),
    otherMs: round(mean(inv.map((_, k) => handler[k] - connect[k] - query[k] - send[k])), 2),
    hopP50: round(median(hops), 2),
    settleMs: inv.some((i) => i.settled) ? round(mean(inv.filter((i) => i.settled).map((i) => i.settled! - i.end)), 2) : null,
    texts: inv.find((i, k) => k > 0 && i.texts?.length)?.texts ?? inv.find((i) => i.texts?.length)?.texts ?? [],
    gapP50: serial && gaps.length ? round(median(gaps), 2) : null,
    gapMean: serial && gaps.length ? round(mean(gaps), 2) : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// The ws-proxy, in its own process: in the bench's process it would share one event loop with the
// harness's polling and Miniflare's Node side, and every database byte of the worker would wait on them.

interface WsProxy {
  address: string;
  close(): Promise<void>;
}

async function startProxyProcess(): Promise<WsProxy> {
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

interface Workerd {
  mf: Miniflare;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  trace(): Promise<Trace>;
  cron(): Promise<void>;
  deliver(body: unknown): Promise<void>;
  sent(): Promise<unknown[]>;
  dispose(): Promise<void>;
}

async function startWorkerd(bundlePath: string, ownerUrl: string, proxy: WsProxy, mode: 'local-queue' | 'lanes', extra: Record<string, string> = {}): Promise<Workerd> {
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
async function quiesce(w: Workerd): Promise<void> {
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
async function waitAllDone(ctx: BenchContext, what: string): Promise<void> {
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

async function waitInstance(ctx: BenchContext, id: string, what: string): Promise<void> {
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

function wd(metric: string, value: number | null, unit: string, better: 'lower' | 'higher', detail?: Record<string, unknown>): Measurement {
  // The Measurement type names the Node contenders; the workerd rows reuse it with this label.
  return { contender: 'workerd' as Measurement['contender'], metric, value, unit, better, detail };
}

/** W1 on workerd: one chain instance, started from SQL, first message from one cron sweep. */
async function workerdChain(ctx: BenchContext, w: Workerd, s: WorkerdSizes): Promise<Measurement> {
  const c = await connect(ctx.ownerUrl);
  const perStep: number[] = [];
  let profile: QueueProfile | null = null;
  let cpuPerInvocation: number | null = null;
  try {
    const graph = (await c.query<{ g: string }>(`SELECT ${chainExpression(s.chain)} AS g`)).rows[0].g;
    for (let r = 0; r < s.chainRepeats; r++) {
      await quiesce(w);
      await clearInstances(ctx);
      await w.trace();
      const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
      const cpu0 = workerdCpuMs();
      const t0 = nowMs();
      await w.cron();
      await waitInstance(ctx, id, 'workerd W1');
      perStep.push((nowMs() - t0) / s.chain);
      const cpu1 = workerdCpuMs();
      profile = profileQueue(await w.trace(), true);
      if (cpu0 != null && cpu1 != null && profile) cpuPerInvocation = round((cpu1 - cpu0) / profile.invocations, 2);
    }
  } finally {
    await c.end();
  }
  const value = round(median(perStep));
  ctx.log(`workerd W1: chain of ${s.chain}: ${value} ms/step (repeats ${perStep.map((x) => round(x)).join(', ')}); workerd CPU ${cpuPerInvocation} ms per invocation`);
  return wd(`one instance of ${s.chain} sequential steps: ms per step`, value, 'ms/step', 'lower', {
    repeats: perStep.map((x) => round(x)),
    profile,
    invocationsPerStep: profile ? round(profile.invocations / s.chain, 3) : null,
    cpuPerInvocation,
  });
}

/** Delivers recorded messages with `lanes` deliveries in flight until `done()`. */
async function runLanes(w: Workerd, lanes: number, done: () => boolean): Promise<void> {
  const pending: unknown[] = [];
  let pulling: Promise<void> | null = null;
  const pull = () =>
    (pulling ??= (async () => {
      pending.push(...(await w.sent()));
    })().finally(() => (pulling = null)));
  const lane = async () => {
    while (!done()) {
      let body = pending.shift();
      if (body === undefined) {
        await pull();
        body = pending.shift();
        if (body === undefined) {
          await sleep(5);
          continue;
        }
      }
      await w.deliver(body);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/**
 * One cron sweep sends the backlog's first messages; the local queue (or 8 lanes of deliveries) does the
 * rest until `done` resolves. Returns the wall time and the queue profile of the run.
 */
async function queueRun(w: Workerd, mode: 'local-queue' | 'lanes', done: () => Promise<unknown>) {
  await w.trace();
  await w.sent().catch(() => undefined);
  const t0 = nowMs();
  await w.cron();
  let finished = false;
  const lanes = mode === 'lanes' ? runLanes(w, 8, () => finished) : Promise.resolve();
  try {
    await done();
  } finally {
    finished = true;
    await lanes;
  }
  const seconds = (nowMs() - t0) / 1000;
  const profile = profileQueue(await w.trace(), mode === 'local-queue');
  const how = mode === 'lanes' ? '8 deliveries in flight' : 'local queue (1 in flight)';
  return { seconds, profile, how };
}

async function workerdDrain(ctx: BenchContext, w: Workerd, s: WorkerdSizes, mode: 'local-queue' | 'lanes'): Promise<Measurement> {
  await quiesce(w);
  await clearInstances(ctx);
  await startMany(ctx.ownerUrl, s.drainItems);
  await checkpoint(ctx);
  const { seconds, profile, how } = await queueRun(w, mode, () => waitAllDone(ctx, `workerd W2 drain (${mode})`));
  const value = round(s.drainItems / seconds, 1);
  ctx.log(`workerd W2 (${how}): ${s.drainItems} instances in ${round(seconds, 2)} s: ${value} steps/s; ${profile?.invocations} queue invocations`);
  return wd(`${s.drainItems} one-step instances started at once, ${how}: steps/s`, value, 'steps/s', 'higher', { seconds: round(seconds, 2), profile });
}

async function workerdFanOut(ctx: BenchContext, w: Workerd, s: WorkerdSizes, mode: 'local-queue' | 'lanes'): Promise<Measurement> {
  await quiesce(w);
  await clearInstances(ctx);
  const leaf = { node_type: 'SQL', query: 'SELECT 1' };
  const graph = JSON.stringify({ node_type: 'JOIN', left_node: leaf, right_node: leaf, extra_nodes: Array.from({ length: s.fanOut - 2 }, () => leaf) });
  const c = await connect(ctx.ownerUrl);
  let id: string;
  try {
    id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
  } finally {
    await c.end();
  }
  const { seconds, profile, how } = await queueRun(w, mode, () => waitInstance(ctx, id, `workerd fan-out (${mode})`));
  const value = round(s.fanOut / seconds, 1);
  ctx.log(`workerd fan-out (${how}): JOIN of ${s.fanOut} in ${round(seconds, 2)} s: ${value} steps/s`);
  return wd(`one instance, JOIN of ${s.fanOut} branches, ${how}: steps/s`, value, 'steps/s', 'higher', { seconds: round(seconds, 3), profile });
}

/**
 * W3 on workerd: POST /v1/instances (the API commits df.start, answers, then runs the instance's first
 * claim, its activation and its one step, in the request's waitUntil on the request's session). A
 * trigger on df.instances, present only during this phase, records the starting transaction's xid so the
 * latency is measured on the server's clock exactly like the Node rows (bench/w3.ts).
 */
async function workerdWakeup(ctx: BenchContext, w: Workerd, s: WorkerdSizes): Promise<Measurement> {
  await quiesce(w);
  await clearInstances(ctx);
  const c = await connect(ctx.ownerUrl);
  let profile: QueueProfile | null = null;
  let api: Record<string, number> | null = null;
  try {
    await c.query(`
      CREATE TABLE IF NOT EXISTS bench_w3_api_start (label text PRIMARY KEY);
      CREATE OR REPLACE FUNCTION bench_w3_record() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
      BEGIN INSERT INTO public.bench_w3_api_start (label) VALUES (NEW.label); RETURN NULL; END $$;
      CREATE TRIGGER bench_w3_record AFTER INSERT ON df.instances FOR EACH ROW WHEN (NEW.label LIKE 'bench-w3-%')
        EXECUTE FUNCTION bench_w3_record();`);
    await w.trace();
    for (let i = 1; i <= s.w3Samples; i++) {
      await sleep(idleGapMs());
      const res = await w.fetch('/v1/instances', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          label: `bench-w3-${i}`,
          workflow: `'INSERT INTO public.bench_w3_seen (contender, sample, began) VALUES (''workerd'', ${i}, clock_timestamp())'`,
        }),
      });
      if (res.status >= 300) throw new Error(`POST /v1/instances: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      const deadline = nowMs() + 10_000;
      while ((await c.query(`SELECT 1 FROM bench_w3_seen WHERE contender = 'workerd' AND sample = $1`, [i])).rows.length === 0) {
        if (nowMs() > deadline) throw new Error(`workerd W3 sample ${i}: the step did not begin within 10 s`);
        await sleep(5);
      }
    }
    const trace = await w.trace();
    profile = profileQueue(trace, false);
    // The starts themselves: the first step runs in each POST's waitUntil (PGFLARE_API_RUN_STEP).
    const posts = trace.invocations.filter((i) => i.kind === 'fetch' && i.path === '/v1/instances');
    if (posts.length) {
      api = {
        requests: posts.length,
        handlerMs: round(mean(posts.map((i) => i.end - i.start)), 2),
        sessions: round(mean(posts.map((i) => i.connects.length)), 2),
        connectMs: round(mean(posts.flatMap((i) => i.connects)), 2),
        queries: round(mean(posts.map((i) => i.queries)), 2),
        queryMs: round(mean(posts.map((i) => i.queryMs)), 2),
        waitUntilMs: round(mean(posts.filter((i) => i.settled).map((i) => i.settled! - i.end)), 2),
        sends: round(mean(posts.map((i) => i.sends.length)), 2),
      };
    }
  } finally {
    await c.query('DROP TRIGGER IF EXISTS bench_w3_record ON df.instances').catch(() => undefined);
    await c.end();
  }
  const sc = await connect(ctx.superUrl);
  let ms: number[];
  try {
    const { rows } = await sc.query<{ ms: number }>(
      `SELECT extract(epoch FROM (min(v.began) - pg_xact_commit_timestamp(s.xmin))) * 1000 AS ms
         FROM bench_w3_api_start s JOIN bench_w3_seen v ON v.contender = 'workerd' AND s.label = 'bench-w3-' || v.sample
        GROUP BY s.label, s.xmin`,
    );
    ms = rows.map((r) => Number(r.ms));
  } finally {
    await sc.end();
  }
  const p50 = round(percentile(ms, 50));
  const p99 = round(percentile(ms, 99));
  ctx.log(`workerd W3: ${ms.length} samples, p50 ${p50} ms, p99 ${p99} ms, max ${round(Math.max(...ms))} ms`);
  return wd('POST /v1/instances committed → step begins: p50 ms', p50, 'ms', 'lower', {
    samples: ms.length,
    p50,
    p99,
    min: round(Math.min(...ms)),
    max: round(Math.max(...ms)),
    profile,
    api,
  });
}

// ---------------------------------------------------------------------------------------------------
// The Node side of the breakdown: the same engine over pg, every query counted and timed.

interface Counter {
  queries: number;
  ms: number;
  /** pool checkouts and the ms until the session was lent (a new session's setup, or ~0 from a warm pool) */
  checkouts: number;
  checkoutMs: number;
  /** set to an array to record the texts of the queries sent meanwhile */
  texts?: string[];
}

function countingDb(db: Db, counter: Counter): Db {
  const wrapClient = (c: DbClient): DbClient => ({
    query: (async (text: unknown, params?: unknown[]) => {
      const t0 = nowMs();
      const t = text as string | { text?: string };
      counter.texts?.push(String(typeof t === 'string' ? t : t?.text).replace(/\s+/g, ' ').slice(0, 90));
      try {
        return await c.query(text as never, params);
      } finally {
        counter.queries++;
        counter.ms += nowMs() - t0;
      }
    }) as DbClient['query'],
  });
  const lent = <T>(fn: (c: DbClient) => Promise<T>) => {
    const t0 = nowMs();
    return (c: DbClient) => {
      counter.checkouts++;
      counter.checkoutMs += nowMs() - t0;
      return fn(wrapClient(c));
    };
  };
  return {
    withClient: (fn) => db.withClient(lent(fn)),
    withTransaction: (fn) => db.withTransaction(lent(fn)),
    end: () => db.end(),
  };
}

export interface NodeProfile {
  msPerStep: number;
  runsPerStep: number;
  queriesPerStep: number;
  queryMsPerStep: number;
  queryMs: number;
  /** ms per step waiting for a session (new sessions in the per-invocation mode) */
  sessionMsPerStep: number;
  texts: string[];
}

interface ProfileMode {
  newSession: boolean;
  newEngine: boolean;
}

/**
 * Chains of N on engine.runOnce (no NOTIFY, no worker), one chain per mode, advanced one step each in
 * turn so that the load of this shared machine falls on every mode alike: ms, queries and query wait per
 * step. `newSession` gives every step a new pool, so a new session and a new backend with cold caches;
 * `newEngine` a new engine, so empty role and graph caches. Both together are the shape of a Workers
 * queue invocation, run on Node and pg/TCP. Each run targets the node the previous one made ready, as a
 * queue message does.
 */
async function nodeChainProfiles(ctx: BenchContext, avail: EngineAvailability, n: number, modes: ProfileMode[]): Promise<(NodeProfile | null)[]> {
  if (!avail.engine) return modes.map(() => null);
  await clearInstances(ctx);
  type Target = { instanceId: string; nodeId: string };
  type Runner = { runOnce(opts?: { target?: Target }): Promise<{ ready: { instanceId: string; nodeId: string }[] } | null> };
  const c = await connect(ctx.ownerUrl);
  const lanes: {
    mode: ProfileMode;
    instanceId: string;
    counter: Counter;
    texts: string[];
    raw: ReturnType<typeof createPgDb>;
    engine: Runner;
    newEngine: () => Runner;
    next: Target | null;
    runs: number;
    ms: number;
  }[] = [];
  try {
    const graph = (await c.query<{ g: string }>(`SELECT ${chainExpression(n)} AS g`)).rows[0].g;
    for (const mode of modes) {
      const counter: Counter = { queries: 0, ms: 0, checkouts: 0, checkoutMs: 0 };
      const newPool = () => createPgDb({ connectionString: ctx.ownerUrl, max: 3, applicationName: 'pgflare-bench-engine' });
      const lane = { mode, instanceId: '', counter, texts: [] as string[], raw: newPool(), engine: null as unknown as Runner, newEngine: null as unknown as () => Runner, next: null as Target | null, runs: 0, ms: 0 };
      // The engine keeps the Db it was made with; this one forwards to the lane's current pool.
      const db = countingDb(
        { withClient: (fn) => lane.raw.withClient(fn), withTransaction: (fn) => lane.raw.withTransaction(fn), end: () => lane.raw.end() },
        counter,
      );
      lane.newEngine = () => avail.engine!.createEngine({ db, log: engineLogger(ctx) }) as unknown as Runner;
      lane.engine = lane.newEngine();
      const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
      const { rows } = await c.query<{ id: string; root: string }>('SELECT id, root_node AS root FROM df.instances WHERE id = $1', [id]);
      lane.instanceId = rows[0].id;
      lane.next = { instanceId: rows[0].id, nodeId: rows[0].root };
      lanes.push(lane);
    }
    for (let open = lanes.length; open > 0; ) {
      open = 0;
      for (const lane of lanes) {
        if (!lane.next) continue;
        open++;
        if (lane.runs > 0 && lane.mode.newSession) {
          await lane.raw.end();
          lane.raw = createPgDb({ connectionString: ctx.ownerUrl, max: 3, applicationName: 'pgflare-bench-engine' });
        }
        if (lane.runs > 0 && lane.mode.newEngine) lane.engine = lane.newEngine();
        // Record the queries of one step in the middle of the chain (the first run is the activation).
        lane.counter.texts = lane.runs === Math.floor(n / 2) ? (lane.texts = []) : undefined;
        const t0 = nowMs();
        const r = await lane.engine.runOnce({ target: lane.next });
        lane.ms += nowMs() - t0;
        if (!r) throw new Error(`node chain profile: ${lane.next.instanceId}/${lane.next.nodeId} was not claimable`);
        lane.runs++;
        lane.next = r.ready[0] ? { instanceId: r.ready[0].instanceId, nodeId: r.ready[0].nodeId } : null;
      }
    }
    for (const lane of lanes) {
      const st = (await c.query<{ s: string }>('SELECT df.status($1) AS s', [lane.instanceId])).rows[0].s;
      if (st !== 'completed') throw new Error(`node chain profile: instance ${lane.instanceId} is ${st}, not completed`);
    }
    return lanes.map((l) => ({
      msPerStep: round(l.ms / n, 3),
      runsPerStep: round(l.runs / n, 3),
      queriesPerStep: round(l.counter.queries / n, 2),
      queryMsPerStep: round(l.counter.ms / n, 3),
      queryMs: round(l.counter.ms / l.counter.queries, 3),
      sessionMsPerStep: round(l.counter.checkoutMs / n, 3),
      texts: l.texts,
    }));
  } finally {
    await c.end();
    for (const l of lanes) await l.raw.end().catch(() => undefined);
  }
}

/** Session setup and `SELECT 1` round trips: pg over TCP, and the Neon driver over the proxy from Node. */
async function nodeRtt(ctx: BenchContext, proxy: WsProxy, s: WorkerdSizes) {
  const pgConnect: number[] = [];
  for (let i = 0; i < s.rttSessions; i++) {
    const t0 = nowMs();
    const c = new pg.Client({ connectionString: ctx.ownerUrl });
    await c.connect();
    pgConnect.push(nowMs() - t0);
    await c.end();
  }
  const pgQuery = await selectOnes(async () => {
    const c = new pg.Client({ connectionString: ctx.ownerUrl });
    await c.connect();
    return { query: (t: string) => c.query(t), end: () => c.end() };
  }, s.rttQueries);

  // The Neon driver in Node, through the same proxy: separates the WebSocket + proxy cost from workerd's.
  neonConfig.webSocketConstructor = WebSocket as never;
  const neonConnect: number[] = [];
  for (let i = 0; i < s.rttSessions; i++) {
    const db = createNeonDb({ connectionString: ctx.ownerUrl, wsProxy: proxy.address, max: 1 });
    const t0 = nowMs();
    const cl = await db.pool.connect();
    neonConnect.push(nowMs() - t0);
    cl.release();
    await db.end();
  }
  const neonDb = createNeonDb({ connectionString: ctx.ownerUrl, wsProxy: proxy.address, max: 1 });
  const neonQuery = await selectOnes(async () => {
    const cl = await neonDb.pool.connect();
    return { query: (t: string) => cl.query(t), end: async () => cl.release() };
  }, s.rttQueries);
  await neonDb.end();
  return { pgConnect, pgQuery, neonConnect, neonQuery };
}

async function selectOnes(open: () => Promise<{ query(t: string): Promise<unknown>; end(): Promise<void> }>, n: number): Promise<number[]> {
  const c = await open();
  const out: number[] = [];
  try {
    await c.query('SELECT 1');
    for (let i = 0; i < n; i++) {
      const t0 = nowMs();
      await c.query('SELECT 1');
      out.push(nowMs() - t0);
    }
  } finally {
    await c.end();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Printing

const f = (x: number | null | undefined, d = 2) => (x == null || !Number.isFinite(x) ? 'n/a' : String(round(x, d)));
const p50 = (xs: number[]) => round(percentile(xs, 50), 3);

interface Pair {
  workload: string;
  node: Measurement | undefined;
  workerd: Measurement | undefined;
}

function ratioText(p: Pair): string {
  const a = p.workerd?.value;
  const b = p.node?.value;
  if (a == null || b == null || b === 0) return 'n/a';
  const r = a / b;
  // Latencies: how many times slower; rates: the fraction of Node's rate.
  return `${round(r, 2)}×`;
}

// ---------------------------------------------------------------------------------------------------

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      chain: { type: 'string' },
      repeats: { type: 'string' },
      drain: { type: 'string' },
      'fan-out': { type: 'string' },
      w3: { type: 'string' },
      'synchronous-commit': { type: 'string', default: 'off' },
      'chain-steps': { type: 'string', default: '100' },
      out: { type: 'string', default: join(import.meta.dirname, 'results', 'workerd-latest.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) {
    console.log(`usage: npm run bench:workerd -- [options]     (or: npm run bench -- workerd [options])
  --quick                 smoke sizes (chain 100, drain 100, fan-out 100, W3 20 samples; ~2 min)
  --chain N               W1 chain length (default 300)       --repeats N   W1 repeats (default 1)
  --drain N               W2 one-step instances (default 300; at most 10000: one cron sweep sends them)
  --fan-out N             W2 JOIN branches (default 300)       --w3 N        W3 samples (default 100)
  --synchronous-commit on|off   (default off, as npm run bench)
  --chain-steps N         PGFLARE_CHAIN_STEPS of the chain-continuation W1 run (default 100)
  --out FILE              JSON results (default bench/results/workerd-latest.json)`);
    return;
  }
  const s = sizesFor(args.quick);
  if (args.chain) s.chain = Number(args.chain);
  if (args.repeats) s.chainRepeats = Number(args.repeats);
  if (args.drain) s.drainItems = Number(args.drain);
  if (args['fan-out']) s.fanOut = Number(args['fan-out']);
  if (args.w3) s.w3Samples = Number(args.w3);
  if (s.drainItems > 10_000) throw new Error('--drain must be ≤ 10000 (one cron sweep sends at most 10000 messages)');
  const chainSteps = Number(args['chain-steps']);
  if (!Number.isInteger(chainSteps) || chainSteps < 2) throw new Error('--chain-steps must be an integer ≥ 2');
  const syncCommit = args['synchronous-commit'];
  if (!['on', 'off'].includes(syncCommit)) throw new Error('--synchronous-commit must be on or off');

  const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'pgflare-bench-'));
  let server: EmbeddedServer | undefined;
  let proxy: WsProxy | undefined;
  let w: Workerd | undefined;
  const started = new Date();
  const cleanUp = async () => {
    await w?.dispose().catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  const settings = { synchronous_commit: syncCommit, track_commit_timestamp: 'on' };
  const m: Record<string, Measurement | undefined> = {};
  let breakdown: Record<string, unknown> = {};
  let failures: string[] = [];
  try {
    log(`starting PostgreSQL in ${dataDir} (synchronous_commit=${syncCommit})`);
    server = await startEmbeddedPostgres({ dataDir, settings });
    const admin = await connect(server.superuserUrl);
    await admin.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD '${OWNER_PASSWORD}'`);
    await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${OWNER}`);
    await admin.end();
    const ctx: BenchContext = {
      ownerUrl: server.urlFor(DATABASE, OWNER, OWNER_PASSWORD),
      superUrl: server.urlFor(DATABASE),
      quick: args.quick,
      durationW2: 0,
      windowSeconds: 5,
      log,
    };
    const db = createPgDb({ connectionString: ctx.ownerUrl, max: 1 });
    try {
      log(`migrated: ${(await migrate(db)).applied.length} migrations`);
    } finally {
      await db.end();
    }
    const c = await connect(ctx.ownerUrl);
    await c.query(W3_TABLES + ' CREATE TABLE IF NOT EXISTS bench_w2_ids (id text);');
    await c.end();
    const avail = await loadEngine();
    if (!avail.engine || !avail.worker) throw new Error(`the engine is not available: ${avail.engineWhy ?? avail.workerWhy}`);

    const [p, bundle] = await Promise.all([startProxyProcess(), bundleWorker('bench/workerd-entry.ts')]);
    proxy = p;
    log(`ws-proxy on ${proxy.address}; worker bundled (${Math.round(bundle.bytes.length / 1024)} KiB)`);

    const step = async (name: string, fn: () => Promise<Measurement | void>) => {
      log(`${name} …`);
      try {
        const r = await fn();
        if (r) m[name] = r;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        log(`${name} FAILED: ${msg}`);
        failures.push(`${name}: ${msg}`);
      }
    };

    // Node rows first (the same sizes), then workerd with the local queue, then workerd with 8 lanes.
    await step('W1 node', () => engineChain(ctx, avail, { chain: s.chain, chainRepeats: s.chainRepeats }));
    await step('W2 node', () => engineDrain(ctx, avail, { drainItems: s.drainItems }));
    await step('fan-out node', () => engineFanOut(ctx, avail, { fanOut: s.fanOut }));
    await step('W3 node', () => engineWakeup(ctx, avail, { w3Samples: s.w3Samples }));
    let nodeProfile: NodeProfile | null = null;
    let nodeFresh: NodeProfile | null = null;
    let nodeSession: NodeProfile | null = null;
    let nodeEngine: NodeProfile | null = null;
    await step('node chain profiles (pooled; new session, new engine, both per step; interleaved)', async () => {
      // ~50 ms a step with a new session: at most 150 steps per chain is plenty for a per-step mean.
      [nodeProfile, nodeSession, nodeEngine, nodeFresh] = await nodeChainProfiles(ctx, avail, Math.min(150, s.chain), [
        { newSession: false, newEngine: false },
        { newSession: true, newEngine: false },
        { newSession: false, newEngine: true },
        { newSession: true, newEngine: true },
      ]);
    });
    let rttNode: Awaited<ReturnType<typeof nodeRtt>> | undefined;
    await step('node round trips', async () => {
      rttNode = await nodeRtt(ctx, proxy!, s);
    });

    w = await startWorkerd(bundle.path, ctx.ownerUrl, proxy, 'local-queue');
    log('workerd started (local queue consumer: max_batch_size 1, max_batch_timeout 0)');
    let rttWorkerd: { connectMs: number[]; endMs: number[]; queryMs: number[] } | undefined;
    await step('workerd round trips', async () => {
      rttWorkerd = (await (await w!.fetch(`/__bench/rtt?n=${s.rttQueries}&sessions=${s.rttSessions}`)).json()) as typeof rttWorkerd;
    });
    await step('W1 workerd', () => workerdChain(ctx, w!, s));
    await step('W2 workerd', () => workerdDrain(ctx, w!, s, 'local-queue'));
    await step('fan-out workerd', () => workerdFanOut(ctx, w!, s, 'local-queue'));
    await step('W3 workerd', () => workerdWakeup(ctx, w!, s));
    await w.dispose();
    w = await startWorkerd(bundle.path, ctx.ownerUrl, proxy, 'lanes');
    log('workerd restarted without a consumer: the bench delivers with 8 in flight');
    await step('W2 workerd lanes', () => workerdDrain(ctx, w!, s, 'lanes'));
    await step('fan-out workerd lanes', () => workerdFanOut(ctx, w!, s, 'lanes'));
    await w.dispose();
    w = await startWorkerd(bundle.path, ctx.ownerUrl, proxy, 'local-queue', { PGFLARE_CHAIN_STEPS: String(chainSteps), PGFLARE_CHAIN_MS: '60000' });
    log(`workerd restarted with the local queue and chain continuation (PGFLARE_CHAIN_STEPS=${chainSteps})`);
    await step('W1 workerd chained', () => workerdChain(ctx, w!, s));

    breakdown = {
      node: nodeProfile,
      nodePerInvocation: nodeFresh,
      nodeNewSession: nodeSession,
      nodeNewEngine: nodeEngine,
      rtt: {
        pgTcp: rttNode && { connectP50: p50(rttNode.pgConnect), selectOneP50: p50(rttNode.pgQuery), selectOneMean: round(mean(rttNode.pgQuery), 3) },
        neonFromNode: rttNode && { connectP50: p50(rttNode.neonConnect), selectOneP50: p50(rttNode.neonQuery), selectOneMean: round(mean(rttNode.neonQuery), 3) },
        neonFromWorkerd: rttWorkerd && {
          connectP50: p50(rttWorkerd.connectMs),
          endP50: p50(rttWorkerd.endMs),
          selectOneP50: p50(rttWorkerd.queryMs),
          selectOneMean: round(mean(rttWorkerd.queryMs), 3),
        },
      },
    };
  } finally {
    await cleanUp();
  }

  const pairs: Pair[] = [
    { workload: 'W1 ms/step (lower is better)', node: m['W1 node'], workerd: m['W1 workerd'] },
    { workload: 'W1 ms/step, chain continuation', node: m['W1 node'], workerd: m['W1 workerd chained'] },
    { workload: 'W2 drain steps/s, local queue (higher is better)', node: m['W2 node'], workerd: m['W2 workerd'] },
    { workload: 'W2 drain steps/s, 8 in flight', node: m['W2 node'], workerd: m['W2 workerd lanes'] },
    { workload: 'W2 fan-out steps/s, local queue', node: m['fan-out node'], workerd: m['fan-out workerd'] },
    { workload: 'W2 fan-out steps/s, 8 in flight', node: m['fan-out node'], workerd: m['fan-out workerd lanes'] },
    { workload: 'W3 p50 ms (lower is better)', node: m['W3 node'], workerd: m['W3 workerd'] },
  ];
  console.log(report(pairs, breakdown, m, s, syncCommit, failures));
  const out = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    settings: { synchronous_commit: syncCommit, track_commit_timestamp: 'on' },
    sizes: s,
    measurements: m,
    breakdown,
    failures,
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${args.out}`);
  if (failures.length) process.exitCode = 1;
}

function report(pairs: Pair[], breakdown: Record<string, unknown>, m: Record<string, Measurement | undefined>, s: WorkerdSizes, syncCommit: string, failures: string[]): string {
  const out: string[] = [''];
  const detail = (name: string) => m[name]?.detail as { profile?: QueueProfile; cpuPerInvocation?: number | null; invocationsPerStep?: number | null } | undefined;
  const one = detail('W1 workerd');
  const chained = detail('W1 workerd chained');
  const nodeProf = breakdown.node as NodeProfile | null | undefined;
  out.push(
    `Issue 19 targets (workerd ÷ Node, same run; chain continuation: PGFLARE_CHAIN_STEPS as run, W1 only; queries: median per W1 queue invocation, chained: per step)`,
    table(
      targetRows({
        chain: { node: m['W1 node']?.value ?? null, one: m['W1 workerd']?.value ?? null, chained: m['W1 workerd chained']?.value ?? null },
        start: { node: m['W3 node']?.value ?? null, workerd: m['W3 workerd']?.value ?? null },
        drain: { node: m['W2 node']?.value ?? null, workerd: m['W2 workerd lanes']?.value ?? null },
        queries: {
          node: nodeProf?.queriesPerStep ?? null,
          one: one?.profile?.queriesP50 ?? null,
          chained: chained?.profile ? round(chained.profile.queriesSum / s.chain, 2) : null,
        },
        cpu: {
          one: one?.cpuPerInvocation ?? null,
          chained: chained?.cpuPerInvocation ?? null,
          chainedStepsPerInvocation: chained?.invocationsPerStep ? round(1 / chained.invocationsPerStep, 1) : null,
        },
      }),
    ),
    '',
  );
  out.push(
    `pgflare on workerd vs the Node runtime — same run, same PostgreSQL; synchronous_commit=${syncCommit}; ${cpus().length} cores shared: ` +
      `compare ratios, not absolute numbers. Sizes scaled down from issue 4 to keep the run short: chain ${s.chain} (1,000), W2 ${s.drainItems} instances (20,000), fan-out ${s.fanOut} (1,000), W3 ${s.w3Samples} samples (200).`,
  );
  out.push('', 'Ratios (workerd ÷ Node): for ms, how many times slower; for steps/s, the fraction of Node’s rate');
  const rows = [['workload', 'Node', 'workerd', 'workerd ÷ Node', 'notes']];
  for (const p of pairs) {
    const notes: string[] = [];
    const d = p.workerd?.detail as Record<string, unknown> | undefined;
    if (p.workerd?.unit === 'ms' && d) notes.push(`workerd p99 ${d.p99} ms, Node p99 ${(p.node?.detail as Record<string, unknown> | undefined)?.p99} ms`);
    if (d?.invocationsPerStep != null) notes.push(`${d.invocationsPerStep} queue invocations per step`);
    rows.push([
      p.workload,
      p.node?.value == null ? 'n/a' : `${p.node.value} ${p.node.unit}`,
      p.workerd?.value == null ? 'n/a' : `${p.workerd.value} ${p.workerd.unit}`,
      ratioText(p),
      notes.join('; '),
    ]);
  }
  out.push(table(rows));

  // Breakdown of one W1 step.
  const prof = (m['W1 workerd']?.detail as { profile?: QueueProfile; invocationsPerStep?: number } | undefined) ?? {};
  const q = prof.profile;
  const node = breakdown.node as NodeProfile | null;
  const fresh = breakdown.nodePerInvocation as NodeProfile | null;
  const nSession = breakdown.nodeNewSession as NodeProfile | null;
  const nEngine = breakdown.nodeNewEngine as NodeProfile | null;
  const rtt = (breakdown.rtt ?? {}) as Record<string, Record<string, number> | undefined>;
  out.push(
    '',
    'Where a W1 step’s time goes, ms per step. Node: the same engine on pg/TCP in an engine.runOnce loop, every query timed, with a new pool',
    '(session), a new engine, or both for every step ("per invocation": the way a Workers queue invocation runs it). workerd: timestamps inside',
    'the worker (bench/workerd-entry.ts).',
  );
  if (q && node) {
    const k = prof.invocationsPerStep ?? 1;
    const gap = q.gapMean ?? 0;
    const wTotal = (q.handlerMs + gap) * k;
    const wSession = q.connectMs * q.sessions * k;
    const wQueries = q.queryMs * k;
    const wQueue = (q.sendMs + gap) * k;
    const nOther = (p: NodeProfile | null) => (p ? p.msPerStep - p.queryMsPerStep - p.sessionMsPerStep : null);
    const ns = [node, nSession, nEngine, fresh];
    const cols = (get: (p: NodeProfile) => number, d = 3) => ns.map((p) => (p ? f(get(p), d) : 'n/a'));
    const wRows = [
      ['part', 'Node, pooled', 'Node, new session', 'Node, new engine', 'Node, per invocation', 'workerd, local queue', 'what it is'],
      ['total', ...cols((p) => p.msPerStep), f(wTotal, 3), 'workerd: invocations × (handler + between invocations)'],
      ['engine runs (invocations) per step', ...cols((p) => p.runsPerStep), f(k, 3), 'one queue invocation per run on Workers'],
      ['queries per step', ...cols((p) => p.queriesPerStep, 2), f(q.queries * k), 'a new engine reads current_user and the instance graph again'],
      ['waiting on queries', ...cols((p) => p.queryMsPerStep), f(wQueries, 3), 'a new backend runs its first queries with cold caches (plpgsql, plans, catalog)'],
      ['  mean per query', ...cols((p) => p.queryMs), f(q.queryMs / Math.max(q.queries, 1), 3), ''],
      ['session setup', ...cols((p) => p.sessionMsPerStep), f(wSession, 3), `${f(q.sessions)} new session(s) per invocation: connect, startup, SCRAM (workerd: WebSocket → proxy → TCP)`],
      ['queue send (sendBatch)', '0', '0', '0', '0', f(q.sendMs * k, 3), 'producer call to the local queue'],
      ['other', ...ns.map((p) => f(nOther(p), 3)), f(q.otherMs * k, 3), 'engine JavaScript, pool checkout/end, workerd glue'],
      [
        'between invocations',
        '—',
        '—',
        '—',
        '—',
        f(gap * k, 3),
        `handler returned → next entered (p50 ${f(q.gapP50)} ms; waitUntil(pool.end) settled ${f(q.settleMs)} ms after return): the local broker's turn-around`,
      ],
    ];
    out.push(table(wRows));
    if (fresh) {
      const total = wTotal - node.msPerStep;
      const share = (x: number) => `${f(x, 2)} ms (${Math.round((100 * x) / total)} %)`;
      const perInvocationShape = fresh.msPerStep - node.msPerStep;
      out.push(
        '',
        `workerd − Node (pooled) = ${f(total, 2)} ms per step, explained as:`,
        `  queue hop (send + the broker's turn-around between invocations):   ${share(wQueue)}`,
        `  a new session and engine per step, on pg/TCP (Node per invocation − Node pooled): ${share(perInvocationShape)}`,
        ...(nSession && nEngine
          ? [
              `    of which a new session (connect + cold backend; Node new session − pooled): ${f(nSession.msPerStep - node.msPerStep, 2)} ms,` +
                ` a new engine (2 more queries; Node new engine − pooled): ${f(nEngine.msPerStep - node.msPerStep, 2)} ms`,
            ]
          : []),
        `  the rest: WebSocket through the proxy, the Neon driver and workerd: ${share(total - wQueue - perInvocationShape)}`,
      );
    }
    out.push('', 'The queries of one W1 step, in order (text truncated):');
    out.push('  Node, pooled:');
    for (const t of node.texts ?? []) out.push(`    ${t}`);
    out.push('  workerd (one queue invocation):');
    for (const t of q.texts) out.push(`    ${t}`);
  } else out.push('  (missing: W1 workerd or the Node profile failed)');
  const r = [['round trip', 'pg over TCP (Node)', 'Neon driver over ws-proxy (Node)', 'Neon driver over ws-proxy (workerd)']];
  r.push(['new session, p50 ms', f(rtt.pgTcp?.connectP50, 3), f(rtt.neonFromNode?.connectP50, 3), f(rtt.neonFromWorkerd?.connectP50, 3)]);
  r.push(['SELECT 1, p50 ms', f(rtt.pgTcp?.selectOneP50, 3), f(rtt.neonFromNode?.selectOneP50, 3), f(rtt.neonFromWorkerd?.selectOneP50, 3)]);
  r.push(['SELECT 1, mean ms', f(rtt.pgTcp?.selectOneMean, 3), f(rtt.neonFromNode?.selectOneMean, 3), f(rtt.neonFromWorkerd?.selectOneMean, 3)]);
  out.push('', `Round trips on an idle connection (${s.rttQueries} × SELECT 1, ${s.rttSessions} new sessions)`, table(r));

  const profRows = [['phase', 'queue invocations', 'handler ms', 'sessions × ms', 'queries (ms)', 'send ms', 'hop p50 ms*', 'between p50 ms']];
  for (const name of ['W1 workerd', 'W1 workerd chained', 'W2 workerd', 'W2 workerd lanes', 'fan-out workerd', 'fan-out workerd lanes', 'W3 workerd']) {
    const p = (m[name]?.detail as { profile?: QueueProfile } | undefined)?.profile;
    if (!p) continue;
    profRows.push([name, String(p.invocations), f(p.handlerMs), `${f(p.sessions)} × ${f(p.connectMs)}`, `${f(p.queries)} (${f(p.queryMs)})`, f(p.sendMs), f(p.hopP50), f(p.gapP50)]);
  }
  out.push(
    '',
    'Per queue invocation, means. *hop = the message was sent → its handler entered: the queue latency for W1 and W3 (one message in flight); for the others it includes waiting behind the backlog',
    table(profRows),
  );
  const api = (m['W3 workerd']?.detail as { api?: Record<string, number> | null } | undefined)?.api;
  if (api) {
    out.push(
      '',
      `W3's POST /v1/instances invocations, means (the first step runs in their waitUntil): handler ${f(api.handlerMs)} ms, ` +
        `${f(api.sessions)} session(s) × ${f(api.connectMs)} ms, ${f(api.queries)} queries (${f(api.queryMs)} ms), ` +
        `waitUntil settled ${f(api.waitUntilMs)} ms after the response, ${f(api.sends)} queue sends`,
    );
  }
  if (failures.length) out.push('', 'FAILED:', ...failures.map((x) => `  ${x}`));
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
