/**
 * Issue 19's targets for `npm run bench:workerd`: each workerd figure as a ratio to the Node runtime in
 * the same run, against its target, with and without chain continuation (PGFLARE_CHAIN_STEPS); and the
 * CPU time of the workerd process per queue invocation, against the Workers Free plan's 10 ms.
 *
 * CPU: workerd's own clock advances only on I/O, so the worker cannot time its CPU; the bench reads the
 * workerd process's user + system time from /proc (Linux) before and after a phase and divides by the
 * phase's queue invocations. That process also runs Miniflare's local queue broker and the bench's trace
 * reads, so the figure is an upper bound of the worker's own CPU time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { round } from './common.ts';

/** The clock ticks per second of /proc's utime/stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

function procStat(pid: string): { ppid: number; comm: string; cpuTicks: number } | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may hold spaces: split after its closing one.
    const close = raw.lastIndexOf(')');
    const comm = raw.slice(raw.indexOf('(') + 1, close);
    const fields = raw.slice(close + 2).split(' ');
    // fields[0] is state (field 3); ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), comm, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** User + system CPU ms of the workerd processes under this one; null where /proc is not available. */
export function workerdCpuMs(): number | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  const stats = new Map<number, NonNullable<ReturnType<typeof procStat>>>();
  for (const p of pids) {
    const s = procStat(p);
    if (s) stats.set(Number(p), s);
  }
  const mine = new Set<number>([process.pid]);
  // Descendants of this process (a few levels suffice: Miniflare spawns workerd directly).
  for (let level = 0; level < 4; level++) for (const [pid, s] of stats) if (mine.has(s.ppid)) mine.add(pid);
  let ticks = 0;
  let found = false;
  for (const pid of mine) {
    const s = stats.get(pid);
    if (s && s.comm.includes('workerd')) {
      ticks += s.cpuTicks;
      found = true;
    }
  }
  return found ? (ticks * 1000) / USER_HZ : null;
}

export interface TargetInput {
  /** ms per step: Node, workerd one step per invocation, workerd with chain continuation */
  chain: { node: number | null; one: number | null; chained: number | null };
  /** start → first step p50 ms (workerd: POST /v1/instances, first step in the request's waitUntil) */
  start: { node: number | null; workerd: number | null };
  /** steps/s draining one-step instances, 8 deliveries in flight */
  drain: { node: number | null; workerd: number | null };
  /** queries per step invocation on a warm isolate (p50 over W1's invocations; chained: per step) */
  queries: { node: number | null; one: number | null; chained: number | null };
  /** workerd process CPU ms per queue invocation (W1) */
  cpu: { one: number | null; chained: number | null; chainedStepsPerInvocation: number | null };
}

const x = (a: number | null, b: number | null) => (a == null || b == null || b === 0 ? null : round(a / b, 2));
const v = (a: number | null | undefined, unit = '') => (a == null ? 'n/a' : `${round(a, 2)}${unit}`);
const met = (r: number | null, ok: (r: number) => boolean) => (r == null ? 'n/a' : ok(r) ? 'met' : 'not met');

export function targetRows(t: TargetInput): string[][] {
  const rows = [['measure', 'Node', 'workerd, 1 step/invocation', 'ratio', 'target', '', 'workerd, chain continuation', 'ratio', '']];
  const chainOne = x(t.chain.one, t.chain.node);
  const chainCont = x(t.chain.chained, t.chain.node);
  rows.push(['chain step, ms', v(t.chain.node), v(t.chain.one), v(chainOne, '×'), '≤ 3× Node', met(chainOne, (r) => r <= 3), v(t.chain.chained), v(chainCont, '×'), met(chainCont, (r) => r <= 3)]);
  const start = x(t.start.workerd, t.start.node);
  rows.push(['start → first step p50, ms', v(t.start.node), v(t.start.workerd), v(start, '×'), '≤ 3× Node', met(start, (r) => r <= 3), '(same path)', '', '']);
  const drain = x(t.drain.workerd, t.drain.node);
  rows.push(['drain, 8 in flight, steps/s', v(t.drain.node), v(t.drain.workerd), v(drain, '×'), '≥ 0.3× Node', met(drain, (r) => r >= 0.3), '(one-step instances: no chain)', '', '']);
  rows.push([
    'queries per step invocation, warm isolate',
    v(t.queries.node),
    v(t.queries.one),
    '',
    '≤ 3',
    met(t.queries.one, (q) => q <= 3),
    `${v(t.queries.chained)} per step`,
    '',
    // Per step over the whole chain, the instance's activation included: compared at one decimal.
    met(t.queries.chained, (q) => round(q, 1) <= 3),
  ]);
  rows.push([
    'CPU per queue invocation, ms (workerd process, upper bound)',
    '',
    v(t.cpu.one),
    '',
    '≤ 10 ms (Free plan)',
    met(t.cpu.one, (c) => c <= 10),
    `${v(t.cpu.chained)} (${v(t.cpu.chainedStepsPerInvocation)} steps each; ${t.cpu.chained != null && t.cpu.chainedStepsPerInvocation ? round(t.cpu.chained / t.cpu.chainedStepsPerInvocation, 2) : 'n/a'} per step)`,
    '',
    met(t.cpu.chained, (c) => c <= 10),
  ]);
  return rows;
}
