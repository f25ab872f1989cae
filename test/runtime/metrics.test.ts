/**
 * Prometheus metrics of a busy engine: a few hundred steps with failures and retries drained by hand,
 * then a scrape over HTTP; the counters and histogram counts match what ran, and the backlog gauges
 * read the ready rows. Then the Node worker's own endpoint (PGFLARE_METRICS_PORT).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createPromMetrics, serveMetrics } from '../../src/runtime/node/metrics.ts';
import { startNodeWorker } from '../../src/runtime/node/worker.ts';
import type { ApiServer } from '../../src/runtime/node/serve.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later } from '../helpers/engine.ts';

const t = useTestDb();
const servers: ApiServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** `name{labels} value` lines of an exposition, keyed by `name{labels}`. */
function parse(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parse(await res.text());
}

describe('Prometheus metrics', () => {
  it('counts steps, failures and retries of a busy engine, and reads the backlog at scrape time', async () => {
    const prom = createPromMetrics(t.db);
    const server = await serveMetrics(prom, { port: 0 });
    servers.push(server);
    // 150 two-step instances, 30 that fail twice (one retry each, then failed), 20 that fail once and
    // then succeed on their retry.
    // A sequence is not rolled back with the failed attempt: the first nextval divides by zero, the second not.
    for (let i = 1; i <= 20; i++) await t.query(`CREATE SEQUENCE flip_${i}`);
    await t.query(`SELECT df.start('SELECT ' || i || ' AS a' ~> 'SELECT 2 AS b') FROM generate_series(1, 150) i`);
    await t.query(`SELECT df.start('SELECT 1/0 AS ' || 'x' || i) FROM generate_series(1, 30) i`);
    await t.query(`SELECT df.start(format('SELECT 1/(nextval(''flip_%s'') - 1)::int AS f', i)) FROM generate_series(1, 20) i`);
    const engine = engineFor(t, { metrics: prom.port, batchSize: 16, retry: { maxAttempts: 2, baseMs: 0, maxMs: 0, jitter: 0 } });
    // A checkpoint that met a row another series held steps its row aside 250 ms (stepAside): due later.
    const ran = (await engine.drain({ concurrency: 2 })) + (await engine.drain({ concurrency: 2, now: later(1) }));
    const [st] = await t.query(`SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status = 'failed')::int AS failed FROM df.instances`);
    expect(st).toEqual({ completed: 170, failed: 30 });

    const m = await scrape(server.url);
    const sum = (prefix: string) => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
    expect(sum('pgflare_steps_total{')).toBe(ran);
    expect(m.get('pgflare_steps_failed_total{node_type="SQL"}')).toBe(30);
    expect(m.get('pgflare_steps_retried_total{node_type="SQL"}')).toBe(50);
    expect(m.get('pgflare_steps_total{node_type="SQL",kind="retry"}')).toBe(50);
    // 300 steps of the two-step instances, 30 final failures, 20 successful retries.
    expect(m.get('pgflare_steps_total{node_type="SQL",kind="step"}')).toBe(350);
    expect(m.get('pgflare_step_duration_seconds_count{node_type="SQL"}')).toBe(400);
    expect(m.get('pgflare_step_duration_seconds_bucket{le="+Inf",node_type="SQL"}')).toBe(400);
    // Every run but a contended one (a checkpoint that met a held row: no claim recorded) has a latency.
    const contended = [...m].filter(([k]) => k.startsWith('pgflare_steps_total{') && k.includes('kind="contended"')).reduce((a, [, v]) => a + v, 0);
    expect(m.get('pgflare_claim_latency_seconds_count')).toBe(ran - contended);
    expect(m.get('pgflare_ready_backlog')).toBe(0);
    expect(m.get('pgflare_oldest_ready_age_seconds')).toBe(0);

    // Ready work nobody claimed: the gauges read it from df.nodes at scrape time.
    await t.query(`SELECT df.start('SELECT 1') FROM generate_series(1, 7)`);
    await t.query(`UPDATE df.nodes SET run_at = now() - interval '90 seconds' WHERE run_at IS NOT NULL`);
    const m2 = await scrape(server.url);
    expect(m2.get('pgflare_ready_backlog')).toBe(7);
    expect(m2.get('pgflare_oldest_ready_age_seconds')).toBeGreaterThanOrEqual(90);
    expect(m2.get('pgflare_oldest_ready_age_seconds')).toBeLessThan(200);
    expect(m2.get('pgflare_steps_failed_total{node_type="SQL"}')).toBe(30);
  });

  it('answers only GET /metrics', async () => {
    const server = await serveMetrics(createPromMetrics(t.db), { port: 0 });
    servers.push(server);
    expect((await fetch(`${server.url}/v1/instances`)).status).toBe(404);
    const post = await fetch(`${server.url}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('the Node worker serves them on metricsPort, and stops serving when stopped', async () => {
    const w = await startNodeWorker({ connectionString: t.url(), concurrency: 1, metricsPort: 0, pruneIntervalMs: 0, scheduleIntervalMs: 0 });
    try {
      expect(w.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const m = await scrape(w.metricsUrl!);
      expect(m.has('pgflare_ready_backlog')).toBe(true);
      expect(m.get('pgflare_workers_seen')).toBeGreaterThanOrEqual(1);
    } finally {
      await w.stop();
    }
    await expect(fetch(`${w.metricsUrl}/metrics`)).rejects.toThrow();
  });

  it("counts the schedule firings of the worker's schedule pass, by outcome", async () => {
    await t.query(`SELECT df.define_workflow('metrics_tick', 'SELECT 1')`);
    // Yearly (its next fire is months away, so a second pass fires nothing whatever the minute), due a
    // moment ago; no timer (scheduleIntervalMs 0): the test runs the worker's schedule pass itself.
    await t.query(`SELECT df.create_schedule('metrics_every_minute', 'metrics_tick', '0 0 1 1 *')`);
    await t.query(`UPDATE df.schedules SET next_fire_at = now() - interval '1 second' WHERE name = 'metrics_every_minute'`);
    const w = await startNodeWorker({ connectionString: t.url(), concurrency: 1, metricsPort: 0, pruneIntervalMs: 0, scheduleIntervalMs: 0 });
    try {
      expect((await scrape(w.metricsUrl!)).get('pgflare_schedules_fired_total{outcome="started"}')).toBeUndefined();
      const fired = await w.schedulePass();
      expect(fired.map((f) => [f.schedule, f.outcome])).toEqual([['metrics_every_minute', 'started']]);
      expect((await scrape(w.metricsUrl!)).get('pgflare_schedules_fired_total{outcome="started"}')).toBe(1);
      expect(await w.schedulePass()).toEqual([]);
      expect((await t.query(`SELECT count(*)::int AS n FROM df.schedule_fires`))[0].n).toBe(1);
    } finally {
      await w.stop();
      await t.query(`SELECT df.drop_schedule('metrics_every_minute')`);
    }
  });
});
