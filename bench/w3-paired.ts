/**
 * W3 with graphile-worker and pgflare interleaved: both workers idle at once on the same server, and each
 * round takes one sample of each, in a random order, every sample after its own idle gap. Run one after
 * the other, their p50s moved by up to 0.2 ms between runs with the state of this shared machine (graphile
 * 0.84-1.16 ms on the same build), more than the difference being measured; interleaved, both see the
 * same machine. Each worker listens on its own channel, so a sample wakes only its own contender's worker,
 * but PostgreSQL signals every listening session of the database, in the order of their backend ids
 * (async.c, SignalBackends): the listener that connected first is woken first for both contenders'
 * notifications, and the other's wake-up waits behind it for a core (bench/w3-trace.ts: the contender
 * started second heard its notification 0.015-0.03 ms later, whichever it was). So half the samples are
 * taken with graphile-worker started first and half with pgflare started first. The database is vacuumed
 * first: each contender has just emptied its tables, and in a full run autovacuum otherwise cleaned up
 * W2's ~150 000 finished instances during the samples.
 */
import { connect, idleGapMs, settle, sizes, sleep, type BenchContext, type Measurement } from './common.ts';
import { ENGINE_W3_METRIC, engineW3, unavailable, type EngineAvailability } from './engine.ts';
import { GRAPHILE_W3_METRIC, graphileW3 } from './graphile.ts';
import { w3Latencies } from './w3.ts';

type Contender = { sample(i: number): Promise<void>; stop(): Promise<void> };

export async function pairedWakeup(ctx: BenchContext, avail: EngineAvailability): Promise<Measurement[]> {
  const { w3Samples } = sizes(ctx.quick);
  if (!avail.worker) return [unavailable(ENGINE_W3_METRIC, 'ms', 'lower', `worker ${avail.workerWhy}`)];
  const half = Math.ceil(w3Samples / 2);
  const orders: string[] = [];
  for (const [from, to, graphileFirst] of [
    [1, half, true],
    [half + 1, w3Samples, false],
  ] as const) {
    const started: Contender[] = [];
    try {
      for (const start of graphileFirst ? [() => graphileW3(ctx), () => engineW3(avail, ctx)] : [() => engineW3(avail, ctx), () => graphileW3(ctx)]) {
        started.push(await start());
      }
      orders.push(await listenerOrder(ctx));
      const [g, e] = graphileFirst ? started : [started[1], started[0]];
      // Both emptied their tables just now: vacuum before measuring, not during.
      await settle(ctx);
      for (let i = from; i <= to; i++) {
        for (const c of Math.random() < 0.5 ? [g, e] : [e, g]) {
          await sleep(idleGapMs());
          await c.sample(i);
        }
      }
    } finally {
      for (const c of started.reverse()) await c.stop();
    }
  }
  ctx.log(`W3 listeners, in the order PostgreSQL signals them: ${orders.join('; then ')}`);
  for (const [range, label] of [
    [[1, half], ' (graphile-worker started first)'],
    [[half + 1, w3Samples], ' (pgflare started first)'],
  ] as const) {
    await w3Latencies(ctx, 'graphile', GRAPHILE_W3_METRIC, [...range], label);
    await w3Latencies(ctx, 'pgflare', ENGINE_W3_METRIC, [...range], label);
  }
  const note = 'samples interleaved with the other contender, half with each started first';
  return [
    { ...(await w3Latencies(ctx, 'graphile', GRAPHILE_W3_METRIC)), note },
    { ...(await w3Latencies(ctx, 'pgflare', ENGINE_W3_METRIC)), note },
  ];
}

/** The workers' LISTEN sessions in backend-id order, the order in which a NOTIFY signals them. */
async function listenerOrder(ctx: BenchContext): Promise<string> {
  const c = await connect(ctx.superUrl);
  try {
    const { rows } = await c.query<{ who: string }>(
      `SELECT CASE WHEN a.query ILIKE 'LISTEN pgflare%' THEN 'pgflare' ELSE 'graphile' END AS who
         FROM pg_stat_get_backend_idset() AS id
         JOIN pg_stat_activity a ON a.pid = pg_stat_get_backend_pid(id)
        WHERE a.query ILIKE 'LISTEN %'
        ORDER BY id`,
    );
    return rows.map((r) => r.who).join(' → ');
  } finally {
    await c.end();
  }
}
