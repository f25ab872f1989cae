/**
 * The Node worker's Prometheus metrics (prom-client), served on their own port (PGFLARE_METRICS_PORT,
 * on 127.0.0.1 unless PGFLARE_METRICS_HOST says otherwise), never on the public API: a scrape endpoint
 * has no token. Counters and histograms are this process's (the engine's metrics port, the schedule
 * pass); the queue gauges are read from the database at scrape time, with cheap queries on the ready
 * index (nodes_ready_idx), so every worker reports the same backlog. docs/monitoring.md lists them.
 */
import client from 'prom-client';
import type { Db } from '../../engine/db.ts';
import type { MetricsPort, RunResult } from '../../engine/types.ts';
import { serveFetch, type ApiServer } from './serve.ts';

/** Seconds: a one-statement step takes about a millisecond; an HTTP step up to minutes. */
const STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds a due node waited for its claim: near 0 on a keeping-up worker, the poll interval at worst when idle. */
const CLAIM_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export interface PromMetrics {
  registry: client.Registry;
  /** The engine's metrics port (EngineOptions.metrics). */
  port: MetricsPort;
  /** One schedule firing of the schedule pass, by its outcome (started, skipped, failed, ...). */
  scheduleFired(outcome: string): void;
  /** The exposition text of one scrape. */
  scrape(): Promise<string>;
}

export function createPromMetrics(db: Db): PromMetrics {
  const registry = new client.Registry();
  const registers = [registry];
  const steps = new client.Counter({
    name: 'pgflare_steps_total',
    help: 'Runs of claimed nodes, by node type and kind (step, retry, timer, signal, start, resume, lease, withdrawn, contended).',
    labelNames: ['node_type', 'kind'] as const,
    registers,
  });
  const failed = new client.Counter({
    name: 'pgflare_steps_failed_total',
    help: 'Steps whose attempt failed for good (no retry left), by node type.',
    labelNames: ['node_type'] as const,
    registers,
  });
  const retried = new client.Counter({
    name: 'pgflare_steps_retried_total',
    help: 'Failed attempts that scheduled a retry, by node type.',
    labelNames: ['node_type'] as const,
    registers,
  });
  const duration = new client.Histogram({
    name: 'pgflare_step_duration_seconds',
    help: 'Wall time of a run from its claim to its commit (a batch: the whole batch), by node type.',
    labelNames: ['node_type'] as const,
    buckets: STEP_BUCKETS,
    registers,
  });
  const claimLatency = new client.Histogram({
    name: 'pgflare_claim_latency_seconds',
    help: 'Time from a node becoming due (its run_at) to its claim.',
    buckets: CLAIM_BUCKETS,
    registers,
  });
  const fired = new client.Counter({
    name: 'pgflare_schedules_fired_total',
    help: 'Schedule firings by this worker, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  });

  // The database gauges: one query per scrape, shared by the gauges it sets.
  let reading: Promise<QueueNumbers> | null = null;
  const read = () => (reading ??= queueNumbers(db).finally(() => (reading = null)));
  const fromDb = (name: string, help: string, pick: (q: QueueNumbers) => number) =>
    new client.Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set(pick(await read()));
      },
    });
  fromDb('pgflare_ready_backlog', 'Nodes due now and not yet claimed (df.nodes run_at <= now()).', (q) => q.backlog);
  fromDb('pgflare_oldest_ready_age_seconds', 'How long the oldest due node has waited (0 when none is due).', (q) => q.oldestAgeS);
  fromDb('pgflare_webhook_deliveries_5m', 'Webhook deliveries received in the last 5 minutes (df.hook_deliveries).', (q) => q.deliveries5m);
  fromDb('pgflare_workers_seen', 'Workers with a heartbeat in df._worker_epoch (stale ones are dropped after a minute).', (q) => q.workers);

  const port: MetricsPort = {
    step(r: RunResult, t) {
      const nodeType = r.nodeType ?? 'unknown';
      steps.inc({ node_type: nodeType, kind: r.kind });
      if (r.failed) failed.inc({ node_type: nodeType });
      if (r.kind === 'retry') retried.inc({ node_type: nodeType });
      if (r.kind === 'withdrawn' || r.kind === 'contended') return;
      duration.observe({ node_type: nodeType }, t.durationMs / 1000);
      if (t.claimLatencyMs !== null) claimLatency.observe(t.claimLatencyMs / 1000);
    },
  };
  return {
    registry,
    port,
    scheduleFired: (outcome) => fired.inc({ outcome }),
    scrape: () => registry.metrics(),
  };
}

interface QueueNumbers {
  backlog: number;
  oldestAgeS: number;
  deliveries5m: number;
  workers: number;
}

/**
 * The backlog is an index-only count on nodes_ready_idx (run_at IS NOT NULL), its oldest entry the
 * index's first. A row under a lease keeps its run_at; it counts as due until its checkpoint.
 */
async function queueNumbers(db: Db): Promise<QueueNumbers> {
  const { rows } = await db.withClient((c) =>
    c.query<{ backlog: string; oldest: number | null; deliveries: string; workers: string }>(
      `SELECT (SELECT count(*) FROM df.nodes WHERE run_at IS NOT NULL AND run_at <= now()) AS backlog,
              extract(epoch FROM now() - (SELECT min(run_at) FROM df.nodes WHERE run_at IS NOT NULL AND run_at <= now()))::float8 AS oldest,
              (SELECT count(*) FROM df.hook_deliveries WHERE received_at > now() - interval '5 minutes') AS deliveries,
              (SELECT count(*) FROM df._worker_epoch) AS workers`,
    ),
  );
  const r = rows[0];
  return { backlog: Number(r.backlog), oldestAgeS: Math.max(0, r.oldest ?? 0), deliveries5m: Number(r.deliveries), workers: Number(r.workers) };
}

/** Serves GET /metrics (and nothing else) on its own port. */
export function serveMetrics(m: PromMetrics, opts: { port: number; hostname?: string }): Promise<ApiServer> {
  return serveFetch(async (req) => {
    const url = new URL(req.url);
    if (url.pathname !== '/metrics') return new Response('not found\n', { status: 404 });
    if (req.method !== 'GET' && req.method !== 'HEAD') return new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });
    try {
      return new Response(await m.scrape(), { headers: { 'content-type': m.registry.contentType } });
    } catch (err) {
      return new Response(`scrape failed: ${(err as Error).message}\n`, { status: 503 });
    }
  }, opts);
}
