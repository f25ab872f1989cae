/**
 * The Node side of bench/workerd.ts's breakdown: the same engine over pg, every query counted and timed,
 * and the round trips of pg and of the Neon driver from Node.
 */
import pg from 'pg';
import WebSocket from 'ws';
import { neonConfig } from '@neondatabase/serverless';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { createNeonDb } from '../src/runtime/worker/neon-db.ts';
import type { Db, DbClient } from '../src/engine/db.ts';
import { connect, nowMs, round, type BenchContext } from './common.ts';
import { chainExpression, clearInstances, engineLogger, type EngineAvailability } from './engine.ts';
import type { WorkerdSizes, WsProxy } from './workerd-setup.ts';

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
export async function nodeChainProfiles(ctx: BenchContext, avail: EngineAvailability, n: number, modes: ProfileMode[]): Promise<(NodeProfile | null)[]> {
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
export async function nodeRtt(ctx: BenchContext, proxy: WsProxy, s: WorkerdSizes) {
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
