/**
 * The Cloudflare Workers runtime (DESIGN 8, 9): the same engine core as Node, driven by three triggers.
 *
 *  - queue(batch): each message names one ready node ({instanceId, nodeId}). The invocation claims
 *    exactly that row (SKIP LOCKED; a duplicate or late message finds it taken or done), runs the one
 *    step, checkpoints, and the engine's dispatch sends every newly ready successor as its own message
 *    (sendBatch, delaySeconds for near timers); with PGFLARE_CHAIN_STEPS > 1 a single due successor runs
 *    next in the same invocation instead (chain.ts). A batch's messages run on one session, one after
 *    another (PGFLARE_QUEUE_CONCURRENCY: up to 3 at once). Every message is acked individually, whatever
 *    happened: the rows, not the queue's retry counter, decide what runs again (see `runMessage`).
 *  - scheduled() (cron, every minute): the sweeper. Checks the schema version, records a heartbeat,
 *    fires due cron schedules (src/engine/schedules.ts, at most PGFLARE_SCHEDULE_LIMIT),
 *    re-sends a message for every row due within the next minute (instances started from plain SQL,
 *    lost messages, expired leases, due timers; at most PGFLARE_SWEEP_LIMIT), prunes history. It only
 *    sends hints and takes an advisory lock for pruning, so overlapping sweeps do no harm.
 *  - fetch(): the REST API, the Hono app shared with the Node runtime (src/api/app.ts). Its onReady port
 *    runs the first step of work a request made ready (a start, a signal, a webhook delivery) in the
 *    request's ctx.waitUntil, on the request's session, instead of sending it a message
 *    (PGFLARE_API_RUN_STEP; other ready rows and timers get messages).
 *
 * Each invocation opens its own Neon pool (Workers share no I/O objects between invocations) and ends
 * it through ctx.waitUntil; the parsed settings and the engine's caches stay in the isolate (isolate.ts).
 *
 * Workers limits that apply (Cloudflare docs, checked 2026; see docs/deploying-to-workers.md):
 *  - Simultaneous outgoing connections: 6 per invocation. Each pooled session is one WebSocket and each
 *    HTTP step's fetch is one, so a queue batch runs at most 3 messages at once (PGFLARE_QUEUE_CONCURRENCY)
 *    on a pool of as many sessions: 3 sessions + 3 fetches = 6.
 *  - Subrequests: 50 per invocation (Free), 10 000 (Paid). Opening a session, an HTTP step's fetch and
 *    a sendBatch call each count; a batch of 10 messages needs ≲ 25, a sweep of 1000 rows ≈ 12.
 *  - Wall clock: a queue consumer or cron invocation may run 15 minutes; fetch has no wall-clock limit
 *    while the client stays connected, but its waitUntil work is cancelled 30 s after the response (a
 *    step run there that takes longer rolls back with its session; the sweep re-sends its row). Steps get a statement_timeout of at most 14 minutes here
 *    (STEP_TIMEOUT_CAP_MS), so an overlong step fails (and retries per its policy) instead of being
 *    killed with its transaction. CPU time (30 s default, up to 5 min Paid; 10 ms Free) counts only
 *    JavaScript work, not time waiting on PostgreSQL.
 *  - Queues: message ≤ 128 KB (ours are ~60 bytes), consumer batch ≤ 100 (wrangler.toml: 1),
 *    sendBatch ≤ 100 messages / 256 KB (chunked), delaySeconds ≤ 24 h (further timers get no message
 *    until the sweep sees them within a minute of due).
 *  - Worker size: 3 MB compressed (Free), 10 MB (Paid); test/workerd/bundle.test.ts keeps us under 3 MB.
 */
import type {
  ExecutionContext,
  Message,
  MessageBatch,
  Queue,
  ScheduledController,
} from '@cloudflare/workers-types/index.ts';
import { apiConfig, createApp, parseCorsOrigins } from '../../api/app.ts';
import { parseStaticTokens } from '../../api/auth.ts';
import type { RuntimeConfig } from '../../config.ts';
import type { Db } from '../../engine/db.ts';
import type { PointHandler } from '../../engine/points.ts';
import { createHttpRunner } from '../../engine/executors/http-runner.ts';
import { checkSchema, heartbeat, pruneHistory } from '../../engine/maintenance.ts';
import { sweepDue } from '../../engine/sweep.ts';
import { fireDueSchedules } from '../../engine/schedules.ts';
import { createLogger, type Logger, type LogLevel } from '../../log.ts';
import { migrations as bundledMigrations } from '../../migrate/generated/migrations.ts';
import { migrate } from '../../migrate/runner.ts';
import { engineMaker, runChain, type ChainBudget, type EngineFor } from './chain.ts';
import { createQueueDispatcher, StepMessage } from './dispatch.ts';
import { openWorkerDb, type DbBindings, type WorkerDb } from './open-db.ts';
import { isolateState, type WorkerSettings } from './isolate.ts';
import { createNeonDb } from './neon-db.ts';
import { databaseUrlVariable } from '../../engine/executors/other-database.ts';

export interface Env extends DbBindings {
  /** Secret: `wrangler secret put DATABASE_URL` (without HYPERDRIVE: the direct, unpooled connection string; open-db.ts). */
  DATABASE_URL: string;
  /** Producer binding of the step queue (wrangler.toml). */
  QUEUE: Queue<StepMessage>;
  /** Local development and tests only: `host:port` of scripts/ws-proxy.ts. */
  WS_PROXY?: string;
  PGFLARE_LOG_LEVEL?: string;
  /** Secret: static API tokens, `token=role,token2=role2`. */
  PGFLARE_API_TOKENS?: string;
  [key: `PGFLARE_${string}`]: string | undefined;
  /** Tests only (test/workerd/faults-entry.ts): the engine's crash points. No binding can hold a function. */
  TEST_POINTS?: PointHandler;
}

/** Per-invocation cap on a step's statement_timeout: below the 15-minute consumer/cron wall clock. */
export const STEP_TIMEOUT_CAP_MS = 14 * 60_000;
/** Timers due within this window get a delayed message from the sweep. Cron fires every minute. */
const SWEEP_HORIZON_MS = 60_000;
/** Due rows of one request's ready work run in its waitUntil; more get messages (parallel invocations). */
const API_RUN_MAX = 3;
/** A chain run in a fetch's waitUntil stops well before the 30 s after the response that waitUntil gets. */
const API_CHAIN_MS_CAP = 10_000;
/** A row the database made due this far ahead of the Worker's clock still runs in the request's waitUntil. */
const CLOCK_SKEW_MS = 1000;

// One id per isolate, made on first use (randomness at global scope is not allowed in Workers).
let epochId: string | undefined;

interface Invocation {
  db: WorkerDb;
  /** Connections to other databases (df.start's database =>), made on first use and closed with db. */
  others: Map<string, ReturnType<typeof createNeonDb> | null>;
  log: Logger;
  cfg: RuntimeConfig;
  settings: WorkerSettings;
  /** Engines of this invocation: over its session, with the isolate's caches. */
  engineFor: EngineFor;
  id: string;
  started: number;
}

function open(env: Env, ctx: ExecutionContext, kind: 'queue' | 'cron' | 'api'): Invocation {
  const started = Date.now();
  // The isolate's state is kept per database: Hyperdrive's connection string, else DATABASE_URL.
  const dbKey = env.HYPERDRIVE?.connectionString || env.DATABASE_URL || '';
  const { cfg, settings, caches } = isolateState({ ...(env as unknown as Record<string, unknown>), DATABASE_URL: dbKey });
  // JSON by default here: Workers Logs indexes a JSON line's fields.
  const log = createLogger((env.PGFLARE_LOG_LEVEL as LogLevel) || 'info', (line) => console.log(line), cfg.logFormat ?? 'json');
  const id = `${kind}:${crypto.randomUUID().slice(0, 8)}`;
  const db = openWorkerDb(env, {
    // A queue batch gets one session per lane; the API's steps after a response reuse its idle session.
    max: kind === 'queue' ? settings.PGFLARE_QUEUE_CONCURRENCY : kind === 'cron' ? 1 : 3,
    applicationName: `pgflare:${id}`,
    pooled: cfg.pooled,
  });
  const others: Invocation['others'] = new Map();
  const engineFor = engineMaker({
    db,
    databases: (name) => otherDatabase(others, env, name, id),
    log,
    caches,
    // Workers have no DNS port: the egress policy checks host names only (src/engine/executors/http/egress.ts).
    http: createHttpRunner({ policy: cfg.httpPolicy, allowedHosts: cfg.httpAllowedHosts, maxResponseBytes: cfg.maxResponseBytes }),
    maxResultBytes: cfg.maxResultBytes,
    stepTimeoutMs: cfg.stepTimeoutMs > 0 ? Math.min(cfg.stepTimeoutMs, STEP_TIMEOUT_CAP_MS) : STEP_TIMEOUT_CAP_MS,
    leaseMs: cfg.leaseMs,
    retry: cfg.retry,
    enableSuperuserInstances: cfg.enableSuperuserInstances,
    pooled: db.pooled,
    directDb: db.directDb,
    points: env.TEST_POINTS,
  });
  return { db, others, log, cfg, settings, engineFor, id, started };
}

/** A step's other database: a second connection string, PGFLARE_DATABASE_URL_<NAME>; null when unset. */
function otherDatabase(others: Invocation['others'], env: Env, name: string, id: string): Db | null {
  if (!others.has(name)) {
    const url = env[databaseUrlVariable(name) as `PGFLARE_${string}`];
    others.set(name, url ? createNeonDb({ connectionString: url, wsProxy: env.WS_PROXY, max: 1, applicationName: `pgflare:${id}` }) : null);
  }
  return others.get(name)!;
}

/** The chain budget of an invocation (one step when continuation is off). */
function budgetOf(inv: Invocation, capMs = Number.POSITIVE_INFINITY): ChainBudget {
  return { steps: inv.settings.PGFLARE_CHAIN_STEPS, until: inv.started + Math.min(inv.settings.PGFLARE_CHAIN_MS, capMs) };
}

function close(ctx: ExecutionContext, inv: Invocation): void {
  ctx.waitUntil(inv.db.end().catch((err: unknown) => inv.log.warn('closing the pool failed', { error: err })));
  for (const other of inv.others.values()) if (other) ctx.waitUntil(other.end().catch((err: unknown) => inv.log.warn('closing the pool failed', { error: err })));
}

/**
 * Runs the step a message names and acks it. Acked even when the engine throws: the claim transaction
 * rolled back, so the row is still ready (or its lease will expire), and the sweep re-sends it within a
 * minute. Retrying through the queue instead would add a second, counter-limited retry mechanism that
 * dead-letters or drops hints after max_retries, while the row stays the only truth either way.
 */
async function runMessage(msg: Message<unknown>, env: Env, inv: Invocation, requeue: (m: StepMessage, runAt: Date) => Promise<void>): Promise<void> {
  const parsed = StepMessage.safeParse(msg.body);
  if (!parsed.success) {
    inv.log.warn('queue: malformed message dropped', { message: msg.id, body: JSON.stringify(msg.body)?.slice(0, 200) });
    msg.ack();
    return;
  }
  const target = parsed.data;
  let acked = false;
  const ack = () => {
    if (!acked) msg.ack();
    acked = true;
  };
  try {
    // The message is acked once its own step has committed; a chain continuation after it needs none.
    const { first: r, ran } = await runChain(inv.engineFor, env.QUEUE, inv.log, target, budgetOf(inv), undefined, ack);
    if (r) {
      inv.log.debug('queue: ran', { invocation: inv.id, instance_id: r.instanceId, node_id: r.nodeId, kind: r.kind, ready: r.ready.length, chained: ran - 1 });
    } else {
      // Taken, done, or not yet due. Only the last needs a new message: a delay that came up a little
      // short (clocks, rounding) or a lease that has not expired yet.
      const runAt = await notYetDue(inv.db, target);
      if (runAt) await requeue(target, runAt);
    }
  } catch (err) {
    inv.log.error('queue: engine error; the row stays ready and the sweep re-sends it', {
      invocation: inv.id,
      instance_id: target.instanceId,
      node_id: target.nodeId,
      error: err,
    });
  }
  ack();
}

async function notYetDue(db: Db, t: StepMessage): Promise<Date | null> {
  const { rows } = await db.withClient((c) =>
    c.query<{ run_at: Date | null }>(
      'SELECT run_at FROM df.nodes WHERE instance_id = $1 AND id = $2 AND run_at > now()',
      [t.instanceId, t.nodeId],
    ),
  );
  return rows[0]?.run_at ?? null;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export async function handleQueue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const inv = open(env, ctx, 'queue');
  try {
    const dispatch = createQueueDispatcher(env.QUEUE);
    const requeue = async (m: StepMessage, runAt: Date) => {
      await dispatch([{ ...m, runAt }]).catch((err: unknown) => inv.log.warn('queue: re-send failed; the sweep will find the row', { error: err }));
    };
    await eachLimited(batch.messages, inv.settings.PGFLARE_QUEUE_CONCURRENCY, (msg) => runMessage(msg, env, inv, requeue));
  } finally {
    close(ctx, inv);
  }
}

export interface SweepReport {
  schema: 'ok' | 'behind' | 'ahead' | 'missing';
  dispatched: number;
  pruned: number;
  /** Schedule fires handled this sweep (started, skipped, missed or failed). */
  fired: number;
  migrated: string[];
}

export async function handleScheduled(controller: Pick<ScheduledController, 'scheduledTime' | 'cron'>, env: Env, ctx: ExecutionContext): Promise<SweepReport> {
  const inv = open(env, ctx, 'cron');
  const report: SweepReport = { schema: 'ok', dispatched: 0, pruned: 0, fired: 0, migrated: [] };
  const { log } = inv;
  try {
    const wenv = inv.settings;
    epochId ??= crypto.randomUUID();
    if (wenv.PGFLARE_AUTO_MIGRATE) {
      // Opt-in: users who prefer not to run `pgflare migrate` themselves. Advisory-locked, idempotent.
      report.migrated = (await migrate(inv.db)).applied;
      if (report.migrated.length) log.info('sweep: migrated schema df', { applied: report.migrated.join(',') });
    }
    await inv.db.withClient(async (client) => {
      const schema = await checkSchema(client, bundledMigrations.length);
      report.schema = schema.state;
      // Loud, but only 'missing' stops the sweep: behind or ahead, steps may still run (and fail
      // visibly), and the heartbeat tells operators a worker is deployed.
      if (schema.state === 'missing') {
        log.error(`SCHEMA df IS NOT INSTALLED: ${schema.message} against DATABASE_URL (or set PGFLARE_AUTO_MIGRATE=on); nothing was swept`);
        return;
      }
      if (schema.state === 'behind') log.error(`SCHEMA df IS BEHIND THIS WORKER: ${schema.message} (steps may fail until then)`);
      if (schema.state === 'ahead') log.error(`SCHEMA df IS NEWER THAN THIS WORKER: ${schema.message}: deploy the current pgflare worker`);
      await step(log, 'heartbeat', () => heartbeat(client, epochId!));
      // Fire due schedules before the dispatch pass, which then sends the new instances' first messages.
      if (wenv.PGFLARE_SCHEDULE_LIMIT > 0) {
        await step(log, 'schedules', async () => {
          const fired = await fireDueSchedules(client, { now: new Date(), limit: wenv.PGFLARE_SCHEDULE_LIMIT, log });
          report.fired = fired.length;
          for (const f of fired) log.info('schedule fired', { schedule: f.schedule, outcome: f.outcome, instance_id: f.instanceId, fire_at: f.fireAt.toISOString() });
        });
      }
      const dispatch = createQueueDispatcher(env.QUEUE);
      await step(log, 'dispatch', async () => {
        report.dispatched = await sweepDue(client, async (ready) => void (await dispatch(ready)), {
          now: new Date(),
          horizonMs: SWEEP_HORIZON_MS,
          limit: wenv.PGFLARE_SWEEP_LIMIT,
        });
      });
      if (wenv.PGFLARE_PRUNE_BATCH > 0) {
        await step(log, 'prune', async () => {
          // null: an overlapping sweep holds the prune lock and prunes instead.
          report.pruned = (await pruneHistory(client, { retentionDays: inv.cfg.retentionDays ?? null, keep: 10_000, batch: wenv.PGFLARE_PRUNE_BATCH })) ?? 0;
        });
      }
    });
    log.info('sweep', { invocation: inv.id, cron: controller.cron, dispatched: report.dispatched, pruned: report.pruned, fired: report.fired, schema: report.schema });
    return report;
  } finally {
    close(ctx, inv);
  }
}

async function step(log: Logger, name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log.error(`sweep: ${name} failed`, { error: err });
  }
}

export async function handleFetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  let inv: Invocation;
  try {
    inv = open(env, ctx, 'api');
  } catch (err) {
    console.error(`pgflare: ${(err as Error).message}`);
    return Response.json({ error: { code: 'misconfigured', message: 'the worker is misconfigured; see its logs' } }, { status: 500 });
  }
  // The API's ready port: once a start, a signal or a webhook delivery has committed, run the
  // instance's due rows here, after the response, or send them messages (without either the new ready
  // row would wait for the next cron tick, ≤ 1 min). ctx.waitUntil waits for them and closes the pool.
  const sends: Promise<void>[] = [];
  const inline = { left: inv.settings.PGFLARE_API_RUN_STEP ? API_RUN_MAX : 0 };
  const onReady = (instanceId: string) => {
    sends.push(kick(inv, env, instanceId, inline).catch((err: unknown) => inv.log.warn('api: dispatch after commit failed; the sweep will find the row', { instance_id: instanceId, error: err })));
  };
  try {
    const app = createApp({ db: inv.db, log: inv.log, staticTokens: parseStaticTokens(env.PGFLARE_API_TOKENS), corsOrigins: parseCorsOrigins(env.PGFLARE_CORS_ORIGINS), onReady, ...apiConfig(inv.cfg) });
    const res = await app.fetch(request);
    // An event stream reads the database until it closes: the pool is ended after it, not after the answer's head.
    if (res.body && res.headers.get('content-type')?.startsWith('text/event-stream')) {
      const { readable, writable } = new TransformStream();
      sends.push(res.body.pipeTo(writable).catch(() => undefined));
      return new Response(readable, res);
    }
    return res;
  } finally {
    ctx.waitUntil(Promise.all(sends).finally(() => inv.db.end().catch(() => undefined)));
  }
}

/**
 * The rows of `instanceId` due within the sweep horizon: those due now run here (up to `inline.left` per
 * request, one after another on the request's session), the others get messages, sent first so they
 * start in parallel. A row run here that fails to run gets its message after all.
 */
async function kick(inv: Invocation, env: Env, instanceId: string, inline: { left: number }): Promise<void> {
  const { rows } = await inv.db.withClient((c) =>
    c.query<{ id: string; run_at: Date }>(
      `SELECT id, run_at FROM df.nodes WHERE instance_id = $1 AND run_at <= now() + make_interval(secs => $2) ORDER BY run_at LIMIT 100`,
      [instanceId, SWEEP_HORIZON_MS / 1000],
    ),
  );
  const send = createQueueDispatcher(env.QUEUE);
  const here: { id: string; run_at: Date }[] = [];
  const later: { id: string; run_at: Date }[] = [];
  // Due by the database's clock: a Worker clock a little behind it must not turn the row into a message.
  const dueBy = Date.now() + CLOCK_SKEW_MS;
  for (const r of rows) (here.length < inline.left && r.run_at.getTime() <= dueBy ? here : later).push(r);
  inline.left -= here.length;
  if (later.length) await send(later.map((r) => ({ instanceId, nodeId: r.id, runAt: r.run_at })));
  for (const r of here) {
    const target = { instanceId, nodeId: r.id };
    try {
      await runChain(inv.engineFor, env.QUEUE, inv.log, target, budgetOf(inv, API_CHAIN_MS_CAP), new Date(Math.max(Date.now(), r.run_at.getTime())));
    } catch (err) {
      inv.log.warn('api: running the first step failed; it gets a message', { instance_id: instanceId, node_id: r.id, error: err });
      await send([{ ...target, runAt: r.run_at }]);
    }
  }
}
