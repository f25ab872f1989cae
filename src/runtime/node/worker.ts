/**
 * `pgflare worker`: the engine in a Node process. `concurrency` loops each run one step at a time;
 * idle loops sleep until a NOTIFY on `pgflare_ready` (df.start, df.signal), a timer the engine set comes
 * due, or the poll interval passes (the fallback that also catches expired leases). SIGTERM stops the
 * loops after their current step; nothing is lost either way, because the rows hold all state.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createEngine, type Engine, type EngineOptions, type ReadyNode } from '../../engine/engine.ts';
import { heartbeat, pruneHistoryBatches, requireSchema, retireEpoch } from '../../engine/maintenance.ts';
import { DEFAULT_QUEUE_VACUUM_STEPS } from '../../engine/queue-vacuum.ts';
import { DEFAULT_BATCH_SIZE } from '../../engine/batch.ts';
import { fireDueSchedules, type ScheduleFire } from '../../engine/schedules.ts';
import { looksPooled } from '../../engine/pooled.ts';
import { migrations } from '../../migrate/generated/migrations.ts';
import { silentLogger, type Logger } from '../../log.ts';
import { createPgDb } from './pg-db.ts';
import { otherDatabasePools } from './other-databases.ts';
import { createPromMetrics, serveMetrics } from './metrics.ts';
import type { ApiServer } from './serve.ts';

export interface NodeWorkerOptions extends Omit<EngineOptions, 'db' | 'dispatch'> {
  connectionString: string;
  concurrency?: number;
  pollIntervalMs?: number;
  heartbeatMs?: number;
  /** Retention pass interval (ms); 0 disables. Default: pg_durable.reconcile_interval (3600 s). */
  pruneIntervalMs?: number;
  retentionDays?: number;
  /** How often due cron schedules are fired (ms); 0 disables. Default 1000. */
  scheduleIntervalMs?: number;
  log?: Logger;
  /** Serve Prometheus metrics on this port (0: a free one); absent: none (src/runtime/node/metrics.ts). */
  metricsPort?: number;
  /** Address of the metrics port (default 127.0.0.1). */
  metricsHost?: string;
  /**
   * A direct (unpooled) connection string (PGFLARE_DIRECT_URL) beside a pooled connectionString: LISTEN
   * and non-transactional steps. Whether connectionString is pooled: `pooled` (PGFLARE_POOLED), else
   * judged from the URL (src/engine/pooled.ts). Pooled without it, idle loops poll.
   */
  directUrl?: string;
}

export interface NodeWorker {
  engine: Engine;
  epochId: string;
  /** Steps run since start. */
  readonly steps: number;
  /** `http://host:port` of the Prometheus endpoint (GET /metrics) when metricsPort was set. */
  metricsUrl?: string;
  /**
   * Fires the due cron schedules now (after the pass in flight, if any), as the worker does every
   * scheduleIntervalMs, and resolves with what fired once it is committed and counted in the metrics.
   */
  schedulePass(): Promise<ScheduleFire[]>;
  stop(): Promise<void>;
}

/** How long a loop keeps one session while it waits for work. */
const HOLD_SESSION_MS = 60_000;

export async function startNodeWorker(opts: NodeWorkerOptions): Promise<NodeWorker> {
  const log = opts.log ?? silentLogger;
  const concurrency = opts.concurrency ?? 4;
  const pollMs = opts.pollIntervalMs ?? 1000;
  const db = createPgDb({ connectionString: opts.connectionString, max: concurrency + 2, applicationName: 'pgflare:worker' });
  const pooled = looksPooled(opts.connectionString, opts.pooled);
  const directDb = opts.directUrl ? createPgDb({ connectionString: opts.directUrl, max: 2, applicationName: 'pgflare:worker:direct' }) : undefined;
  // LISTEN needs a session of its own: through a transaction-mode pooler the notifications go nowhere.
  const listenUrl = opts.directUrl ?? (pooled ? null : opts.connectionString);
  // Steps of instances started with database => another database (src/engine/executors/other-database.ts).
  const others = opts.databases ? null : otherDatabasePools(opts.connectionString, process.env, concurrency);
  const epochId = randomUUID();
  let stopping = false;
  let steps = 0;
  const waiters = new Set<() => void>();
  // Counts wake-ups, so a loop that was busy when one came (its claim had already looked) doesn't sleep
  // through it until the next poll.
  let wakes = 0;
  const wakeAll = () => {
    wakes++;
    for (const w of [...waiters]) w();
  };
  const timers = new Set<NodeJS.Timeout>();
  const wakeAt = (at: Date) => {
    const delay = at.getTime() - Date.now();
    if (delay <= 0) return wakeAll();
    if (delay > pollMs) return; // the poll will get there
    const t = setTimeout(() => {
      timers.delete(t);
      wakeAll();
    }, delay);
    timers.add(t);
  };
  const dispatch = (ready: ReadyNode[]) => {
    for (const r of ready) wakeAt(r.runAt);
  };
  const prom = opts.metricsPort !== undefined ? createPromMetrics(db) : null;
  const engine = createEngine({
    ...opts,
    metrics: opts.metrics ?? prom?.port,
    queueVacuumSteps: opts.queueVacuumSteps ?? DEFAULT_QUEUE_VACUUM_STEPS,
    batchSize: opts.batchSize ?? DEFAULT_BATCH_SIZE,
    databases: opts.databases ?? others!.databases,
    db,
    pooled,
    directDb,
    log,
    dispatch,
  });
  try {
    await db.withClient((c) => requireSchema(c, migrations.length));
  } catch (err) {
    await db.end();
    await directDb?.end();
    throw err;
  }
  if (pooled && !opts.directUrl) {
    log.warn('DATABASE_URL goes through a transaction-mode pooler: no LISTEN, so idle loops poll every PGFLARE_POLL_INTERVAL_MS, and non-transactional SQL steps (VACUUM, CREATE INDEX CONCURRENTLY, …) fail; set PGFLARE_DIRECT_URL to a direct connection string for both', {
      poll_ms: pollMs,
    });
  }
  let metricsServer: ApiServer | undefined;
  if (prom) {
    try {
      metricsServer = await serveMetrics(prom, { port: opts.metricsPort!, hostname: opts.metricsHost });
    } catch (err) {
      await db.end();
      await directDb?.end();
      throw new Error(`could not serve metrics on port ${opts.metricsPort} (PGFLARE_METRICS_PORT): ${(err as Error).message}`);
    }
    log.info('metrics listening', { url: `${metricsServer.url}/metrics` });
  }

  // A dedicated session for LISTEN; it reconnects if the server drops it.
  let listener: pg.Client | null = null;
  const listen = async () => {
    if (stopping || !listenUrl) return;
    const c = new pg.Client({ connectionString: listenUrl, application_name: 'pgflare:worker:listen' });
    c.on('notification', wakeAll);
    c.on('error', (err) => {
      if (stopping) return;
      log.warn('listen connection lost; reconnecting', { error: err });
      listener = null;
      setTimeout(() => void listen().catch(() => undefined), pollMs).unref();
    });
    await c.connect();
    await c.query('LISTEN pgflare_ready');
    listener = c;
  };
  await listen();

  const idle = (ms = pollMs, since = wakes) =>
    new Promise<void>((resolve) => {
      if (wakes !== since) return resolve();
      const done = () => {
        clearTimeout(t);
        waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      waiters.add(done);
    });

  const loop = async (n: number) => {
    let failures = 0;
    while (!stopping) {
      let seen = wakes;
      const held = Date.now();
      try {
        // Up to 100 steps on one session, each COMMIT claiming the next; then the pool gets it back. With
        // nothing ready the loop waits on the same session, and claims again when woken or polled.
        await engine.runSeries({
          maxSteps: 100,
          more: () => !stopping,
          onResult: () => steps++,
          idle: async () => {
            await idle(pollMs, seen);
            seen = wakes;
            // Hand the session back now and then, so the pool can retire it (maxLifetimeSeconds: a new
            // session picks up ALTER DATABASE/ROLE … SET).
            return !stopping && Date.now() - held < HOLD_SESSION_MS;
          },
        });
        failures = 0;
      } catch (err) {
        failures++;
        log.error('step failed in the engine; backing off', { loop: n, error: err });
        await idle(Math.min(30_000, 100 * 2 ** Math.min(failures, 8))); // stop() wakes it
      }
    }
  };

  const beat = async () => {
    try {
      await db.withClient((c) => heartbeat(c, epochId));
    } catch (err) {
      log.warn('heartbeat failed', { error: err });
    }
  };
  await beat();
  const beatTimer = setInterval(() => void beat(), opts.heartbeatMs ?? 5000);
  const pruneMs = opts.pruneIntervalMs ?? 3_600_000;
  // One pass at a time; stop() waits for the batch in flight.
  let pruning: Promise<void> | null = null;
  const prune = () => {
    if (pruning || stopping) return;
    pruning = (async () => {
      try {
        // Under the prune lock: of several workers on one database, one prunes and the others skip. Batches
        // of 1000, each its own transaction, until none is due: a backlog of millions clears in one pass.
        const run = await db.withClient((c) =>
          pruneHistoryBatches(c, { retentionDays: opts.retentionDays ?? null, keep: 10_000, batch: 1000, stop: () => stopping }),
        );
        if (run.deleted) log.info('pruned history', { instances: run.deleted, batches: run.batches });
        if (run.skipped) log.debug('prune skipped: another worker holds the prune lock');
      } catch (err) {
        log.warn('prune failed', { error: err });
      } finally {
        pruning = null;
      }
    })();
  };
  const pruneTimer = pruneMs > 0 ? setInterval(prune, pruneMs) : null;
  if (pruneMs > 0) prune(); // a first pass at start, not an hour later

  // Cron schedules (src/engine/schedules.ts): one pass at a time; df.start's NOTIFY wakes the loops.
  const scheduleMs = opts.scheduleIntervalMs ?? 1000;
  let firing: Promise<void> | null = null;
  const pass = async () => {
    const fired = await db.withClient((c) => fireDueSchedules(c, { log }));
    for (const f of fired) {
      prom?.scheduleFired(f.outcome);
      log.info('schedule fired', { schedule: f.schedule, outcome: f.outcome, instance_id: f.instanceId, fire_at: f.fireAt.toISOString() });
    }
    if (fired.some((f) => f.instanceId)) wakeAll();
    return fired;
  };
  // One pass at a time: a caller's pass waits for the timer's (and the other way round).
  const schedulePass = async (): Promise<ScheduleFire[]> => {
    while (firing) await firing;
    if (stopping) throw new Error('the worker is stopping');
    const p = pass();
    firing = p.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      firing = null;
    });
    return p;
  };
  const fire = () => {
    if (firing || stopping) return;
    schedulePass().catch((err) => log.warn('schedule pass failed', { error: err }));
  };
  const scheduleTimer = scheduleMs > 0 ? setInterval(fire, scheduleMs) : null;
  if (scheduleMs > 0) fire();

  const loops = Array.from({ length: concurrency }, (_, i) => loop(i));
  log.info('worker started', { concurrency, epoch: epochId });

  return {
    engine,
    epochId,
    metricsUrl: metricsServer?.url,
    schedulePass,
    get steps() {
      return steps;
    },
    async stop() {
      stopping = true;
      const l = listener;
      listener = null;
      await l?.end().catch(() => undefined);
      await metricsServer?.close();
      wakeAll();
      clearInterval(beatTimer);
      if (pruneTimer) clearInterval(pruneTimer);
      if (scheduleTimer) clearInterval(scheduleTimer);
      await firing;
      await pruning;
      for (const t of timers) clearTimeout(t);
      await Promise.all(loops);
      await engine.settled();
      await db.withClient((c) => retireEpoch(c, epochId)).catch(() => undefined);
      await db.end();
      await directDb?.end();
      await others?.end();
      log.info('worker stopped', { steps });
    },
  };
}
