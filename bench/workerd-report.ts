/** The tables bench/workerd.ts prints: issue 19's targets, workerd ÷ Node, and where a W1 step's time goes. */
import { cpus } from 'node:os';
import { percentile, round, table, type Measurement } from './common.ts';
import { targetRows } from './workerd-targets.ts';
import type { NodeProfile } from './workerd-node.ts';
import type { WorkerdSizes } from './workerd-setup.ts';
import type { QueueProfile } from './workerd-trace.ts';

export const f = (x: number | null | undefined, d = 2) => (x == null || !Number.isFinite(x) ? 'n/a' : String(round(x, d)));
export const p50 = (xs: number[]) => round(percentile(xs, 50), 3);

export interface Pair {
  workload: string;
  node: Measurement | undefined;
  workerd: Measurement | undefined;
}

function ratioText(p: Pair): string {
  const a = p.workerd?.value;
  const b = p.node?.value;
  if (a == null || b == null || b === 0) return 'n/a';
  const r = a / b;
  // Latencies: how many times slower; rates: the fraction of Node's rate.
  return `${round(r, 2)}×`;
}


export function report(pairs: Pair[], breakdown: Record<string, unknown>, m: Record<string, Measurement | undefined>, s: WorkerdSizes, syncCommit: string, failures: string[]): string {
  const out: string[] = [''];
  const detail = (name: string) => m[name]?.detail as { profile?: QueueProfile; cpuPerInvocation?: number | null; invocationsPerStep?: number | null } | undefined;
  const one = detail('W1 workerd');
  const chained = detail('W1 workerd chained');
  const nodeProf = breakdown.node as NodeProfile | null | undefined;
  out.push(
    `Issue 19 targets (workerd ÷ Node, same run; chain continuation: PGFLARE_CHAIN_STEPS as run, W1 only; queries: median per W1 queue invocation, chained: per step)`,
    table(
      targetRows({
        chain: { node: m['W1 node']?.value ?? null, one: m['W1 workerd']?.value ?? null, chained: m['W1 workerd chained']?.value ?? null },
        start: { node: m['W3 node']?.value ?? null, workerd: m['W3 workerd']?.value ?? null },
        drain: { node: m['W2 node']?.value ?? null, workerd: m['W2 workerd lanes']?.value ?? null },
        queries: {
          node: nodeProf?.queriesPerStep ?? null,
          one: one?.profile?.queriesP50 ?? null,
          chained: chained?.profile ? round(chained.profile.queriesSum / s.chain, 2) : null,
        },
        cpu: {
          one: one?.cpuPerInvocation ?? null,
          chained: chained?.cpuPerInvocation ?? null,
          chainedStepsPerInvocation: chained?.invocationsPerStep ? round(1 / chained.invocationsPerStep, 1) : null,
        },
      }),
    ),
    '',
  );
  out.push(
    `pgflare on workerd vs the Node runtime — same run, same PostgreSQL; synchronous_commit=${syncCommit}; ${cpus().length} cores shared: ` +
      `compare ratios, not absolute numbers. Sizes scaled down from issue 4 to keep the run short: chain ${s.chain} (1,000), W2 ${s.drainItems} instances (20,000), fan-out ${s.fanOut} (1,000), W3 ${s.w3Samples} samples (200).`,
  );
  out.push('', 'Ratios (workerd ÷ Node): for ms, how many times slower; for steps/s, the fraction of Node’s rate');
  const rows = [['workload', 'Node', 'workerd', 'workerd ÷ Node', 'notes']];
  for (const p of pairs) {
    const notes: string[] = [];
    const d = p.workerd?.detail as Record<string, unknown> | undefined;
    if (p.workerd?.unit === 'ms' && d) notes.push(`workerd p99 ${d.p99} ms, Node p99 ${(p.node?.detail as Record<string, unknown> | undefined)?.p99} ms`);
    if (d?.invocationsPerStep != null) notes.push(`${d.invocationsPerStep} queue invocations per step`);
    rows.push([
      p.workload,
      p.node?.value == null ? 'n/a' : `${p.node.value} ${p.node.unit}`,
      p.workerd?.value == null ? 'n/a' : `${p.workerd.value} ${p.workerd.unit}`,
      ratioText(p),
      notes.join('; '),
    ]);
  }
  out.push(table(rows));

  // Breakdown of one W1 step.
  const prof = (m['W1 workerd']?.detail as { profile?: QueueProfile; invocationsPerStep?: number } | undefined) ?? {};
  const q = prof.profile;
  const node = breakdown.node as NodeProfile | null;
  const fresh = breakdown.nodePerInvocation as NodeProfile | null;
  const nSession = breakdown.nodeNewSession as NodeProfile | null;
  const nEngine = breakdown.nodeNewEngine as NodeProfile | null;
  const rtt = (breakdown.rtt ?? {}) as Record<string, Record<string, number> | undefined>;
  out.push(
    '',
    'Where a W1 step’s time goes, ms per step. Node: the same engine on pg/TCP in an engine.runOnce loop, every query timed, with a new pool',
    '(session), a new engine, or both for every step ("per invocation": the way a Workers queue invocation runs it). workerd: timestamps inside',
    'the worker (bench/workerd-entry.ts).',
  );
  if (q && node) {
    const k = prof.invocationsPerStep ?? 1;
    const gap = q.gapMean ?? 0;
    const wTotal = (q.handlerMs + gap) * k;
    const wSession = q.connectMs * q.sessions * k;
    const wQueries = q.queryMs * k;
    const wQueue = (q.sendMs + gap) * k;
    const nOther = (p: NodeProfile | null) => (p ? p.msPerStep - p.queryMsPerStep - p.sessionMsPerStep : null);
    const ns = [node, nSession, nEngine, fresh];
    const cols = (get: (p: NodeProfile) => number, d = 3) => ns.map((p) => (p ? f(get(p), d) : 'n/a'));
    const wRows = [
      ['part', 'Node, pooled', 'Node, new session', 'Node, new engine', 'Node, per invocation', 'workerd, local queue', 'what it is'],
      ['total', ...cols((p) => p.msPerStep), f(wTotal, 3), 'workerd: invocations × (handler + between invocations)'],
      ['engine runs (invocations) per step', ...cols((p) => p.runsPerStep), f(k, 3), 'one queue invocation per run on Workers'],
      ['queries per step', ...cols((p) => p.queriesPerStep, 2), f(q.queries * k), 'a new engine reads current_user and the instance graph again'],
      ['waiting on queries', ...cols((p) => p.queryMsPerStep), f(wQueries, 3), 'a new backend runs its first queries with cold caches (plpgsql, plans, catalog)'],
      ['  mean per query', ...cols((p) => p.queryMs), f(q.queryMs / Math.max(q.queries, 1), 3), ''],
      ['session setup', ...cols((p) => p.sessionMsPerStep), f(wSession, 3), `${f(q.sessions)} new session(s) per invocation: connect, startup, SCRAM (workerd: WebSocket → proxy → TCP)`],
      ['queue send (sendBatch)', '0', '0', '0', '0', f(q.sendMs * k, 3), 'producer call to the local queue'],
      ['other', ...ns.map((p) => f(nOther(p), 3)), f(q.otherMs * k, 3), 'engine JavaScript, pool checkout/end, workerd glue'],
      [
        'between invocations',
        '—',
        '—',
        '—',
        '—',
        f(gap * k, 3),
        `handler returned → next entered (p50 ${f(q.gapP50)} ms; waitUntil(pool.end) settled ${f(q.settleMs)} ms after return): the local broker's turn-around`,
      ],
    ];
    out.push(table(wRows));
    if (fresh) {
      const total = wTotal - node.msPerStep;
      const share = (x: number) => `${f(x, 2)} ms (${Math.round((100 * x) / total)} %)`;
      const perInvocationShape = fresh.msPerStep - node.msPerStep;
      out.push(
        '',
        `workerd − Node (pooled) = ${f(total, 2)} ms per step, explained as:`,
        `  queue hop (send + the broker's turn-around between invocations):   ${share(wQueue)}`,
        `  a new session and engine per step, on pg/TCP (Node per invocation − Node pooled): ${share(perInvocationShape)}`,
        ...(nSession && nEngine
          ? [
              `    of which a new session (connect + cold backend; Node new session − pooled): ${f(nSession.msPerStep - node.msPerStep, 2)} ms,` +
                ` a new engine (2 more queries; Node new engine − pooled): ${f(nEngine.msPerStep - node.msPerStep, 2)} ms`,
            ]
          : []),
        `  the rest: WebSocket through the proxy, the Neon driver and workerd: ${share(total - wQueue - perInvocationShape)}`,
      );
    }
    out.push('', 'The queries of one W1 step, in order (text truncated):');
    out.push('  Node, pooled:');
    for (const t of node.texts ?? []) out.push(`    ${t}`);
    out.push('  workerd (one queue invocation):');
    for (const t of q.texts) out.push(`    ${t}`);
  } else out.push('  (missing: W1 workerd or the Node profile failed)');
  const r = [['round trip', 'pg over TCP (Node)', 'Neon driver over ws-proxy (Node)', 'Neon driver over ws-proxy (workerd)']];
  r.push(['new session, p50 ms', f(rtt.pgTcp?.connectP50, 3), f(rtt.neonFromNode?.connectP50, 3), f(rtt.neonFromWorkerd?.connectP50, 3)]);
  r.push(['SELECT 1, p50 ms', f(rtt.pgTcp?.selectOneP50, 3), f(rtt.neonFromNode?.selectOneP50, 3), f(rtt.neonFromWorkerd?.selectOneP50, 3)]);
  r.push(['SELECT 1, mean ms', f(rtt.pgTcp?.selectOneMean, 3), f(rtt.neonFromNode?.selectOneMean, 3), f(rtt.neonFromWorkerd?.selectOneMean, 3)]);
  out.push('', `Round trips on an idle connection (${s.rttQueries} × SELECT 1, ${s.rttSessions} new sessions)`, table(r));

  const profRows = [['phase', 'queue invocations', 'handler ms', 'sessions × ms', 'queries (ms)', 'send ms', 'hop p50 ms*', 'between p50 ms']];
  for (const name of ['W1 workerd', 'W1 workerd chained', 'W2 workerd', 'W2 workerd lanes', 'fan-out workerd', 'fan-out workerd lanes', 'W3 workerd']) {
    const p = (m[name]?.detail as { profile?: QueueProfile } | undefined)?.profile;
    if (!p) continue;
    profRows.push([name, String(p.invocations), f(p.handlerMs), `${f(p.sessions)} × ${f(p.connectMs)}`, `${f(p.queries)} (${f(p.queryMs)})`, f(p.sendMs), f(p.hopP50), f(p.gapP50)]);
  }
  out.push(
    '',
    'Per queue invocation, means. *hop = the message was sent → its handler entered: the queue latency for W1 and W3 (one message in flight); for the others it includes waiting behind the backlog',
    table(profRows),
  );
  const api = (m['W3 workerd']?.detail as { api?: Record<string, number> | null } | undefined)?.api;
  if (api) {
    out.push(
      '',
      `W3's POST /v1/instances invocations, means (the first step runs in their waitUntil): handler ${f(api.handlerMs)} ms, ` +
        `${f(api.sessions)} session(s) × ${f(api.connectMs)} ms, ${f(api.queries)} queries (${f(api.queryMs)} ms), ` +
        `waitUntil settled ${f(api.waitUntilMs)} ms after the response, ${f(api.sends)} queue sends`,
    );
  }
  if (failures.length) out.push('', 'FAILED:', ...failures.map((x) => `  ${x}`));
  return out.join('\n');
}
