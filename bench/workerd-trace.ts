/** The trace bench/workerd-entry.ts records inside the worker, and its per-invocation means (bench/workerd.ts). */
import { mean, median, round } from './common.ts';
import type { Invocation as RecordedInvocation, SendRecord } from './workerd-entry.ts';

/** An invocation as workerd-entry.ts recorded it; the trace holds finished ones only. */
export type Invocation = Omit<RecordedInvocation, 'end' | 'sample'> & { end: number };
export interface Trace {
  invocations: Invocation[];
  sends: SendRecord[];
  /** queue invocations still running when the trace was read */
  running: number;
}

export const keyOf = (body: unknown) => {
  const b = body as { instanceId?: string; nodeId?: string } | null;
  return `${b?.instanceId}/${b?.nodeId}`;
};

/** Per-invocation means over the queue invocations of a trace (ms unless named otherwise). */
export interface QueueProfile {
  invocations: number;
  /** handler entered → returned */
  handlerMs: number;
  /** sessions opened per invocation, and ms each (WebSocket via the proxy + startup + auth) */
  sessions: number;
  connectMs: number;
  queries: number;
  /** queries per invocation, median, and all the invocations' queries together */
  queriesP50: number;
  queriesSum: number;
  /** summed query waits per invocation */
  queryMs: number;
  /** producer calls (QUEUE.sendBatch) per invocation, summed ms */
  sendMs: number;
  /** handler time not spent connecting, querying or sending: the engine's JavaScript, pool checkout, timers */
  otherMs: number;
  /** the message's send was called → the handler that got it was entered (median) */
  hopP50: number;
  /** handler returned → its ctx.waitUntil work (the pool's end) settled */
  settleMs: number | null;
  /** the queries of one invocation (the first sampled one), in order */
  texts: string[];
  /** previous queue handler returned → this one entered (serial delivery only; median) */
  gapP50: number | null;
  gapMean: number | null;
}

export function profileQueue(trace: Trace, serial: boolean): QueueProfile | null {
  const inv = trace.invocations.filter((i) => i.kind === 'queue').sort((a, b) => a.start - b.start);
  if (!inv.length) return null;
  const sendsByKey = new Map<string, number[]>();
  for (const s of trace.sends) {
    const list = sendsByKey.get(s.key) ?? [];
    list.push(s.at);
    sendsByKey.set(s.key, list);
  }
  const hops: number[] = [];
  for (const i of inv) {
    for (const b of i.bodies) {
      // The latest send of this body before the handler started (a sweep may have sent it too).
      const before = (sendsByKey.get(keyOf(b)) ?? []).filter((t) => t <= i.start);
      if (before.length) hops.push(i.start - Math.max(...before));
    }
  }
  const gaps: number[] = [];
  for (let k = 1; k < inv.length; k++) gaps.push(inv[k].start - inv[k - 1].end);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const handler = inv.map((i) => i.end - i.start);
  const connect = inv.map((i) => sum(i.connects));
  const query = inv.map((i) => i.queryMs);
  const send = inv.map((i) => sum(i.sends));
  const allConnects = inv.flatMap((i) => i.connects);
  return {
    invocations: inv.length,
    handlerMs: round(mean(handler), 2),
    sessions: round(mean(inv.map((i) => i.connects.length)), 2),
    connectMs: round(mean(allConnects), 2),
    queries: round(mean(inv.map((i) => i.queries)), 2),
    queriesP50: median(inv.map((i) => i.queries)),
    queriesSum: sum(inv.map((i) => i.queries)),
    queryMs: round(mean(query), 2),
    sendMs: round(mean(send), 2),
    otherMs: round(mean(inv.map((_, k) => handler[k] - connect[k] - query[k] - send[k])), 2),
    hopP50: round(median(hops), 2),
    settleMs: inv.some((i) => i.settled) ? round(mean(inv.filter((i) => i.settled).map((i) => i.settled! - i.end)), 2) : null,
    texts: inv.find((i, k) => k > 0 && i.texts?.length)?.texts ?? inv.find((i) => i.texts?.length)?.texts ?? [],
    gapP50: serial && gaps.length ? round(median(gaps), 2) : null,
    gapMean: serial && gaps.length ? round(mean(gaps), 2) : null,
  };
}
