/**
 * W3 bookkeeping shared by the contenders. A sample's starting transaction inserts its row into
 * bench_w3_start; the step, when it begins, inserts (contender, sample, clock_timestamp()) into
 * bench_w3_seen. Latency = began − the commit timestamp of the starting transaction, both read from the
 * server's clock (the bench server runs with track_commit_timestamp = on), so neither client round
 * trips nor polling of the harness enter the number.
 */
import { connect, percentile, median, round, type BenchContext, type Measurement } from './common.ts';

/**
 * How long the harness waits after a sample's COMMIT before it first asks whether the step began. A
 * sample takes 1-3 ms; polling every 2 ms from the start put the harness's own round trips and event-loop
 * work on the measured path, on the same 2 cores (and, interleaved, in the same Node process as both
 * workers). The latency itself is read from the server's clocks, so waiting adds nothing to it.
 */
export const W3_QUIET_MS = 20;

export const W3_TABLES = `
  CREATE TABLE IF NOT EXISTS bench_w3_start (contender text NOT NULL, sample int NOT NULL, PRIMARY KEY (contender, sample));
  CREATE TABLE IF NOT EXISTS bench_w3_seen (contender text NOT NULL, sample int NOT NULL, began timestamptz NOT NULL);`;

export async function w3Latencies(
  ctx: BenchContext,
  contender: Measurement['contender'],
  metric: string,
  /** Only samples numbered from..to (both included). */
  range: [number, number] = [1, 2_147_483_647],
  label = '',
): Promise<Measurement> {
  const c = await connect(ctx.superUrl);
  let ms: number[];
  try {
    const { rows } = await c.query<{ ms: number }>(
      `SELECT extract(epoch FROM (min(v.began) - pg_xact_commit_timestamp(s.xmin))) * 1000 AS ms
         FROM bench_w3_start s JOIN bench_w3_seen v USING (contender, sample)
        WHERE s.contender = $1 AND s.sample BETWEEN $2 AND $3
        GROUP BY s.sample, s.xmin`,
      [contender, range[0], range[1]],
    );
    ms = rows.map((r) => Number(r.ms));
  } finally {
    await c.end();
  }
  const p50 = round(percentile(ms, 50));
  const p99 = round(percentile(ms, 99));
  ctx.log(`${contender} W3${label}: ${ms.length} samples, p50 ${p50} ms, p99 ${p99} ms, max ${round(Math.max(...ms))} ms`);
  return {
    contender,
    metric,
    value: p50,
    unit: 'ms',
    better: 'lower',
    detail: { samples: ms.length, p50, p99, median: round(median(ms)), min: round(Math.min(...ms)), max: round(Math.max(...ms)) },
  };
}
