/**
 * W1–W3 through local workerd and its queue (issue 5, item 7), each printed as a ratio to the Node
 * runtime measured in the same run, plus a timestamped breakdown of where a step's time goes on Workers.
 *
 *   npm run bench:workerd [-- --quick] [--chain 300] [--drain 300] [--fan-out 300] [--w3 100]
 *   npm run bench -- workerd …          (the same)
 *
 * One embedded PostgreSQL; scripts/ws-proxy.ts; the real worker (src/runtime/worker/index.ts, wrapped by
 * bench/workerd-entry.ts, which only records timestamps) bundled like the workerd tests and loaded into
 * workerd by Miniflare, twice:
 *  - "local queue": the queue consumer bound as in wrangler.toml (max_batch_size 1, timeout 0), so
 *    Miniflare's queue broker delivers every message the worker sends to its queue() handler. The broker
 *    keeps one batch in flight at a time: this is concurrency 1.
 *  - "8 lanes": no consumer; the worker's sends are recorded and the bench delivers them through
 *    workerd's queue() handler with 8 deliveries in flight (what Cloudflare's consumer autoscaling does
 *    and the local broker cannot), for W2's "8 concurrent steps".
 * Instances start from SQL (df.start) and get their first message from one cron sweep, except W3, which
 * starts through POST /v1/instances (the only path on Workers that does not wait for the cron).
 * See bench/README.md, "Workers runtime (workerd)".
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/runtime/node/embedded.ts';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { migrate } from '../src/migrate/runner.ts';
import { bundleWorker } from '../test/workerd/build.ts';
import { connect, mean, round, type BenchContext, type Measurement } from './common.ts';
import { engineChain, engineDrain, engineFanOut, engineWakeup, loadEngine } from './engine.ts';
import { W3_TABLES } from './w3.ts';
import { DATABASE, OWNER, OWNER_PASSWORD, sizesFor, startProxyProcess, startWorkerd, type Workerd, type WsProxy } from './workerd-setup.ts';
import { workerdChain, workerdDrain, workerdFanOut, workerdWakeup } from './workerd-workloads.ts';
import { nodeChainProfiles, nodeRtt, type NodeProfile } from './workerd-node.ts';
import { p50, report, type Pair } from './workerd-report.ts';

export { profileQueue, type QueueProfile } from './workerd-trace.ts';
export type { NodeProfile } from './workerd-node.ts';
export type { WorkerdSizes } from './workerd-setup.ts';

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      chain: { type: 'string' },
      repeats: { type: 'string' },
      drain: { type: 'string' },
      'fan-out': { type: 'string' },
      w3: { type: 'string' },
      'synchronous-commit': { type: 'string', default: 'off' },
      'chain-steps': { type: 'string', default: '100' },
      out: { type: 'string', default: join(import.meta.dirname, 'results', 'workerd-latest.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) {
    console.log(`usage: npm run bench:workerd -- [options]     (or: npm run bench -- workerd [options])
  --quick                 smoke sizes (chain 100, drain 100, fan-out 100, W3 20 samples; ~2 min)
  --chain N               W1 chain length (default 300)       --repeats N   W1 repeats (default 1)
  --drain N               W2 one-step instances (default 300; at most 10000: one cron sweep sends them)
  --fan-out N             W2 JOIN branches (default 300)       --w3 N        W3 samples (default 100)
  --synchronous-commit on|off   (default off, as npm run bench)
  --chain-steps N         PGFLARE_CHAIN_STEPS of the chain-continuation W1 run (default 100)
  --out FILE              JSON results (default bench/results/workerd-latest.json)`);
    return;
  }
  const s = sizesFor(args.quick);
  if (args.chain) s.chain = Number(args.chain);
  if (args.repeats) s.chainRepeats = Number(args.repeats);
  if (args.drain) s.drainItems = Number(args.drain);
  if (args['fan-out']) s.fanOut = Number(args['fan-out']);
  if (args.w3) s.w3Samples = Number(args.w3);
  if (s.drainItems > 10_000) throw new Error('--drain must be ≤ 10000 (one cron sweep sends at most 10000 messages)');
  const chainSteps = Number(args['chain-steps']);
  if (!Number.isInteger(chainSteps) || chainSteps < 2) throw new Error('--chain-steps must be an integer ≥ 2');
  const syncCommit = args['synchronous-commit'];
  if (!['on', 'off'].includes(syncCommit)) throw new Error('--synchronous-commit must be on or off');

  const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'pgflare-bench-'));
  let server: EmbeddedServer | undefined;
  let proxy: WsProxy | undefined;
  let w: Workerd | undefined;
  const started = new Date();
  const cleanUp = async () => {
    await w?.dispose().catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  const settings = { synchronous_commit: syncCommit, track_commit_timestamp: 'on' };
  const m: Record<string, Measurement | undefined> = {};
  let breakdown: Record<string, unknown> = {};
  let failures: string[] = [];
  try {
    log(`starting PostgreSQL in ${dataDir} (synchronous_commit=${syncCommit})`);
    server = await startEmbeddedPostgres({ dataDir, settings });
    const admin = await connect(server.superuserUrl);
    await admin.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD '${OWNER_PASSWORD}'`);
    await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${OWNER}`);
    await admin.end();
    const ctx: BenchContext = {
      ownerUrl: server.urlFor(DATABASE, OWNER, OWNER_PASSWORD),
      superUrl: server.urlFor(DATABASE),
      quick: args.quick,
      durationW2: 0,
      windowSeconds: 5,
      log,
    };
    const db = createPgDb({ connectionString: ctx.ownerUrl, max: 1 });
    try {
      log(`migrated: ${(await migrate(db)).applied.length} migrations`);
    } finally {
      await db.end();
    }
    const c = await connect(ctx.ownerUrl);
    await c.query(W3_TABLES + ' CREATE TABLE IF NOT EXISTS bench_w2_ids (id text);');
    await c.end();
    const avail = await loadEngine();
    if (!avail.engine || !avail.worker) throw new Error(`the engine is not available: ${avail.engineWhy ?? avail.workerWhy}`);

    const [p, bundle] = await Promise.all([startProxyProcess(), bundleWorker('bench/workerd-entry.ts')]);
    proxy = p;
    log(`ws-proxy on ${proxy.address}; worker bundled (${Math.round(bundle.bytes.length / 1024)} KiB)`);

    const step = async (name: string, fn: () => Promise<Measurement | void>) => {
      log(`${name} …`);
      try {
        const r = await fn();
        if (r) m[name] = r;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        log(`${name} FAILED: ${msg}`);
        failures.push(`${name}: ${msg}`);
      }
    };

    // Node rows first (the same sizes), then workerd with the local queue, then workerd with 8 lanes.
    await step('W1 node', () => engineChain(ctx, avail, { chain: s.chain, chainRepeats: s.chainRepeats }));
    await step('W2 node', () => engineDrain(ctx, avail, { drainItems: s.drainItems }));
    await step('fan-out node', () => engineFanOut(ctx, avail, { fanOut: s.fanOut }));
    await step('W3 node', () => engineWakeup(ctx, avail, { w3Samples: s.w3Samples }));
    let nodeProfile: NodeProfile | null = null;
    let nodeFresh: NodeProfile | null = null;
    let nodeSession: NodeProfile | null = null;
    let nodeEngine: NodeProfile | null = null;
    await step('node chain profiles (pooled; new session, new engine, both per step; interleaved)', async () => {
      // ~50 ms a step with a new session: at most 150 steps per chain is plenty for a per-step mean.
      [nodeProfile, nodeSession, nodeEngine, nodeFresh] = await nodeChainProfiles(ctx, avail, Math.min(150, s.chain), [
        { newSession: false, newEngine: false },
        { newSession: true, newEngine: false },
        { newSession: false, newEngine: true },
        { newSession: true, newEngine: true },
      ]);
    });
    let rttNode: Awaited<ReturnType<typeof nodeRtt>> | undefined;
    await step('node round trips', async () => {
      rttNode = await nodeRtt(ctx, proxy!, s);
    });

    w = await startWorkerd(bundle.path, ctx.ownerUrl, proxy, 'local-queue');
    log('workerd started (local queue consumer: max_batch_size 1, max_batch_timeout 0)');
    let rttWorkerd: { connectMs: number[]; endMs: number[]; queryMs: number[] } | undefined;
    await step('workerd round trips', async () => {
      rttWorkerd = (await (await w!.fetch(`/__bench/rtt?n=${s.rttQueries}&sessions=${s.rttSessions}`)).json()) as typeof rttWorkerd;
    });
    await step('W1 workerd', () => workerdChain(ctx, w!, s));
    await step('W2 workerd', () => workerdDrain(ctx, w!, s, 'local-queue'));
    await step('fan-out workerd', () => workerdFanOut(ctx, w!, s, 'local-queue'));
    await step('W3 workerd', () => workerdWakeup(ctx, w!, s));
    await w.dispose();
    w = await startWorkerd(bundle.path, ctx.ownerUrl, proxy, 'lanes');
    log('workerd restarted without a consumer: the bench delivers with 8 in flight');
    await step('W2 workerd lanes', () => workerdDrain(ctx, w!, s, 'lanes'));
    await step('fan-out workerd lanes', () => workerdFanOut(ctx, w!, s, 'lanes'));
    await w.dispose();
    w = await startWorkerd(bundle.path, ctx.ownerUrl, proxy, 'local-queue', { PGFLARE_CHAIN_STEPS: String(chainSteps), PGFLARE_CHAIN_MS: '60000' });
    log(`workerd restarted with the local queue and chain continuation (PGFLARE_CHAIN_STEPS=${chainSteps})`);
    await step('W1 workerd chained', () => workerdChain(ctx, w!, s));

    breakdown = {
      node: nodeProfile,
      nodePerInvocation: nodeFresh,
      nodeNewSession: nodeSession,
      nodeNewEngine: nodeEngine,
      rtt: {
        pgTcp: rttNode && { connectP50: p50(rttNode.pgConnect), selectOneP50: p50(rttNode.pgQuery), selectOneMean: round(mean(rttNode.pgQuery), 3) },
        neonFromNode: rttNode && { connectP50: p50(rttNode.neonConnect), selectOneP50: p50(rttNode.neonQuery), selectOneMean: round(mean(rttNode.neonQuery), 3) },
        neonFromWorkerd: rttWorkerd && {
          connectP50: p50(rttWorkerd.connectMs),
          endP50: p50(rttWorkerd.endMs),
          selectOneP50: p50(rttWorkerd.queryMs),
          selectOneMean: round(mean(rttWorkerd.queryMs), 3),
        },
      },
    };
  } finally {
    await cleanUp();
  }

  const pairs: Pair[] = [
    { workload: 'W1 ms/step (lower is better)', node: m['W1 node'], workerd: m['W1 workerd'] },
    { workload: 'W1 ms/step, chain continuation', node: m['W1 node'], workerd: m['W1 workerd chained'] },
    { workload: 'W2 drain steps/s, local queue (higher is better)', node: m['W2 node'], workerd: m['W2 workerd'] },
    { workload: 'W2 drain steps/s, 8 in flight', node: m['W2 node'], workerd: m['W2 workerd lanes'] },
    { workload: 'W2 fan-out steps/s, local queue', node: m['fan-out node'], workerd: m['fan-out workerd'] },
    { workload: 'W2 fan-out steps/s, 8 in flight', node: m['fan-out node'], workerd: m['fan-out workerd lanes'] },
    { workload: 'W3 p50 ms (lower is better)', node: m['W3 node'], workerd: m['W3 workerd'] },
  ];
  console.log(report(pairs, breakdown, m, s, syncCommit, failures));
  const out = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    settings: { synchronous_commit: syncCommit, track_commit_timestamp: 'on' },
    sizes: s,
    measurements: m,
    breakdown,
    failures,
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${args.out}`);
  if (failures.length) process.exitCode = 1;
}


if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
