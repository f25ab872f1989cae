/**
 * W3 with graphile-worker and pgflare interleaved: both workers idle at once on the same server, and each
 * round takes one sample of each, in a random order, every sample after its own idle gap. Run one after
 * the other, their p50s moved by up to 0.2 ms between runs with the state of this shared machine (graphile
 * 0.84-1.16 ms on the same build), more than the difference being measured; interleaved, both see the
 * same machine. Each worker listens on its own channel, so a sample wakes only its own contender. The
 * database is vacuumed first: each contender has just emptied its tables, and in a full run autovacuum
 * otherwise cleaned up W2's ~150 000 finished instances during the samples.
 */
import { idleGapMs, settle, sizes, sleep, type BenchContext, type Measurement } from './common.ts';
import { ENGINE_W3_METRIC, engineW3, unavailable, type EngineAvailability } from './engine.ts';
import { GRAPHILE_W3_METRIC, graphileW3 } from './graphile.ts';
import { w3Latencies } from './w3.ts';

export async function pairedWakeup(ctx: BenchContext, avail: EngineAvailability): Promise<Measurement[]> {
  const { w3Samples } = sizes(ctx.quick);
  if (!avail.worker) return [unavailable(ENGINE_W3_METRIC, 'ms', 'lower', `worker ${avail.workerWhy}`)];
  const g = await graphileW3(ctx);
  try {
    const e = await engineW3(avail, ctx);
    try {
      // Both emptied their tables just now: vacuum before measuring, not during.
      await settle(ctx);
      for (let i = 1; i <= w3Samples; i++) {
        const order = Math.random() < 0.5 ? [g, e] : [e, g];
        for (const c of order) {
          await sleep(idleGapMs());
          await c.sample(i);
        }
      }
    } finally {
      await e.stop();
    }
  } finally {
    await g.stop();
  }
  const note = 'samples interleaved with the other contender';
  return [
    { ...(await w3Latencies(ctx, 'graphile', GRAPHILE_W3_METRIC)), note },
    { ...(await w3Latencies(ctx, 'pgflare', ENGINE_W3_METRIC)), note },
  ];
}
