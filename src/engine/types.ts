/**
 * The engine's ports and results: what a runtime hands createEngine (the Db, a Dispatcher, an HttpRunner,
 * options) and what it gets back (Engine, RunResult). Types only, so runtimes, tests and executors can
 * import them without loading the engine.
 */
import type { Db } from './db.ts';
import type { Logger } from '../log.ts';
import type { SubstitutionContext } from '../graph/substitute.ts';
import type { ClaimedRow } from './queries/claim.ts';
import type { StepOutcome } from './executors/outcome.ts';
import type { PointHandler } from './points.ts';
import type { RetryPolicy } from './retry.ts';
import type { Graph } from '../graph/graph.ts';
import type { Snapshot } from './snapshot.ts';

export interface ReadyNode {
  instanceId: string;
  nodeId: string;
  runAt: Date;
}

/** Receives nodes made ready by a committed checkpoint. Hints only: the rows are the truth. */
export type Dispatcher = (ready: ReadyNode[]) => void | Promise<void>;

/** Runs a lease-path HTTP step; the runtime provides it (fetch, DNS port, egress policy). */
export type HttpRunner = (step: HttpStep) => Promise<StepOutcome>;

export interface HttpStep {
  row: ClaimedRow;
  ctx: SubstitutionContext;
  idempotencyKey: string;
  /** Read from the database when the lease was taken: pg_durable.http_policy, pgflare.http_allowed_hosts. */
  policy: { mode: string; allowedHosts: string | null };
  /** The owner holds EXECUTE on df.http / df.http_multipart (or is a superuser): re-checked per request. */
  canUseHttp: boolean;
}

/**
 * The caches an engine may share with the engines made after it (EngineOptions.caches): plain data, no
 * I/O objects, so a Workers isolate keeps them between invocations while each invocation makes its own
 * engine over its own session. Safe to share: graphs are static per instance, a snapshot is only an
 * assumption df._apply checks (PFS01), and the role is the connection string's.
 */
export interface EngineCaches {
  graphs: Map<string, Graph>;
  graphOptions: Map<string, Map<string, ClaimedRow['options']>>;
  snapshots: Map<string, Snapshot>;
  workerRole?: string;
}

export interface EngineOptions {
  db: Db;
  log?: Logger;
  points?: PointHandler;
  dispatch?: Dispatcher;
  http?: HttpRunner;
  /** statement_timeout for a step's SQL (ms; 0 = none, pg_durable's behaviour). */
  stepTimeoutMs?: number;
  /** Lease length for non-transactional SQL (ms). */
  leaseMs?: number;
  /** Default retry policy for failed steps (default: no retry, as pg_durable). */
  retry?: RetryPolicy;
  /** Role steps run as when it equals the instance owner; read from the connection when omitted. */
  workerRole?: string;
  /** Superuser gate override (PGFLARE_ENABLE_SUPERUSER_INSTANCES); else the database setting. */
  enableSuperuserInstances?: boolean;
  /** Cap on a step's result text in bytes (PGFLARE_MAX_RESULT_BYTES; default limits.ts). */
  maxResultBytes?: number;
  /**
   * Vacuum df.nodes in the background after this many steps (queue-vacuum.ts); 0 or absent: never (the
   * Node worker's default is 2 000, PGFLARE_QUEUE_VACUUM_STEPS).
   */
  queueVacuumSteps?: number;
  /**
   * Largest batch of one-step instances runSeries runs in one transaction (batch.ts); 1 or absent: one
   * per transaction (the Node worker's default is 32, PGFLARE_BATCH_SIZE). runSeries keeps to its own
   * maxSteps; drain's may be passed by up to one batch per loop.
   */
  batchSize?: number;
  /** A batch that ran longer than this many ms makes the next one smaller (batch.ts; default 50). */
  batchBudgetMs?: number;
  /**
   * The connection to another database of the same server, for instances started with
   * df.start(…, database => name) (executors/other-database.ts); null or absent: none configured, and
   * such steps fail with 08001.
   */
  databases?: (name: string) => Db | null;
  /**
   * Caches to share with other engines (context.ts createEngineCaches): the Workers runtime keeps one
   * per isolate so a warm isolate's invocation does not read the role, the graph or the rows again.
   */
  caches?: EngineCaches;
  /** Counts every run (steps, failures, retries, latencies); src/runtime/node/metrics.ts is the Prometheus one. */
  metrics?: MetricsPort;
  /**
   * `db` goes through a transaction-mode pooler (PgBouncer, Hyperdrive): nothing may rely on session
   * state between transactions (pooled.ts). No prepared wake-up claim; non-transactional SQL steps run
   * on `directDb`, or fail naming PGFLARE_DIRECT_URL.
   */
  pooled?: boolean;
  /** A direct (unpooled) connection for what needs a session of its own (pooled.ts). */
  directDb?: Db;
}

export interface SeriesOptions {
  now?: Date;
  maxSteps?: number;
  /** Checked before each step. */
  more?: () => boolean;
  onResult?: (r: RunResult) => void;
  /**
   * Called when a claim finds nothing ready, with the session still held: resolve true to claim again
   * on it (woken, or the poll interval passed), false to end the series. Without it the series ends.
   * Keeping the session spares an idle worker's wake-up the pool checkout (bench/ W3).
   */
  idle?: () => Promise<boolean>;
}

export type RunKind = 'start' | 'step' | 'timer' | 'signal' | 'resume' | 'lease' | 'withdrawn' | 'retry' | 'contended';

export interface RunResult {
  kind: RunKind;
  instanceId: string;
  nodeId: string;
  ready: ReadyNode[];
  /** The claimed row's node type (SQL, HTTP, SLEEP, ...; a composite for a start or a resume). */
  nodeType?: string;
  /** When the row became due: the claim latency is the claim's time minus this. */
  runAt?: Date;
  /** The attempt failed for good (no retry left): the node's status is now failed. */
  failed?: boolean;
}

/**
 * Where the engine reports each run (src/engine/observe.ts), synchronously after its commit: a counter
 * increment, never awaited. Absent: nothing is counted.
 */
export interface MetricsPort {
  step(r: RunResult, timing: { durationMs: number; claimLatencyMs: number | null }): void;
}

export interface Engine {
  /**
   * Claims and runs at most one ready node; null when nothing is due at `now`. With `target`, only that
   * node (a queue message): a duplicate or late message finds it taken or done and returns null.
   */
  runOnce(opts?: { now?: Date; target?: { instanceId: string; nodeId: string } }): Promise<RunResult | null>;
  /**
   * Runs ready nodes one after another on one session until nothing is due, `maxSteps` ran or `more()`
   * says stop; each step's COMMIT also claims the next row (one round trip less per step for a busy
   * worker). Returns how many nodes ran.
   */
  runSeries(opts?: SeriesOptions): Promise<number>;
  /**
   * Checkpoints computed from the engine's copy of the rows, those found stale and done again, cached
   * graphs, queue vacuums run (queue-vacuum.ts), steps run in batches of two or more (batch.ts) and
   * batches undone (their rows ran again one per transaction), batches whose one message of steps failed
   * (a step raised or went over the result cap) and whose steps ran again one round trip each, a JOIN's
   * branch writes (fan-out.ts) and branches run in branch batches (branch-batch.ts).
   */
  stats(): { assumed: number; stale: number; cachedGraphs: number; vacuums: number; batched: number; undone: number; resent: number; branches: number; branchBatched: number; branchRewrites: number };
  /** Resolves when the engine's background work (a queue vacuum under way) has finished. */
  settled(): Promise<void>;
  /** Runs until nothing is due; returns how many nodes ran. */
  drain(opts?: { concurrency?: number; now?: Date; maxSteps?: number }): Promise<number>;
}
