/**
 * bench/workerd.ts turns the timestamps bench/workerd-entry.ts records inside workerd into the
 * per-invocation breakdown it prints; this checks that arithmetic on a hand-made trace.
 */
import { describe, expect, it } from 'vitest';
import { profileQueue } from '../../bench/workerd.ts';

const msg = (n: number) => ({ instanceId: 'i1', nodeId: `n${n}` });
const inv = (start: number, end: number, n: number, extra: Partial<{ connects: number[]; queries: number; queryMs: number; sends: number[]; settled: number; texts: string[] }> = {}) => ({
  kind: 'queue' as const,
  start,
  end,
  bodies: [msg(n)],
  connects: [10],
  queries: 6,
  queryMs: 30,
  sends: [2],
  texts: [],
  ...extra,
});

describe('profileQueue', () => {
  it('splits handler time and measures hops and gaps of a serial chain', () => {
    const trace = {
      running: 0,
      invocations: [
        // Out of order on purpose: the profile sorts by start.
        inv(200, 250, 2, { settled: 251, texts: ['BEGIN; SELECT * FROM df._claim(…)', 'SELECT 1'] }),
        inv(100, 150, 1, { settled: 151 }),
        inv(300, 360, 3, { connects: [20], queryMs: 36, settled: 362 }),
        { kind: 'fetch' as const, start: 0, end: 5, bodies: [], connects: [], queries: 1, queryMs: 1, sends: [], texts: [] },
      ],
      sends: [
        { key: 'i1/n1', at: 90, ms: 1 },
        { key: 'i1/n2', at: 140, ms: 2 },
        // A sweep's duplicate sent earlier: the hop is measured from the latest send before the handler.
        { key: 'i1/n3', at: 100, ms: 1 },
        { key: 'i1/n3', at: 240, ms: 2 },
        // Sent after the handler started: not its message.
        { key: 'i1/n3', at: 400, ms: 1 },
      ],
    };
    const p = profileQueue(trace, true)!;
    expect(p.invocations).toBe(3);
    expect(p.handlerMs).toBeCloseTo((50 + 50 + 60) / 3, 2);
    expect(p.sessions).toBe(1);
    expect(p.connectMs).toBeCloseTo(40 / 3, 2);
    expect(p.queries).toBe(6);
    expect(p.queryMs).toBeCloseTo(32, 2);
    expect(p.sendMs).toBe(2);
    // other = handler − sessions − queries − sends, per invocation: (50−10−30−2) + (50−10−30−2) + (60−20−36−2)
    expect(p.otherMs).toBeCloseTo((8 + 8 + 2) / 3, 2);
    // hops: 100−90, 200−140, 300−240
    expect(p.hopP50).toBe(60);
    // gaps between handlers: 200−150, 300−250
    expect(p.gapP50).toBe(50);
    expect(p.gapMean).toBe(50);
    expect(p.settleMs).toBeCloseTo(4 / 3, 2);
    expect(p.texts).toEqual(['BEGIN; SELECT * FROM df._claim(…)', 'SELECT 1']);
  });

  it('reports no gaps for concurrent delivery, and nothing for a trace without queue invocations', () => {
    const trace = { running: 0, invocations: [inv(100, 150, 1), inv(110, 170, 2)], sends: [] };
    const p = profileQueue(trace, false)!;
    expect(p.gapP50).toBeNull();
    expect(Number.isNaN(p.hopP50)).toBe(true);
    expect(profileQueue({ running: 0, invocations: [], sends: [] }, true)).toBeNull();
  });
});
