/**
 * The engine's shared state, made once by createEngine and passed explicitly to every function of the
 * engine (as graphile-worker passes its shared options): the ports, the defaults a row's options
 * override, the caches that spare round trips (an instance's graph, its per-node options, the snapshot
 * of its rows; see snapshot.ts) and the counters stats() reports. Also the few helpers that read or fill
 * those caches: the graph of a claimed row, the worker's role, forgetting an instance.
 */
import type { Db, DbClient } from './db.ts';
import { silentLogger, type Logger } from '../log.ts';
import { buildGraph, type Graph } from '../graph/graph.ts';
import { loadGraphRows, type ClaimedRow, type GraphRows } from './queries/claim.ts';
import { noPoints, type PointHandler } from './points.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
import { createQueueVacuum, type QueueVacuum } from './queue-vacuum.ts';
import type { Snapshot } from './snapshot.ts';
import type { StepDefaults } from './step-policy.ts';
import type { EngineCaches, EngineOptions, HttpStep } from './types.ts';

export interface EngineContext extends StepDefaults {
  readonly options: EngineOptions;
  readonly db: Db;
  readonly log: Logger;
  /** The crash points (points.ts): `await ctx.hit('after-claim', …)`. */
  readonly hit: PointHandler;
  readonly maxResultBytes: number | undefined;
  /** Largest batch runSeries runs in one transaction (1: none). */
  readonly batchMax: number;
  /**
   * The batch size the last series ended with (BatchSizer), where the next starts: a drain in chunks
   * (maxSteps, more()) does not grow from one row again in every chunk. A series that found nothing ended at 1.
   */
  batchCarry: number;
  /** Cached static graphs, by instance id. */
  readonly graphs: Map<string, Graph>;
  /** Per-node options (df.retry, df.timeout) of cached graphs: a continued first step is not claimed. */
  readonly graphOptions: Map<string, Map<string, ClaimedRow['options']>>;
  /** This engine's copy of instances' rows (snapshot.ts). */
  readonly snapshots: Map<string, Snapshot>;
  /**
   * Checkpoints computed from a snapshot, those found stale (done again), batched steps, batches undone,
   * batches whose one message failed and whose steps ran again one round trip each (batch.ts), branch
   * writes, branches run in branch batches and their writes resent (branch-batch.ts).
   */
  readonly counts: { assumed: number; stale: number; batched: number; undone: number; resent: number; branches: number; branchBatched: number; branchRewrites: number };
  /** What the lease of an HTTP row read (its policy, the owner's right to df.http), for runLeased. */
  readonly httpAccess: WeakMap<ClaimedRow, Pick<HttpStep, 'policy' | 'canUseHttp'>>;
  /** A claimed row's one-step text (activate.ts oneStepText), asked for by the claim, a batch and the next claim's size. */
  readonly oneStepTexts: WeakMap<ClaimedRow, string | null>;
  /** Role steps run as when it equals the instance owner (roleOf reads it once). */
  workerRole: string | undefined;
  readonly queueVacuum: QueueVacuum;
}

export function createEngineCaches(): EngineCaches {
  return { graphs: new Map(), graphOptions: new Map(), snapshots: new Map() };
}

/** Node types without children (nodes_structure_check): as an instance's root, the graph is one row. */
export const LEAF_ROOT: ReadonlySet<string> = new Set(['SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL']);
const GRAPH_CACHE_MAX = 1000;

export function createContext(options: EngineOptions): EngineContext {
  const log = options.log ?? silentLogger;
  return {
    options,
    db: options.db,
    log,
    hit: options.points ?? noPoints,
    stepTimeoutMs: options.stepTimeoutMs ?? 0,
    retry: options.retry ?? DEFAULT_RETRY,
    enableSuperuserInstances: options.enableSuperuserInstances,
    maxResultBytes: options.maxResultBytes,
    batchMax: Math.max(1, Math.floor(options.batchSize ?? 1)),
    batchCarry: 1,
    graphs: options.caches?.graphs ?? new Map(),
    graphOptions: options.caches?.graphOptions ?? new Map(),
    snapshots: options.caches?.snapshots ?? new Map(),
    counts: { assumed: 0, stale: 0, batched: 0, undone: 0, resent: 0, branches: 0, branchBatched: 0, branchRewrites: 0 },
    httpAccess: new WeakMap(),
    oneStepTexts: new WeakMap(),
    workerRole: options.workerRole ?? options.caches?.workerRole,
    queueVacuum: createQueueVacuum(options.db, log, { everySteps: options.queueVacuumSteps ?? 0 }),
  };
}

/** Drops what the engine keeps about an instance (finished, or evicted from the graph cache). */
export function forget(ctx: EngineContext, instanceId: string): void {
  ctx.graphs.delete(instanceId);
  ctx.graphOptions.delete(instanceId);
  ctx.snapshots.delete(instanceId);
}

export async function roleOf(ctx: EngineContext, client: DbClient): Promise<string> {
  if (!ctx.workerRole) {
    ctx.workerRole = (await client.query<{ r: string }>('SELECT current_user::text AS r')).rows[0].r;
    if (ctx.options.caches) ctx.options.caches.workerRole = ctx.workerRole;
  }
  return ctx.workerRole;
}

/** The claimed row's instance graph, from the cache or built (and cached) from its rows. */
export async function graphOf(ctx: EngineContext, client: DbClient, row: ClaimedRow): Promise<Graph> {
  let g = ctx.graphs.get(row.instance_id);
  if (!g) {
    // A leaf at the root is the whole graph, and the claim returned it: no round trip (bench/ W2, W3).
    const rows =
      row.id === row.root_node && LEAF_ROOT.has(row.node_type)
        ? [{ id: row.id, node_type: row.node_type, query: row.query, result_name: row.result_name, left_node: null, right_node: null, options: row.options }]
        : await loadGraphRows(client, row.instance_id);
    g = cacheGraph(ctx, row, rows);
  }
  return g;
}

/** Builds and caches the claimed row's instance graph from its df.nodes rows (loaded with the claim, or by graphOf). */
export function cacheGraph(ctx: EngineContext, row: ClaimedRow, rows: GraphRows): Graph {
  const g = buildGraph(row.instance_id, row.root_node, rows);
  if (ctx.graphs.size >= GRAPH_CACHE_MAX) forget(ctx, ctx.graphs.keys().next().value!);
  ctx.graphs.set(row.instance_id, g);
  ctx.graphOptions.set(row.instance_id, new Map(rows.map((r) => [r.id, r.options])));
  return g;
}
