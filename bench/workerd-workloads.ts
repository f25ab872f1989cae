/** W1–W3 run through workerd (bench/workerd.ts): the workerd rows of its tables. */
import {
  checkpoint,
  connect,
  idleGapMs,
  mean,
  median,
  nowMs,
  percentile,
  round,
  sleep,
  type BenchContext,
  type Measurement,
} from './common.ts';
import { chainExpression, clearInstances, startMany } from './engine.ts';
import { workerdCpuMs } from './workerd-targets.ts';
import { quiesce, TOKEN, waitAllDone, waitInstance, type Workerd, type WorkerdSizes } from './workerd-setup.ts';
import { profileQueue, type QueueProfile } from './workerd-trace.ts';

export function wd(metric: string, value: number | null, unit: string, better: 'lower' | 'higher', detail?: Record<string, unknown>): Measurement {
  // The Measurement type names the Node contenders; the workerd rows reuse it with this label.
  return { contender: 'workerd' as Measurement['contender'], metric, value, unit, better, detail };
}

/** W1 on workerd: one chain instance, started from SQL, first message from one cron sweep. */
export async function workerdChain(ctx: BenchContext, w: Workerd, s: WorkerdSizes): Promise<Measurement> {
  const c = await connect(ctx.ownerUrl);
  const perStep: number[] = [];
  let profile: QueueProfile | null = null;
  let cpuPerInvocation: number | null = null;
  try {
    const graph = (await c.query<{ g: string }>(`SELECT ${chainExpression(s.chain)} AS g`)).rows[0].g;
    for (let r = 0; r < s.chainRepeats; r++) {
      await quiesce(w);
      await clearInstances(ctx);
      await w.trace();
      const id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
      const cpu0 = workerdCpuMs();
      const t0 = nowMs();
      await w.cron();
      await waitInstance(ctx, id, 'workerd W1');
      perStep.push((nowMs() - t0) / s.chain);
      const cpu1 = workerdCpuMs();
      profile = profileQueue(await w.trace(), true);
      if (cpu0 != null && cpu1 != null && profile) cpuPerInvocation = round((cpu1 - cpu0) / profile.invocations, 2);
    }
  } finally {
    await c.end();
  }
  const value = round(median(perStep));
  ctx.log(`workerd W1: chain of ${s.chain}: ${value} ms/step (repeats ${perStep.map((x) => round(x)).join(', ')}); workerd CPU ${cpuPerInvocation} ms per invocation`);
  return wd(`one instance of ${s.chain} sequential steps: ms per step`, value, 'ms/step', 'lower', {
    repeats: perStep.map((x) => round(x)),
    profile,
    invocationsPerStep: profile ? round(profile.invocations / s.chain, 3) : null,
    cpuPerInvocation,
  });
}

/** Delivers recorded messages with `lanes` deliveries in flight until `done()`. */
async function runLanes(w: Workerd, lanes: number, done: () => boolean): Promise<void> {
  const pending: unknown[] = [];
  let pulling: Promise<void> | null = null;
  const pull = () =>
    (pulling ??= (async () => {
      pending.push(...(await w.sent()));
    })().finally(() => (pulling = null)));
  const lane = async () => {
    while (!done()) {
      let body = pending.shift();
      if (body === undefined) {
        await pull();
        body = pending.shift();
        if (body === undefined) {
          await sleep(5);
          continue;
        }
      }
      await w.deliver(body);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/**
 * One cron sweep sends the backlog's first messages; the local queue (or 8 lanes of deliveries) does the
 * rest until `done` resolves. Returns the wall time and the queue profile of the run.
 */
async function queueRun(w: Workerd, mode: 'local-queue' | 'lanes', done: () => Promise<unknown>) {
  await w.trace();
  await w.sent().catch(() => undefined);
  const t0 = nowMs();
  await w.cron();
  let finished = false;
  const lanes = mode === 'lanes' ? runLanes(w, 8, () => finished) : Promise.resolve();
  try {
    await done();
  } finally {
    finished = true;
    await lanes;
  }
  const seconds = (nowMs() - t0) / 1000;
  const profile = profileQueue(await w.trace(), mode === 'local-queue');
  const how = mode === 'lanes' ? '8 deliveries in flight' : 'local queue (1 in flight)';
  return { seconds, profile, how };
}

export async function workerdDrain(ctx: BenchContext, w: Workerd, s: WorkerdSizes, mode: 'local-queue' | 'lanes'): Promise<Measurement> {
  await quiesce(w);
  await clearInstances(ctx);
  await startMany(ctx.ownerUrl, s.drainItems);
  await checkpoint(ctx);
  const { seconds, profile, how } = await queueRun(w, mode, () => waitAllDone(ctx, `workerd W2 drain (${mode})`));
  const value = round(s.drainItems / seconds, 1);
  ctx.log(`workerd W2 (${how}): ${s.drainItems} instances in ${round(seconds, 2)} s: ${value} steps/s; ${profile?.invocations} queue invocations`);
  return wd(`${s.drainItems} one-step instances started at once, ${how}: steps/s`, value, 'steps/s', 'higher', { seconds: round(seconds, 2), profile });
}

export async function workerdFanOut(ctx: BenchContext, w: Workerd, s: WorkerdSizes, mode: 'local-queue' | 'lanes'): Promise<Measurement> {
  await quiesce(w);
  await clearInstances(ctx);
  const leaf = { node_type: 'SQL', query: 'SELECT 1' };
  const graph = JSON.stringify({ node_type: 'JOIN', left_node: leaf, right_node: leaf, extra_nodes: Array.from({ length: s.fanOut - 2 }, () => leaf) });
  const c = await connect(ctx.ownerUrl);
  let id: string;
  try {
    id = (await c.query<{ id: string }>('SELECT df.start($1) AS id', [graph])).rows[0].id;
  } finally {
    await c.end();
  }
  const { seconds, profile, how } = await queueRun(w, mode, () => waitInstance(ctx, id, `workerd fan-out (${mode})`));
  const value = round(s.fanOut / seconds, 1);
  ctx.log(`workerd fan-out (${how}): JOIN of ${s.fanOut} in ${round(seconds, 2)} s: ${value} steps/s`);
  return wd(`one instance, JOIN of ${s.fanOut} branches, ${how}: steps/s`, value, 'steps/s', 'higher', { seconds: round(seconds, 3), profile });
}

/**
 * W3 on workerd: POST /v1/instances (the API commits df.start, answers, then runs the instance's first
 * claim, its activation and its one step, in the request's waitUntil on the request's session). A
 * trigger on df.instances, present only during this phase, records the starting transaction's xid so the
 * latency is measured on the server's clock exactly like the Node rows (bench/w3.ts).
 */
export async function workerdWakeup(ctx: BenchContext, w: Workerd, s: WorkerdSizes): Promise<Measurement> {
  await quiesce(w);
  await clearInstances(ctx);
  const c = await connect(ctx.ownerUrl);
  let profile: QueueProfile | null = null;
  let api: Record<string, number> | null = null;
  try {
    await c.query(`
      CREATE TABLE IF NOT EXISTS bench_w3_api_start (label text PRIMARY KEY);
      CREATE OR REPLACE FUNCTION bench_w3_record() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
      BEGIN INSERT INTO public.bench_w3_api_start (label) VALUES (NEW.label); RETURN NULL; END $$;
      CREATE TRIGGER bench_w3_record AFTER INSERT ON df.instances FOR EACH ROW WHEN (NEW.label LIKE 'bench-w3-%')
        EXECUTE FUNCTION bench_w3_record();`);
    await w.trace();
    for (let i = 1; i <= s.w3Samples; i++) {
      await sleep(idleGapMs());
      const res = await w.fetch('/v1/instances', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          label: `bench-w3-${i}`,
          workflow: `'INSERT INTO public.bench_w3_seen (contender, sample, began) VALUES (''workerd'', ${i}, clock_timestamp())'`,
        }),
      });
      if (res.status >= 300) throw new Error(`POST /v1/instances: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      const deadline = nowMs() + 10_000;
      while ((await c.query(`SELECT 1 FROM bench_w3_seen WHERE contender = 'workerd' AND sample = $1`, [i])).rows.length === 0) {
        if (nowMs() > deadline) throw new Error(`workerd W3 sample ${i}: the step did not begin within 10 s`);
        await sleep(5);
      }
    }
    const trace = await w.trace();
    profile = profileQueue(trace, false);
    // The starts themselves: the first step runs in each POST's waitUntil (PGFLARE_API_RUN_STEP).
    const posts = trace.invocations.filter((i) => i.kind === 'fetch' && i.path === '/v1/instances');
    if (posts.length) {
      api = {
        requests: posts.length,
        handlerMs: round(mean(posts.map((i) => i.end - i.start)), 2),
        sessions: round(mean(posts.map((i) => i.connects.length)), 2),
        connectMs: round(mean(posts.flatMap((i) => i.connects)), 2),
        queries: round(mean(posts.map((i) => i.queries)), 2),
        queryMs: round(mean(posts.map((i) => i.queryMs)), 2),
        waitUntilMs: round(mean(posts.filter((i) => i.settled).map((i) => i.settled! - i.end)), 2),
        sends: round(mean(posts.map((i) => i.sends.length)), 2),
      };
    }
  } finally {
    await c.query('DROP TRIGGER IF EXISTS bench_w3_record ON df.instances').catch(() => undefined);
    await c.end();
  }
  const sc = await connect(ctx.superUrl);
  let ms: number[];
  try {
    const { rows } = await sc.query<{ ms: number }>(
      `SELECT extract(epoch FROM (min(v.began) - pg_xact_commit_timestamp(s.xmin))) * 1000 AS ms
         FROM bench_w3_api_start s JOIN bench_w3_seen v ON v.contender = 'workerd' AND s.label = 'bench-w3-' || v.sample
        GROUP BY s.label, s.xmin`,
    );
    ms = rows.map((r) => Number(r.ms));
  } finally {
    await sc.end();
  }
  const p50 = round(percentile(ms, 50));
  const p99 = round(percentile(ms, 99));
  ctx.log(`workerd W3: ${ms.length} samples, p50 ${p50} ms, p99 ${p99} ms, max ${round(Math.max(...ms))} ms`);
  return wd('POST /v1/instances committed → step begins: p50 ms', p50, 'ms', 'lower', {
    samples: ms.length,
    p50,
    p99,
    min: round(Math.min(...ms)),
    max: round(Math.max(...ms)),
    profile,
    api,
  });
}
