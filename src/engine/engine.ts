/**
 * The engine core: claim one ready df.nodes row, run it, checkpoint, report what became ready.
 * Runtime-agnostic: it sees the database through the Db port, time through `now`, and hands newly
 * ready nodes to a Dispatcher after commit (a Queue on Workers, the local loop on Node).
 *
 * Two paths (DESIGN 5):
 *  - transactional: claim, the user's SQL, the checkpoint and the successors' activation commit in one
 *    transaction, so a step's effects happen exactly once;
 *  - lease: HTTP and statements that cannot run in a transaction block first commit a lease
 *    (attempts + 1, run_at = lease end, so an expired lease is simply claimable again), run outside any
 *    transaction, then checkpoint if the lease is still theirs. At-least-once; HTTP carries a stable
 *    Idempotency-Key.
 */
import type { Db, DbClient } from './db.ts';
import { silentLogger, type Logger } from '../log.ts';
import {
  buildGraph,
  Checkpoint,
  checkpointReadSet,
  MissingData,
  type Changes,
  type Graph,
  type NodeState,
  type Outcome,
  type ScopeState,
} from '../graph/advance.ts';
import { parseNodeConfig } from '../graph/schema.ts';
import { substitute, type SubstitutionContext } from '../graph/substitute.ts';
import {
  beginAndClaim,
  claimedRows,
  claimSettings,
  claimSql,
  findSignal,
  prepareClaim,
  STEP_SAVEPOINT,
  loadGraphRows,
  relockLeased,
  type ClaimedRow,
  type PreparedClaim,
} from './queries/claim.ts';
import { isNonTransactional, RESTORE_SESSION, runBatchedStep, runSqlStep } from './executors/sql.ts';
import { BATCH_BUDGET_MS, BatchSizer, isSimpleStatement } from './batch.ts';
import { capStepResult } from './limits.ts';
import { foreignOwnerProblem, nonTransactionalForeignError, runSqlStepAsOwner } from './executors/runner.ts';
import { lastRows, literal, textArray } from './sql-text.ts';
import type { StepOutcome } from './executors/outcome.ts';
import { noPoints, type PointHandler } from './points.ts';
import { backoffMs, DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
import { createQueueVacuum } from './queue-vacuum.ts';

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
   * per transaction (the Node worker's default is 16, PGFLARE_BATCH_SIZE). runSeries keeps to its own
   * maxSteps; drain's may be passed by up to one batch per loop.
   */
  batchSize?: number;
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
   * batches undone (their rows ran again one per transaction).
   */
  stats(): { assumed: number; stale: number; cachedGraphs: number; vacuums: number; batched: number; undone: number };
  /** Resolves when the engine's background work (a queue vacuum under way) has finished. */
  settled(): Promise<void>;
  /** Runs until nothing is due; returns how many nodes ran. */
  drain(opts?: { concurrency?: number; now?: Date; maxSteps?: number }): Promise<number>;
}

const ACTIVE = new Set(['pending', 'running']);
/** Node types without children (nodes_structure_check): as an instance's root, the graph is one row. */
const LEAF_ROOT = new Set(['SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL']);
const GRAPH_CACHE_MAX = 1000;

export function createEngine(options: EngineOptions): Engine {
  const db = options.db;
  const log = options.log ?? silentLogger;
  const hit = options.points ?? noPoints;
  const retryPolicy = options.retry ?? DEFAULT_RETRY;
  const graphs = new Map<string, Graph>();
  /** Per-node options (df.retry, df.timeout) of cached graphs: a continued first step is not claimed. */
  const graphOptions = new Map<string, Map<string, ClaimedRow['options']>>();
  /** This engine's copy of instances' rows (see checkpoint). */
  const snapshots = new Map<string, Snapshot>();
  /** Checkpoints computed from a snapshot, and those whose copy turned out stale (done again). */
  const counts = { assumed: 0, stale: 0, batched: 0, undone: 0 };
  const batchMax = Math.max(1, Math.floor(options.batchSize ?? 1));
  const forget = (instanceId: string) => {
    graphs.delete(instanceId);
    graphOptions.delete(instanceId);
    snapshots.delete(instanceId);
  };
  const httpAccess = new WeakMap<ClaimedRow, Pick<HttpStep, 'policy' | 'canUseHttp'>>();
  let workerRole = options.workerRole;
  const queueVacuum = createQueueVacuum(db, log, { everySteps: options.queueVacuumSteps ?? 0 });

  async function graphOf(client: DbClient, row: ClaimedRow): Promise<Graph> {
    let g = graphs.get(row.instance_id);
    if (!g) {
      // A leaf at the root is the whole graph, and the claim returned it: no round trip (bench/ W2, W3).
      const rows =
        row.id === row.root_node && LEAF_ROOT.has(row.node_type)
          ? [{ id: row.id, node_type: row.node_type, query: row.query, result_name: row.result_name, left_node: null, right_node: null, options: row.options }]
          : await loadGraphRows(client, row.instance_id);
      g = buildGraph(row.instance_id, row.root_node, rows);
      if (graphs.size >= GRAPH_CACHE_MAX) forget(graphs.keys().next().value!);
      graphs.set(row.instance_id, g);
      graphOptions.set(row.instance_id, new Map(rows.map((r) => [r.id, r.options])));
    }
    return g;
  }

  async function roleOf(client: DbClient): Promise<string> {
    if (!workerRole) workerRole = (await client.query<{ r: string }>('SELECT current_user::text AS r')).rows[0].r;
    return workerRole;
  }

  /**
   * Locks the instance, runs `event` on the state machine, writes its changes. Returns null when the
   * instance or the node's scope is gone (cancelled, or a RACE loser): the caller abandons the step.
   *
   * When this engine's own last checkpoint of the instance left it a copy of the rows the state machine
   * needs (a Snapshot), it computes from that copy without reading, and the write carries the rows it
   * assumed: df._apply checks them under the instance lock and raises PFS01 if any changed, and commitTx
   * then checkpoints again from a fresh read (`fresh`). One round trip less per step (bench/ W1, W2).
   */
  async function checkpoint(
    client: DbClient,
    tx: Tx,
    row: ClaimedRow,
    now: Date,
    event: (cp: Checkpoint) => void,
    extra: { events?: unknown[]; leafChange?: Record<string, unknown>; requireScope?: string; fromClaim?: boolean; fresh?: boolean; noRead?: boolean } = {},
  ): Promise<Changes | null> {
    const graph = await graphOf(client, row);
    const read = checkpointReadSet(graph, row.id, row.stamp);
    if (extra.requireScope && !read.scopes.includes(extra.requireScope)) read.scopes.push(extra.requireScope);
    const carry = tx.carry;
    let fresh = extra.fresh ?? false;
    // Each MissingData round must add a row to the read set (a deep nest of JOINs failing upwards needs a
    // round per level); one that adds nothing would repeat forever.
    for (let round = 0; round < 1000; round++) {
      let pre: Loaded;
      let assumed = false;
      if (extra.fromClaim && round === 0) {
        // An activation: before it, every node is pending and no scope exists, and the claim read the
        // instance. If the state machine asks for a row anyway (MissingData), the next round reads it.
        pre = { instance: { status: row.instance_status, generation: row.generation }, nodes: [], scopes: [] };
        snapshots.set(row.instance_id, { complete: true, running: new Set(), instance: { ...pre.instance! }, nodes: new Map(), scopes: new Map() });
      } else {
        const cached = fresh ? null : fromSnapshot(snapshots.get(row.instance_id), read, row.id);
        if (cached) {
          pre = cached;
          assumed = true;
          counts.assumed++;
        } else {
          if (extra.noRead) throw new Error(`checkpoint of ${row.instance_id}/${row.id} needed to read rows (unexpected here)`);
          // One round trip: whatever the transaction still owes (savepoint release, session restore), then
          // lock the instance and read the rows the state machine needs.
          const res = await client.query(
            `${tx.prefix}SELECT df._lock_and_load(${literal(row.instance_id)}, ${textArray(read.nodes)}::varchar[], ${textArray(read.scopes)}) AS s`,
          );
          tx.prefix = '';
          pre = lastRows<{ s: Loaded }>(res)[0].s;
        }
      }
      const s = carry ? overlay(pre, carry) : pre;
      if (
        !s.instance ||
        !ACTIVE.has(s.instance.status) ||
        (extra.requireScope && !s.scopes.some((x) => x.id === extra.requireScope && x.status === 'running'))
      ) {
        if (!assumed) return null;
        // Only the copy says the instance or the scope is gone: make sure from the rows themselves.
        snapshots.delete(row.instance_id);
        continue;
      }
      const cp = new Checkpoint({
        graph,
        now,
        nodes: s.nodes.map(toNodeState),
        scopes: s.scopes.map(toScopeState),
        instanceGeneration: s.instance.generation,
        readyAt: new Date(row.run_at),
      });
      try {
        event(cp);
      } catch (e) {
        if (!(e instanceof MissingData)) throw e;
        const before = read.nodes.length + read.scopes.length;
        for (const n of e.nodes) if (!read.nodes.includes(n)) read.nodes.push(n);
        for (const sc of e.scopes) if (!read.scopes.includes(sc)) read.scopes.push(sc);
        // The copy lacks a row the state machine expects to exist: it is out of date, read the rows.
        if (assumed) fresh = true;
        else if (read.nodes.length + read.scopes.length === before) break;
        continue;
      }
      const own = cp.changes;
      if (extra.leafChange) own.nodes.set(row.id, { ...extra.leafChange, ...own.nodes.get(row.id) });
      // The activation this step continues (see runClaimed) is written with this checkpoint.
      const ch = carry ? mergeChanges(carry, own) : own;
      tx.carry = undefined;
      // Serialized when commitTx sends it: an activation whose first step continues in this transaction is
      // never sent on its own (runClaimed drops it), so it is not serialized either.
      const changes = () => serialize(ch, extra.events ?? [], graph);
      // Written together with COMMIT (see commitTx): one round trip for the checkpoint's write.
      if (assumed) {
        tx.write = { instanceId: row.instance_id, prefix: tx.prefix, changes, expect: expectation(pre, read) };
        tx.prefix = '';
        tx.redo = () => {
          tx.carry = carry;
          return checkpoint(client, tx, row, now, event, { ...extra, fresh: true, fromClaim: false });
        };
      } else {
        tx.write = { instanceId: row.instance_id, prefix: '', changes, expect: null };
        tx.redo = undefined;
      }
      tx.written = { instanceId: row.instance_id, pre, read, ch };
      if (ch.instance?.status === 'completed' || ch.instance?.status === 'failed') forget(row.instance_id);
      return ch;
    }
    throw new Error(`checkpoint of ${row.instance_id}/${row.id} kept needing more rows`);
  }

  /**
   * The crash point before commit, then the checkpoint's write and COMMIT in one round trip; with
   * `tx.ahead`, the same round trip opens the next claim transaction and claims (tx.next). Returns the
   * changes committed: `ch`, or those of a checkpoint done again because its copy was stale (null: the
   * instance or the step's scope is gone after all; the transaction is still open, nothing written).
   */
  async function commitTx(client: DbClient, tx: Tx, row: ClaimedRow, ch: Changes | null): Promise<{ ch: Changes | null } | null> {
    await hit('before-commit', { instanceId: row.instance_id, nodeId: row.id });
    const apply = tx.write ? applySql(tx.write) : null;
    const head = `${apply ? `${apply}; ` : ''}COMMIT`;
    const next = tx.ahead?.(1);
    const sql = next ? `${head}; BEGIN; ${claimSql(next.at, undefined, options.stepTimeoutMs ?? 0, false, next.limit)}; ${STEP_SAVEPOINT}` : head;
    let res: unknown;
    try {
      res = await client.query(sql);
    } catch (err) {
      const redo = tx.redo;
      if (!redo || (err as { code?: string }).code !== 'PFS01') throw err;
      counts.stale++;
      snapshots.delete(row.instance_id);
      tx.redo = undefined;
      tx.written = undefined;
      await client.query('ROLLBACK TO SAVEPOINT pgflare_cp');
      const again = await redo();
      if (!again) return null;
      return commitTx(client, tx, row, again);
    }
    tx.write = null;
    tx.redo = undefined;
    if (tx.written) remember(tx.written);
    tx.written = undefined;
    if (next) {
      const results = res as { rows: ClaimedRow[] }[];
      // The claim's result comes just before the savepoint's.
      tx.next = claimedRows(results[results.length - 2]);
    }
    return { ch };
  }

  /** After a commit: the instance's rows as this engine now knows them (see checkpoint). */
  function remember(w: NonNullable<Tx['written']>): void {
    if (!graphs.has(w.instanceId)) {
      snapshots.delete(w.instanceId);
      return;
    }
    const snap = snapshots.get(w.instanceId) ?? { complete: false, running: new Set<string>(), instance: { status: '', generation: 0 }, nodes: new Map(), scopes: new Map() };
    const graph = graphs.get(w.instanceId)!;
    if (!advanceSnapshot(snap, w.pre, w.read, w.ch, (id) => LEAF_ROOT.has(graph.nodes.get(id)?.type ?? ''))) {
      snapshots.delete(w.instanceId);
      return;
    }
    snapshots.set(w.instanceId, snap);
  }

  function readyOf(instanceId: string, ch: Changes | null): ReadyNode[] {
    return (ch?.ready ?? []).map((r) => ({ instanceId, nodeId: r.id, runAt: new Date(r.runAt) }));
  }

  async function afterCommit(row: ClaimedRow, kind: RunKind, ch: Changes | null): Promise<RunResult> {
    await hit('after-commit', { instanceId: row.instance_id, nodeId: row.id });
    const ready = readyOf(row.instance_id, ch);
    if (ready.length && options.dispatch) {
      try {
        await options.dispatch(ready);
      } catch (err) {
        // The rows are ready whatever happens here; the sweep finds any that lost their message.
        log.warn('dispatch failed', { instance: row.instance_id, error: err });
      }
    }
    return { kind, instanceId: row.instance_id, nodeId: row.id, ready };
  }

  function substitutionContext(row: ClaimedRow): SubstitutionContext {
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries(row.vars ?? {})) if (v !== null) vars[k] = v;
    // A workflow's start input is the named result `input`; a node named `input` shadows it.
    const results = row.input === null ? (row.named ?? {}) : { input: row.input, ...row.named };
    return { instanceId: row.instance_id, label: row.label, vars, results };
  }

  /** The superuser gate and a vanished owner, checked when an instance is first loaded (SPEC §6.1). */
  function ownerBlock(row: ClaimedRow): string | null {
    if (!row.owner_exists) return `Instance ${row.instance_id}: submitted_by role no longer exists in pg_roles`;
    const gateOn = options.enableSuperuserInstances ?? ['on', 'true', '1', 'yes'].includes(row.superuser_gate.toLowerCase());
    if (row.owner_is_superuser && !gateOn) {
      return `pg_durable blocked instance ${row.instance_id}: submitted_by role "${row.owner}" is a superuser, but pg_durable.enable_superuser_instances is off`;
    }
    return null;
  }

  /** The node's own df.retry policy, else the engine default. */
  function policyFor(row: ClaimedRow): RetryPolicy {
    const r = row.options?.retry;
    if (!r) return retryPolicy;
    return { maxAttempts: r.max_attempts, baseMs: r.backoff_seconds * 1000, maxMs: r.max_backoff_seconds * 1000, jitter: 1 };
  }

  /** statement_timeout for a SQL step: the node's df.timeout, else the engine default. */
  function timeoutFor(row: ClaimedRow): number {
    const t = row.options?.timeout_seconds;
    return typeof t === 'number' && t > 0 ? Math.round(t * 1000) : (options.stepTimeoutMs ?? 0);
  }

  /** The node's own statement_timeout when it differs from the default the claim set, else null. */
  function ownTimeout(row: ClaimedRow): number | null {
    const timeout = timeoutFor(row);
    return timeout === (options.stepTimeoutMs ?? 0) ? null : timeout;
  }

  /** Turns a finished attempt into the checkpoint event: complete, or retry per policy. */
  function leafEvent(row: ClaimedRow, outcome: Outcome, now: Date, attempt: number, events: unknown[]) {
    const policy = policyFor(row);
    if (outcome.kind === 'fail' && attempt < policy.maxAttempts) {
      const at = new Date(now.getTime() + backoffMs(policy, attempt));
      events.push({ node_id: row.id, kind: 'attempt_failed', attempt, detail: outcome.error });
      return (cp: Checkpoint) => cp.retry(row.id, at);
    }
    if (outcome.kind === 'fail') events.push({ node_id: row.id, kind: 'failed', attempt, detail: outcome.error });
    return (cp: Checkpoint) => cp.complete(row.id, row.stamp!, outcome);
  }

  /** Takes a claimed row out of the queue, unless it was re-activated (new stamp) in the meantime. */
  async function withdraw(client: DbClient, row: ClaimedRow): Promise<void> {
    await client.query(
      `UPDATE df.nodes SET run_at = NULL, updated_at = now()
        WHERE instance_id = $1 AND id = $2 AND status_details ->> 'execution_id' IS NOT DISTINCT FROM $3 AND attempts = $4`,
      [row.instance_id, row.id, row.stamp, row.attempts],
    );
  }

  /**
   * The step text a row runs in a batch, or null when it cannot join one: only an instance's first claim
   * of a SQL root (a one-step instance, whose whole run is one checkpoint computed from the claimed row),
   * owned by the worker's role (others run through their step runner), unblocked, and a step that
   * isSimpleStatement accepts (a DML first word: never transaction control) and that runs inside a
   * transaction.
   */
  function batchStep(row: ClaimedRow): string | null {
    if (batchMax <= 1 || row.owner !== workerRole) return null;
    const text = oneStepText(row);
    return text !== null && isSimpleStatement(text) ? text : null;
  }

  /**
   * A one-step instance's statement, substituted, when its first claim can run it at once: a SQL root,
   * first claimed, active, not blocked, a statement that runs inside a transaction. (Ownership is the
   * caller's check.) Its activation reads nothing and changes nothing the statement sees. Kept per
   * claimed row: the claim, a batch and the next claim's size all ask about the same row.
   */
  function oneStepText(row: ClaimedRow): string | null {
    let text = oneStepTexts.get(row);
    if (text === undefined) {
      text = null;
      if (row.node_type === 'SQL' && row.id === row.root_node && row.stamp === null && ACTIVE.has(row.instance_status) && ownerBlock(row) === null) {
        const sub = substitute(row.query ?? '', substitutionContext(row), 'sql');
        if (sub.ok && !isNonTransactional(sub.text)) text = sub.text;
      }
      oneStepTexts.set(row, text);
    }
    return text;
  }
  const oneStepTexts = new WeakMap<ClaimedRow, string | null>();

  /**
   * A one-step instance's first claim: its statement is sent at once, and the activation is computed
   * only when it has run. The activation reads nothing the statement sees, so it can wait; computing it
   * while the server ran the statement (or before sending it) delayed the step: on this 2-core machine
   * the woken backend was queued behind this busy process (bench/w3-trace.ts, "send → clock_timestamp()"
   * 0.14-0.15 ms against 0.09-0.10 when this process sleeps meanwhile). Then as runClaimed's
   * continuation: the step's checkpoint carries the activation.
   */
  async function runOneStep(client: DbClient, tx: Tx, row: ClaimedRow, now: Date, text: string): Promise<RunResult | { lease: ClaimedRow }> {
    await hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
    const stepTimeout = ownTimeout(row);
    // One plain statement goes over the simple protocol, as in a batch (isSimpleStatement); anything else
    // over the extended one, which refuses multi-statement text as pg_durable does.
    const out = await (isSimpleStatement(text)
      ? runBatchedStep(client, stepTimeout === null ? '' : `SELECT set_config('statement_timeout', '${stepTimeout}', true); `, text, 'pgflare_step', options.maxResultBytes)
      : runSqlStep(client, text, { inTransaction: true, statementTimeoutMs: stepTimeout, maxResultBytes: options.maxResultBytes }));
    // noRead: the session is as the statement left it until the checkpoint's restore.
    const start = await checkpoint(client, tx, row, now, (cp) => cp.start(), { fromClaim: true, noRead: true });
    const next = start ? continuation(row, start, now) : null;
    if (!start || !next) throw new Error(`instance ${row.instance_id}: a one-step instance's activation did not continue with its step`);
    tx.write = null;
    tx.carry = { ...start, ready: start.ready.filter((r) => r.id !== next.id) };
    return runClaimed(client, tx, next, now, out);
  }
  const batchable = (row: ClaimedRow) => batchStep(row) !== null;

  /**
   * Runs claimed one-step instances in the open claim transaction (batch.ts): each is activated and its
   * step run under a savepoint of its own, the session restored between steps, in one round trip per
   * step; then one df._apply_many writes every checkpoint with the COMMIT (and, with `ahead`, the next
   * claim). It stops early at a row that cannot join (`rows[0]` can) or when the batch has run longer
   * than BATCH_BUDGET_MS; the rows it did not run are only locked and are free again at the COMMIT.
   * When the write fails (a concurrent df.cancel made a copy stale, a node row is held) the whole
   * transaction is rolled back, nothing of it happened, and its rows run again one per transaction.
   */
  async function runBatch(
    client: DbClient,
    rows: ClaimedRow[],
    now: Date,
    ahead: Ahead | null,
    sizer: BatchSizer,
  ): Promise<{ results: RunResult[]; next?: ClaimedRow[] }> {
    const started = Date.now();
    const items: { row: ClaimedRow; tx: Tx; ch: Changes; kind: RunKind }[] = [];
    const defaultTimeout = options.stepTimeoutMs ?? 0;
    // What the transaction owes before its next statement: the last step's savepoint release and the
    // session restore (sent with the next step, or with the write).
    let owed = '';
    let cut = false;
    let overBudget = false;
    const undo = async (why: unknown) => {
      await client.query('ROLLBACK');
      for (const it of items) forget(it.row.instance_id);
      for (const r of rows) forget(r.instance_id);
      counts.undone++;
      sizer.batch({ claimed: rows.length, ran: 0, cut: false, overBudget: false, failed: true });
      log.warn('batch undone; its rows run again one per transaction', { rows: rows.length, error: why });
      return { results: [] };
    };
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (i > 0 && Date.now() - started > BATCH_BUDGET_MS) {
        overBudget = true;
        break;
      }
      const text = batchStep(row);
      if (text === null) {
        cut = true;
        break;
      }
      await hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
      const tx: Tx = { prefix: owed, write: null };
      // The activation, from the claimed row alone (no read), carried into the step's checkpoint as in
      // runClaimed.
      const start = await checkpoint(client, tx, row, now, (cp) => cp.start(), { fromClaim: true });
      owed = tx.prefix;
      const step = start ? continuation(row, start, now) : null;
      if (!start || !step) return undo(new Error(`instance ${row.instance_id}: no first step to continue with`));
      tx.write = null;
      tx.carry = { ...start, ready: start.ready.filter((r) => r.id !== step.id) };
      await hit('after-claim', { instanceId: step.instance_id, nodeId: step.id });
      // The first row's settings and savepoint came with the claim; later rows bring their own.
      const savepoint = i === 0 ? 'pgflare_step' : `pgflare_step_${i}`;
      const own = ownTimeout(step);
      const head =
        i === 0
          ? own === null
            ? owed
            : `${owed}SELECT set_config('statement_timeout', '${own}', true); `
          : `${owed}SELECT ${claimSettings(`'${timeoutFor(step)}'`)}; SAVEPOINT ${savepoint}; `;
      owed = '';
      const t0 = Date.now();
      let out;
      try {
        out = await runBatchedStep(client, head, text, savepoint, options.maxResultBytes);
      } catch (err) {
        // The round trip failed before the step's savepoint existed: the transaction's state is unknown.
        return undo(err);
      }
      if (Date.now() - t0 > BATCH_BUDGET_MS) overBudget = true;
      const attempt = step.attempts + 1;
      const events: unknown[] = [];
      const outcome: Outcome = out.ok ? { kind: 'ok', text: out.resultText } : { kind: 'fail', error: out.error };
      tx.prefix = `RELEASE SAVEPOINT ${savepoint}; ${RESTORE_SESSION}; `;
      const ch = await checkpoint(client, tx, step, now, leafEvent(step, outcome, now, attempt, events), {
        events,
        leafChange: { attempts: attempt },
        requireScope: scopeIdOf(step.stamp!),
      });
      // (checkpoint set tx.write; TypeScript still sees the null assigned above.)
      const write = tx.write as Write | null;
      if (!ch || !write || ch.scopeDeletes.size || ch.cancelScopes.length) {
        return undo(new Error(`instance ${row.instance_id}: its checkpoint cannot join a batch`));
      }
      owed = write.prefix || tx.prefix;
      write.prefix = '';
      tx.prefix = '';
      const retried = events.some((e) => (e as { kind: string }).kind === 'attempt_failed');
      items.push({ row: step, tx, ch, kind: retried ? 'retry' : 'step' });
      if (overBudget) break;
    }
    for (const it of items) await hit('before-commit', { instanceId: it.row.instance_id, nodeId: it.row.id });
    const payload = items.map(({ tx }) => ({ id: tx.write!.instanceId, changes: tx.write!.changes(), ...(tx.write!.expect ? { expect: tx.write!.expect } : {}) }));
    sizer.batch({ claimed: rows.length, ran: items.length, cut, overBudget, failed: false });
    const next = ahead?.(items.length);
    const claim = next ? `; BEGIN; ${claimSql(next.at, undefined, defaultTimeout, false, next.limit)}; ${STEP_SAVEPOINT}` : '';
    let res: unknown;
    try {
      res = await client.query(`${owed}SELECT df._apply_many(${literal(JSON.stringify(payload))}::jsonb); COMMIT${claim}`);
    } catch (err) {
      if (!BATCH_UNDO.has((err as { code?: string }).code ?? '')) throw err;
      return undo(err);
    }
    if (items.length > 1) counts.batched += items.length;
    const results: RunResult[] = [];
    for (const it of items) {
      if (it.tx.written) remember(it.tx.written);
      results.push(await afterCommit(it.row, it.kind, it.ch));
    }
    if (!next) return { results };
    const out = res as { rows: ClaimedRow[] }[];
    return { results, next: claimedRows(out[out.length - 2]) };
  }

  /**
   * One step on `client`, or a batch: claims (or takes `pending`, the rows the previous step's COMMIT
   * already claimed; empty = that claim found nothing), runs, commits. With `ahead`, the COMMIT also
   * claims the next rows. With `sizer` (runSeries) a claim may take several rows: when the first can join
   * a batch they run as one (runBatch); otherwise the first runs alone and the others, only locked, are
   * free again at its commit.
   */
  async function stepOn(
    client: DbClient,
    now: Date,
    target: { instanceId: string; nodeId: string } | undefined,
    pending: ClaimedRow[] | undefined,
    ahead: Ahead | null,
    prepared: PreparedClaim = false,
    sizer?: BatchSizer,
  ): Promise<{ claimed: boolean; results: RunResult[]; lease?: ClaimedRow; next?: ClaimedRow[] }> {
    let claimed: ClaimedRow | null = null;
    try {
      // BEGIN, the claim, and a SQL step's savepoint and settings, in one round trip.
      const rows = pending ?? (await beginAndClaim(client, now, target, options.stepTimeoutMs ?? 0, prepared, sizer?.size ?? 1));
      if (!rows.length) {
        await client.query('COMMIT');
        return { claimed: false, results: [] };
      }
      if (sizer && rows.length > 1 && batchable(rows[0])) return { claimed: true, ...(await runBatch(client, rows, now, ahead, sizer)) };
      const row = rows[0];
      claimed = row;
      await hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
      // Whether the next claim may take several rows is decided when it is sent (with this COMMIT), off
      // the path between this claim and its step.
      const next: Ahead | null = sizer && ahead ? (inflight) => (sizer.single(batchable(row)), ahead(inflight)) : ahead;
      const tx: Tx = { prefix: 'RELEASE SAVEPOINT pgflare_step; ', write: null, ahead: next };
      const r = await runClaimed(client, tx, row, now);
      if ('lease' in r) return { claimed: true, results: [], lease: r.lease };
      return { claimed: true, results: [r], next: tx.next };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A checkpoint met a node row another worker holds (NOWAIT in df._apply): nothing happened,
      // the claimed row is ready again, and the next try comes after that worker has moved on.
      if (isLockNotAvailable(err) && claimed) {
        const row: ClaimedRow = claimed;
        // Step aside briefly so the same row is not re-run in a tight loop while the holder finishes.
        await client.query(
          `UPDATE df.nodes SET run_at = run_at + interval '250 milliseconds'
            WHERE instance_id = $1 AND id = $2 AND status_details ->> 'execution_id' IS NOT DISTINCT FROM $3 AND run_at IS NOT NULL`,
          [row.instance_id, row.id, row.stamp],
        );
        return { claimed: true, results: [{ kind: 'contended' as const, instanceId: row.instance_id, nodeId: row.id, ready: [] }] };
      }
      throw err;
    }
  }

  async function runOnce(opts: { now?: Date; target?: { instanceId: string; nodeId: string } } = {}): Promise<RunResult | null> {
    const now = opts.now ?? new Date();
    const out = await db.withClient((client) => stepOn(client, now, opts.target, undefined, null));
    const result = out.lease ? await runLeased(out.lease, now) : (out.results[0] ?? null);
    if (result) queueVacuum.stepDone();
    return result;
  }

  async function runSeries(opts: SeriesOptions = {}): Promise<number> {
    const max = opts.maxSteps ?? Number.POSITIVE_INFINITY;
    let n = 0;
    const sizer = new BatchSizer(batchMax);
    const more = () => n < max && (opts.more?.() ?? true);
    const ran = (r: RunResult) => {
      n++;
      queueVacuum.stepDone();
      opts.onResult?.(r);
    };
    while (more()) {
      let lease: { row: ClaimedRow; now: Date } | null = null;
      const idle = await db.withClient(async (client) => {
        let next: ClaimedRow[] | undefined;
        // The claim is prepared on this session (only right after an idle wait: see prepareClaim).
        let prepared: PreparedClaim = false;
        // Whether a row can join a batch depends on its owner being the worker's role.
        if (batchMax > 1) await roleOf(client);
        try {
          while (more()) {
            const now = opts.now ?? new Date();
            // The next claim rides on this step's COMMIT unless this is the last step allowed.
            const ahead: Ahead = (inflight) => {
              const left = max - n - inflight;
              return left > 0 ? { at: opts.now ?? new Date(), limit: Math.min(sizer.size, left) } : null;
            };
            const pending = next;
            next = undefined;
            if (pending === undefined) sizer.size = Math.min(sizer.size, Math.max(1, max - n));
            const out = await stepOn(client, now, undefined, pending, ahead, prepared, sizer);
            // A SQL step's session restore deallocates it.
            if (out.claimed) prepared = false;
            next = out.next;
            if (out.lease) {
              lease = { row: out.lease, now };
              return false;
            }
            if (!out.claimed) {
              // After a wait the queue was empty: the claim a wake-up sends takes one row (prepared).
              sizer.size = 1;
              if (!opts.idle) return true;
              if (!prepared) prepared = await prepareClaim(client);
              if (await opts.idle()) continue;
              return true;
            }
            for (const r of out.results) ran(r);
          }
          return false;
        } finally {
          // Stopped with a row claimed ahead: give it back (nothing was written in its transaction).
          if (next !== undefined) await client.query('ROLLBACK').catch(() => undefined);
        }
      });
      if (lease) {
        const l: { row: ClaimedRow; now: Date } = lease;
        ran(await runLeased(l.row, l.now));
        continue;
      }
      if (idle) break;
    }
    return n;
  }

  /** Runs a claimed row inside the open claim transaction and commits (or returns the row to run on a lease). */
  async function runClaimed(
    client: DbClient,
    tx: Tx,
    row: ClaimedRow,
    now: Date,
    /** A SQL step's outcome when its statement already ran (a one-step instance's early step, below). */
    ran?: StepOutcome,
  ): Promise<RunResult | { lease: ClaimedRow }> {
    const commit = async (kind: RunKind, ch: Changes | null) => {
      const done = await commitTx(client, tx, row, ch);
      return done ? afterCommit(row, kind, done.ch) : abandon();
    };
    const abandon = async () => {
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await withdraw(client, row);
      await client.query('COMMIT');
      return { kind: 'withdrawn' as const, instanceId: row.instance_id, nodeId: row.id, ready: [] };
    };

    if (!ACTIVE.has(row.instance_status)) {
      await withdraw(client, row);
      return commit('withdrawn', null);
    }
    // The instance's first claim: df.start only made its root claimable.
    if (row.id === row.root_node && row.stamp === null) {
      // Another role's instance runs only if its SQL steps can run as that role (its step runner).
      const worker = await roleOf(client);
      const blocked = ownerBlock(row) ?? (worker !== row.owner ? await foreignOwnerProblem(client, row.owner) : null);
      if (blocked) {
        await withdraw(client, row);
        await client.query('SELECT df._apply($1, $2)', [row.instance_id, JSON.stringify({ instance: { status: 'failed', output: blocked } })]);
        log.warn('instance blocked', { instance: row.instance_id, reason: blocked });
        return commit('withdrawn', null);
      }
      const early = worker === row.owner && tx.prefix ? oneStepText(row) : null;
      if (early !== null) return runOneStep(client, tx, row, now, early);
      const ch = await checkpoint(client, tx, row, now, (cp) => cp.start(), { fromClaim: true });
      if (!ch) return abandon();
      const row2 = tx.prefix ? continuation(row, ch, now) : null;
      if (row2) {
        // The first step runs in the activating transaction, and the activation is written with the
        // step's checkpoint: one claim, one checkpoint and one commit per one-step instance instead of
        // two (bench/ W2, W3). Nothing is written before the step's SQL runs, so the step holds only
        // the claimed row (df.cancel never waits for it), and a crash or a failed checkpoint leaves the
        // instance unstarted. The step's SQL runs under the claim's savepoint, still open.
        tx.write = null;
        tx.carry = { ...ch, ready: ch.ready.filter((r) => r.id !== row2.id) };
        await hit('after-claim', { instanceId: row2.instance_id, nodeId: row2.id });
        return runClaimed(client, tx, row2, now);
      }
      return commit('start', ch);
    }
    // Only a leaf the engine activated itself runs: status running, in a live scope. Anything else
    // (a run_at set by hand, a stale row) is withdrawn.
    if (row.scope_status !== 'running' || row.stamp === null || row.status !== 'running') return abandon();
    if (row.state && row.state.resume === true) {
      const ch = await checkpoint(client, tx, row, now, (cp) => cp.resumeLoop(row.id, row.stamp!));
      return ch ? commit('resume', ch) : abandon();
    }

    const attempt = row.attempts + 1;
    const events: unknown[] = [];
    const leaf = async (kind: RunKind, outcome: Outcome) => {
      const ch = await checkpoint(client, tx, row, now, leafEvent(row, outcome, now, attempt, events), {
        events,
        leafChange: { attempts: attempt },
        requireScope: scopeIdOf(row.stamp!),
      });
      return ch ? commit(outcome.kind === 'fail' && events.some((e) => (e as { kind: string }).kind === 'attempt_failed') ? 'retry' : kind, ch) : abandon();
    };

    switch (row.node_type) {
      case 'SQL': {
        if (ran) {
          tx.prefix = `RELEASE SAVEPOINT pgflare_step; ${RESTORE_SESSION}; `;
          return leaf('step', ran.ok ? { kind: 'ok', text: ran.resultText } : { kind: 'fail', error: ran.error });
        }
        const sub = substitute(row.query ?? '', substitutionContext(row), 'sql');
        if (!sub.ok) return leaf('step', { kind: 'fail', error: sub.error });
        const role = await roleOf(client);
        if (isNonTransactional(sub.text)) {
          if (role !== row.owner) return leaf('step', { kind: 'fail', error: nonTransactionalForeignError(row.owner, role) });
          return takeLease(client, row, now, options.leaseMs ?? 30 * 60_000);
        }
        const stepTimeout = ownTimeout(row);
        let out =
          role === row.owner
            ? await runSqlStep(client, sub.text, { inTransaction: true, statementTimeoutMs: stepTimeout, maxResultBytes: options.maxResultBytes })
            : await runSqlStepAsOwner(client, row.owner, sub.text, { statementTimeoutMs: stepTimeout });
        if (role !== row.owner && out.ok) {
          // Same result cap as the direct path; over it, undo what the statement did.
          out = capStepResult(out, options.maxResultBytes);
          if (!out.ok) await client.query('ROLLBACK TO SAVEPOINT pgflare_step');
        }
        // The step may have changed the session: restore it before the checkpoint runs on it.
        tx.prefix = `RELEASE SAVEPOINT pgflare_step; ${RESTORE_SESSION}; `;
        return leaf('step', out.ok ? { kind: 'ok', text: out.resultText } : { kind: 'fail', error: out.error });
      }
      case 'SLEEP': {
        const cfg = parseNodeConfig({ node_type: 'SLEEP', query: row.query });
        const seconds = cfg.node_type === 'SLEEP' ? cfg.seconds : 0;
        return leaf('timer', { kind: 'ok', text: `{"slept":true,"seconds":${seconds}}` });
      }
      case 'WAIT_SCHEDULE':
        return leaf('timer', { kind: 'ok', text: '{"scheduled":true}' });
      case 'SIGNAL':
        return runSignal(client, row, now, leaf, commit);
      case 'HTTP':
      case 'HTTP_MULTIPART': {
        let timeout = 30;
        try {
          const cfg = parseNodeConfig({ node_type: row.node_type, query: row.query });
          if (cfg.node_type === 'HTTP' || cfg.node_type === 'HTTP_MULTIPART') timeout = Number(cfg.config.timeout_seconds ?? 30);
        } catch (e) {
          return leaf('step', { kind: 'fail', error: (e as Error).message });
        }
        const fn = row.node_type === 'HTTP' ? 'df.http(text,text,text,jsonb,integer)' : 'df.http_multipart(text,text,jsonb,jsonb,integer)';
        const { rows } = await client.query<{ mode: string; hosts: string | null; can: boolean }>(
          `SELECT df._setting('http_policy', 'disabled') AS mode, current_setting('pgflare.http_allowed_hosts', true) AS hosts,
                  coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false)
                  OR coalesce(has_function_privilege($1, $2, 'EXECUTE'), false) AS can`,
          [row.owner.replace(/^"(.*)"$/, '$1').replaceAll('""', '"'), fn],
        );
        httpAccess.set(row, { policy: { mode: rows[0].mode, allowedHosts: rows[0].hosts }, canUseHttp: rows[0].can });
        return takeLease(client, row, now, timeout * 1000 + 30_000);
      }
      default:
        // A composite node with run_at set but no pending resume: nothing to do.
        await withdraw(client, row);
        return commit('withdrawn', null);
    }
  }

  async function runSignal(
    client: DbClient,
    row: ClaimedRow,
    now: Date,
    leaf: (kind: RunKind, o: Outcome) => Promise<RunResult>,
    commit: (kind: RunKind, ch: Changes | null) => Promise<RunResult>,
  ): Promise<RunResult> {
    const cfg = parseNodeConfig({ node_type: 'SIGNAL', query: row.query });
    if (cfg.node_type !== 'SIGNAL') throw new Error('unreachable');
    const name = cfg.config.signal_name;
    const floor = Number((row.state ?? {}).after_signal_id ?? 0);
    const payload = await findSignal(client, row.instance_id, name, floor);
    if (payload !== undefined) {
      return leaf('signal', { kind: 'ok', text: `{"signal_name":${JSON.stringify(name)},"timed_out":false,"data":${payload ?? 'null'}}` });
    }
    const deadline = (row.state ?? {}).deadline;
    if (typeof deadline === 'string' && Date.parse(deadline) <= now.getTime()) {
      return leaf('signal', { kind: 'ok', text: `{"signal_name":${JSON.stringify(name)},"timed_out":true,"data":null}` });
    }
    // Woken without a signal for it (another wait's signal): park again until the deadline or a signal.
    await client.query('UPDATE df.nodes SET run_at = $3 WHERE instance_id = $1 AND id = $2', [
      row.instance_id,
      row.id,
      typeof deadline === 'string' ? deadline : null,
    ]);
    return commit('signal', null);
  }

  /**
   * The step to go on with after an activation: a SQL leaf it made ready and due now that runs inside
   * a transaction, as the row a claim would have returned (its row is not locked, but it is ready only
   * in this uncommitted transaction, so no one else can claim it).
   */
  function continuation(row: ClaimedRow, ch: Changes, now: Date): ClaimedRow | null {
    const graph = graphs.get(row.instance_id);
    const opts = graphOptions.get(row.instance_id);
    if (!graph || !opts) return null;
    for (const r of ch.ready) {
      const n = graph.nodes.get(r.id);
      const c = ch.nodes.get(r.id);
      if (n?.type !== 'SQL' || !c?.stamp || c.status !== 'running' || Date.parse(r.runAt) > now.getTime()) continue;
      if (isNonTransactional(n.query ?? '')) continue;
      const scope = ch.scopes.get(scopeIdOf(c.stamp));
      if (!scope || scope.status !== 'running') continue;
      return {
        ...row,
        id: n.id,
        node_type: 'SQL',
        query: n.query,
        result_name: n.resultName,
        status: 'running',
        stamp: c.stamp,
        state: c.state ?? null,
        attempts: c.attempts ?? 0,
        run_at: new Date(r.runAt),
        options: opts.get(n.id) ?? null,
        instance_status: 'running',
        named: { ...scope.named },
        scope_status: 'running',
      };
    }
    return null;
  }

  async function takeLease(client: DbClient, row: ClaimedRow, now: Date, leaseMs: number): Promise<{ lease: ClaimedRow }> {
    const until = new Date(now.getTime() + leaseMs);
    await client.query(
      `UPDATE df.nodes SET attempts = attempts + 1, locked_until = $3, run_at = $3, updated_at = now()
        WHERE instance_id = $1 AND id = $2`,
      [row.instance_id, row.id, until],
    );
    await client.query(`SELECT df._apply($1, $2)`, [row.instance_id, JSON.stringify({ events: [{ node_id: row.id, kind: 'leased', attempt: row.attempts + 1, detail: until.toISOString() }] })]);
    await client.query('COMMIT');
    return { lease: row };
  }

  /** Runs a leased step outside any transaction, then checkpoints if the lease is still ours. */
  async function runLeased(row: ClaimedRow, now: Date): Promise<RunResult> {
    const attempt = row.attempts + 1;
    await hit('after-lease', { instanceId: row.instance_id, nodeId: row.id });
    const ctx = substitutionContext(row);
    let out: StepOutcome;
    if (row.node_type === 'SQL') {
      const sub = substitute(row.query ?? '', ctx, 'sql');
      if (!sub.ok) out = { ok: false, error: sub.error };
      else {
        out = await db.withClient(async (c) => {
          const role = await roleOf(c);
          if (role !== row.owner) return { ok: false as const, error: nonTransactionalForeignError(row.owner, role) };
          return runSqlStep(c, sub.text, { statementTimeoutMs: timeoutFor(row), inTransaction: false });
        });
      }
    } else if (!options.http) {
      out = { ok: false, error: 'HTTP steps are not available in this runtime' };
    } else {
      const access = httpAccess.get(row) ?? { policy: { mode: 'disabled', allowedHosts: null }, canUseHttp: false };
      out = await options.http({ row, ctx, idempotencyKey: `${row.instance_id}:${row.id}:${row.stamp}`, ...access }).catch((e: unknown) => ({
        ok: false as const,
        error: `HTTP request failed: ${(e as Error).message}`,
      }));
    }
    await hit('after-effect', { instanceId: row.instance_id, nodeId: row.id });
    out = capStepResult(out, options.maxResultBytes);
    const outcome: Outcome = out.ok ? { kind: 'ok', text: out.resultText } : { kind: 'fail', error: out.error };
    // The effect has happened: keep trying to record it rather than let the lease expire and repeat it.
    for (let attempt = 1; ; attempt++) {
      try {
        return await checkpointLeased(row, now, outcome);
      } catch (err) {
        if (!isLockNotAvailable(err) || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, Math.min(200, 5 * attempt)));
      }
    }
  }

  async function checkpointLeased(row: ClaimedRow, now: Date, outcome: Outcome): Promise<RunResult> {
    const attempt = row.attempts + 1;
    return db.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const cur = await relockLeased(client, row.instance_id, row.id);
        // Someone re-claimed an expired lease, or the step moved on: this result is stale.
        if (!cur || cur.attempts !== attempt || cur.stamp !== row.stamp || cur.status !== 'running') {
          await client.query('ROLLBACK');
          return { kind: 'withdrawn' as const, instanceId: row.instance_id, nodeId: row.id, ready: [] };
        }
        const events: unknown[] = [];
        const tx: Tx = { prefix: '', write: null };
        const ch = await checkpoint(client, tx, row, now, leafEvent(row, outcome, now, attempt, events), {
          events,
          leafChange: { locked_until: null },
          requireScope: scopeIdOf(row.stamp!),
        });
        const done = ch ? await commitTx(client, tx, row, ch) : null;
        if (!done) {
          await withdraw(client, row);
          await client.query('COMMIT');
          return { kind: 'withdrawn' as const, instanceId: row.instance_id, nodeId: row.id, ready: [] };
        }
        return afterCommit(row, 'lease', done.ch);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async function drain(opts: { concurrency?: number; now?: Date; maxSteps?: number } = {}): Promise<number> {
    const concurrency = Math.max(1, opts.concurrency ?? 1);
    const max = opts.maxSteps ?? Number.POSITIVE_INFINITY;
    let count = 0;
    const loop = () =>
      runSeries({
        now: opts.now,
        more: () => count < max,
        onResult: () => {
          count++;
        },
      });
    await Promise.all(Array.from({ length: concurrency }, loop));
    return count;
  }

  return {
    runOnce,
    runSeries,
    drain,
    stats: () => ({ ...counts, cachedGraphs: graphs.size, vacuums: queueVacuum.stats().vacuums }),
    settled: () => queueVacuum.settled(),
  };
}

/** What a claim transaction still has to send: a prefix for its next query and the checkpoint write. */
interface Tx {
  prefix: string;
  /** The checkpoint's write, sent with COMMIT (or gathered into a batch's df._apply_many). */
  write: Write | null;
  /** Claim the next rows in the COMMIT's round trip (runSeries). */
  ahead?: Ahead | null;
  /** What that claim returned: rows (their transaction is open), or none (open, nothing claimed). */
  next?: ClaimedRow[];
  /** The checkpoint was computed from a Snapshot: how to do it again from a fresh read (PFS01). */
  redo?: () => Promise<Changes | null>;
  /** What the pending write does, for the Snapshot once it commits. */
  written?: { instanceId: string; pre: Loaded; read: { nodes: string[]; scopes: string[] }; ch: Changes };
  /** An activation not yet written: the next checkpoint of this transaction reads through it and writes it. */
  carry?: Changes;
}

/**
 * When and how many rows the claim riding on a COMMIT takes, given the steps that COMMIT completes
 * (`inflight`, not yet counted); null: claim nothing (maxSteps reached).
 */
type Ahead = (inflight: number) => { at: Date; limit: number } | null;

/**
 * A checkpoint's write: df._apply's arguments, and what the transaction still owed before it (`prefix`).
 * With `expect` (computed from a Snapshot) a savepoint goes first, so a stale copy (PFS01) can be undone
 * and the checkpoint done again from a fresh read (tx.redo).
 */
interface Write {
  instanceId: string;
  prefix: string;
  changes: () => ReturnType<typeof serialize>;
  expect: ReturnType<typeof expectation> | null;
}

function applySql(w: Write): string {
  const changes = `${literal(w.instanceId)}, ${literal(JSON.stringify(w.changes()))}::jsonb`;
  return w.expect
    ? `${w.prefix}SAVEPOINT pgflare_cp; SELECT df._apply(${changes}, ${literal(JSON.stringify(w.expect))}::jsonb)`
    : `${w.prefix}SELECT df._apply(${changes})`;
}

function scopeIdOf(stamp: string): string {
  return stamp.slice(0, stamp.lastIndexOf('::'));
}

/**
 * Errors of a batch's write that undo the batch (its rows then run one per transaction): a stale copy,
 * a node row held or moved, a change df._apply_many does not take, a deadlock or serialization failure.
 */
const BATCH_UNDO = new Set(['PFS01', '55P03', 'PFB01', '40P01', '40001']);

function isLockNotAvailable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === '55P03';
}

interface RawNode {
  id: string;
  status: NodeState['status'];
  stamp: string | null;
  state: Record<string, unknown> | null;
}
interface RawScope {
  id: string;
  parent: string | null;
  root: string;
  generation: number;
  named: Record<string, string>;
  status: ScopeState['status'];
  result: string | null;
}

/** What the database would return if `carry` had been written. */
function overlay<L extends { nodes: RawNode[]; scopes: RawScope[] }>(s: L, carry: Changes): L {
  const nodes = s.nodes.map((n) => {
    const c = carry.nodes.get(n.id);
    if (!c) return n;
    return { ...n, status: c.status ?? n.status, stamp: c.stamp ?? n.stamp, state: 'state' in c ? (c.state ?? null) : n.state };
  });
  const ids = new Set(s.scopes.map((x) => x.id));
  const scopes = s.scopes
    .filter((x) => !carry.scopeDeletes.has(x.id))
    .map((x) => (carry.scopes.has(x.id) ? { ...carry.scopes.get(x.id)!, named: { ...carry.scopes.get(x.id)!.named } } : x));
  for (const x of carry.scopes.values()) if (!ids.has(x.id)) scopes.push({ ...x, named: { ...x.named } });
  return { ...s, nodes, scopes };
}

/** `a` then `b`, as one set of changes. */
function mergeChanges(a: Changes, b: Changes): Changes {
  const nodes = new Map(a.nodes);
  for (const [id, c] of b.nodes) nodes.set(id, { ...nodes.get(id), ...c });
  const scopes = new Map(a.scopes);
  const scopeDeletes = new Set(a.scopeDeletes);
  for (const [id, sc] of b.scopes) {
    scopes.set(id, sc);
    scopeDeletes.delete(id);
  }
  for (const id of b.scopeDeletes) {
    scopes.delete(id);
    scopeDeletes.add(id);
  }
  return {
    nodes,
    scopes,
    scopeDeletes,
    cancelScopes: [...a.cancelScopes, ...b.cancelScopes],
    instance: a.instance || b.instance ? { ...a.instance, ...b.instance } : null,
    ready: [...a.ready, ...b.ready],
  };
}

/** Rows as _lock_and_load returns them. */
type Loaded = { instance: { status: string; generation: number } | null; nodes: RawNode[]; scopes: RawScope[] };

/**
 * An instance's rows as this engine's last committed checkpoint of it left them: a guess that saves the
 * read, never trusted (df._apply checks what a checkpoint assumed). `complete`: made at the activation,
 * so a node not in `nodes` is still pending (no stamp, no state) and a scope not in `scopes` does not
 * exist; otherwise only what is in the maps is known. A null scope is known not to exist.
 */
interface Snapshot {
  complete: boolean;
  /** Leaves with status running. Another one is a sibling branch whose checkpoint may land first. */
  running: Set<string>;
  instance: { status: string; generation: number };
  nodes: Map<string, RawNode>;
  scopes: Map<string, RawScope | null>;
}

/** The read of `read` answered from the snapshot, or null when it does not know every row. */
function fromSnapshot(snap: Snapshot | undefined, read: { nodes: string[]; scopes: string[] }, leafId: string): Loaded | null {
  // Only a copy made from the activation, and only while no other branch is running: under a JOIN the
  // siblings' checkpoints change the rows this one reads, and a refused guess costs a round trip.
  if (!snap?.complete || [...snap.running].some((id) => id !== leafId)) return null;
  const nodes: RawNode[] = [];
  for (const id of read.nodes) {
    const n = snap.nodes.get(id) ?? (snap.complete ? { id, status: 'pending' as const, stamp: null, state: null } : undefined);
    if (!n) return null;
    nodes.push({ ...n });
  }
  const scopes: RawScope[] = [];
  for (const id of read.scopes) {
    const sc = snap.scopes.get(id);
    if (sc === undefined && !snap.complete) return null;
    if (sc) scopes.push({ ...sc, named: { ...sc.named } });
  }
  return { instance: { ...snap.instance }, nodes, scopes };
}

/** What df._apply checks before writing a checkpoint computed from `pre` (see 0018). */
function expectation(pre: Loaded, read: { nodes: string[]; scopes: string[] }) {
  const nodes: Record<string, RawNode> = {};
  for (const n of pre.nodes) nodes[n.id] = { id: n.id, status: n.status, stamp: n.stamp, state: n.state };
  const scopes: Record<string, RawScope | null> = {};
  for (const id of read.scopes) scopes[id] = null;
  for (const sc of pre.scopes) scopes[sc.id] = sc;
  return { instance: pre.instance, nodes, scopes };
}

/**
 * Moves the snapshot past a committed write: `pre` (the rows read or assumed), then `ch` as df._apply
 * writes it. False when the result is not knowable here (a signal floor is computed by the server).
 */
function advanceSnapshot(
  snap: Snapshot,
  pre: Loaded,
  read: { nodes: string[]; scopes: string[] },
  ch: Changes,
  isLeaf: (id: string) => boolean,
): boolean {
  if (!pre.instance) return false;
  const set = (n: RawNode) => {
    snap.nodes.set(n.id, n);
    if (n.status === 'running' && isLeaf(n.id)) snap.running.add(n.id);
    else snap.running.delete(n.id);
  };
  snap.instance = { ...pre.instance };
  for (const n of pre.nodes) set({ ...n });
  for (const id of read.scopes) if (!pre.scopes.some((x) => x.id === id)) snap.scopes.set(id, null);
  for (const sc of pre.scopes) snap.scopes.set(sc.id, { ...sc, named: { ...sc.named } });
  for (const [id, c] of ch.nodes) {
    if (c.signal_floor) return false;
    const cur = snap.nodes.get(id) ?? (snap.complete ? { id, status: 'pending' as const, stamp: null, state: null } : undefined);
    if (!cur) {
      if (c.status !== undefined && c.stamp !== undefined && 'state' in c) set({ id, status: c.status, stamp: c.stamp, state: c.state ?? null });
      continue;
    }
    set({
      id,
      status: c.status ?? cur.status,
      stamp: c.stamp !== undefined ? c.stamp : cur.stamp,
      state: 'state' in c && c.state !== undefined ? c.state : cur.state,
    });
  }
  for (const sc of ch.scopes.values()) {
    // df._apply's upsert: a new row takes every field (with its defaults), an existing one keeps parent/root.
    const old = snap.scopes.get(sc.id);
    snap.scopes.set(sc.id, {
      id: sc.id,
      parent: old ? old.parent : (sc.parent ?? null),
      root: old ? old.root : sc.root,
      generation: sc.generation ?? 1,
      named: { ...(sc.named ?? {}) },
      status: sc.status ?? 'running',
      result: sc.result ?? null,
    });
  }
  for (const id of ch.scopeDeletes) snap.scopes.set(id, null);
  for (const p of ch.cancelScopes) {
    for (const id of snap.scopes.keys()) if (id === p || id.startsWith(`${p}::`)) snap.scopes.set(id, null);
    snap.scopes.set(p, null);
  }
  if (ch.instance?.status) snap.instance.status = ch.instance.status;
  if (ch.instance?.generation !== undefined) snap.instance.generation = ch.instance.generation;
  return true;
}

const toNodeState = (n: RawNode): NodeState => ({ id: n.id, status: n.status, stamp: n.stamp, state: n.state });
const toScopeState = (s: RawScope): ScopeState => ({ ...s });

/** Node types a worker can hold (claimed): their rows need the NOWAIT probe in df._apply. */
const CLAIMABLE = new Set(['SQL', 'HTTP', 'HTTP_MULTIPART', 'SLEEP', 'WAIT_SCHEDULE', 'SIGNAL', 'LOOP', 'BREAK']);

function serialize(ch: Changes, events: unknown[], graph?: Graph) {
  return {
    nodes: [...ch.nodes.entries()].map(([id, c]) => ({
      id,
      ...c,
      ...(graph && !CLAIMABLE.has(graph.nodes.get(id)?.type ?? 'SQL') && graph.root !== id ? { nowait: false } : {}),
    })),
    scopes: [...ch.scopes.values()],
    scope_deletes: [...ch.scopeDeletes],
    cancel_scopes: ch.cancelScopes,
    ...(ch.instance ? { instance: ch.instance } : {}),
    events,
  };
}
