/**
 * What the engine reports per run: a debug log line with instance_id and node_id (captured), and an
 * OpenTelemetry span per step through @opentelemetry/api's global tracer (a hand-written recording
 * provider: no SDK), failed steps with an error status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanStatusCode, trace, type Span, type SpanOptions, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { createLogger } from '../../src/log.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, start } from '../helpers/engine.ts';

const t = useTestDb();

interface Recorded {
  name: string;
  attributes: Record<string, unknown>;
  status?: { code: number; message?: string };
  start?: unknown;
  ended: boolean;
}
const spans: Recorded[] = [];

/** Just enough of a Span to record what the engine sets. */
function recordingSpan(name: string, options: SpanOptions = {}): Span {
  const rec: Recorded = { name, attributes: { ...(options.attributes ?? {}) }, start: options.startTime, ended: false };
  spans.push(rec);
  const span = {
    spanContext: () => ({ traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1', traceFlags: 1 }),
    setAttribute: (k: string, v: unknown) => ((rec.attributes[k] = v), span),
    setAttributes: (a: Record<string, unknown>) => (Object.assign(rec.attributes, a), span),
    addEvent: () => span,
    addLink: () => span,
    addLinks: () => span,
    setStatus: (s: { code: number; message?: string }) => ((rec.status = s), span),
    updateName: (n: string) => ((rec.name = n), span),
    end: () => {
      rec.ended = true;
    },
    isRecording: () => true,
    recordException: () => undefined,
  };
  return span as unknown as Span;
}
const provider: TracerProvider = {
  getTracer: (): Tracer =>
    ({
      startSpan: recordingSpan,
      startActiveSpan: () => {
        throw new Error('not used by the engine');
      },
    }) as unknown as Tracer,
};

beforeAll(() => {
  expect(trace.setGlobalTracerProvider(provider)).toBe(true);
});
afterAll(() => trace.disable());

describe('per-step observability', () => {
  it('logs every step with instance_id and node_id, and makes a span per step', async () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l), 'json');
    const ok = await start(t, `'SELECT 1 AS a' ~> 'SELECT 2 AS b'`);
    const bad = await start(t, `'SELECT 1/0'`);
    spans.length = 0;
    expect(await engineFor(t, { log }).drain()).toBe(3);

    const steps = lines.map((l) => JSON.parse(l)).filter((o) => o.msg === 'step');
    expect(steps).toHaveLength(3);
    for (const s of steps) {
      expect(s).toMatchObject({ level: 'debug', node_type: 'SQL', kind: 'step' });
      expect([ok, bad]).toContain(s.instance_id);
      expect(typeof s.node_id).toBe('string');
      expect(s.node_id.length).toBeGreaterThan(0);
    }
    const nodes = await t.query(`SELECT instance_id, id FROM df.nodes WHERE node_type = 'SQL' ORDER BY instance_id, id`);
    expect(steps.map((s) => `${s.instance_id}/${s.node_id}`).sort()).toEqual(nodes.map((n) => `${n.instance_id}/${n.id}`).sort());
    expect(steps.filter((s) => s.failed === true).map((s) => s.instance_id)).toEqual([bad]);

    expect(spans).toHaveLength(3);
    for (const s of spans) {
      expect(s.name).toBe('pgflare.step');
      expect(s.ended).toBe(true);
      expect(typeof s.start).toBe('number');
      expect(s.attributes).toMatchObject({ 'pgflare.node_type': 'SQL', 'pgflare.kind': 'step' });
    }
    const failed = spans.filter((s) => s.status?.code === SpanStatusCode.ERROR);
    expect(failed.map((s) => s.attributes['pgflare.instance_id'])).toEqual([bad]);
    expect(spans.filter((s) => s.attributes['pgflare.instance_id'] === ok)).toHaveLength(2);
  });

  it('a retried attempt is a span with an error status and kind retry', async () => {
    const id = await start(t, `'SELECT 1/0'`);
    spans.length = 0;
    await engineFor(t, { retry: { maxAttempts: 2, baseMs: 0, maxMs: 0, jitter: 0 } }).drain();
    expect(spans.map((s) => [s.attributes['pgflare.instance_id'], s.attributes['pgflare.kind'], s.status?.code])).toEqual([
      [id, 'retry', SpanStatusCode.ERROR],
      [id, 'step', SpanStatusCode.ERROR],
    ]);
  });
});
