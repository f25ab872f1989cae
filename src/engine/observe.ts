/**
 * What the engine tells the outside about each run once it has committed: the metrics port (counters
 * and latencies), a debug log line carrying instance_id and node_id, and an OpenTelemetry span. All
 * synchronous and cheap: a run is reported after the fact, so the span is made with its start and end
 * times rather than held open around the step (no context to carry through the step's awaits).
 *
 * The span goes through @opentelemetry/api's global tracer: a no-op until the application registers an
 * SDK (a NonRecordingSpan is all it costs). `withdrawn` and `contended` runs did no work: no span.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { EngineContext } from './context.ts';
import type { RunResult } from './types.ts';

// A proxy: it finds a provider registered after this module loaded.
const tracer = trace.getTracer('pgflare');
const NO_SPAN = new Set(['withdrawn', 'contended']);

/** Reports `r`, a run that began (its claim) at `startedAt` (ms since the epoch), claimed at `now`. */
export function observe(ctx: EngineContext, r: RunResult, startedAt: number, now: Date): void {
  const end = Date.now();
  const durationMs = end - startedAt;
  const claimLatencyMs = r.runAt ? Math.max(0, now.getTime() - r.runAt.getTime()) : null;
  try {
    ctx.options.metrics?.step(r, { durationMs, claimLatencyMs });
  } catch (err) {
    ctx.log.warn('metrics port failed', { error: err });
  }
  ctx.log.debug('step', {
    instance_id: r.instanceId,
    node_id: r.nodeId,
    node_type: r.nodeType,
    kind: r.kind,
    failed: r.failed || undefined,
    ms: durationMs,
    ready: r.ready.length,
  });
  if (NO_SPAN.has(r.kind)) return;
  const span = tracer.startSpan('pgflare.step', {
    startTime: startedAt,
    attributes: {
      'pgflare.instance_id': r.instanceId,
      'pgflare.node_id': r.nodeId,
      'pgflare.node_type': r.nodeType ?? 'unknown',
      'pgflare.kind': r.kind,
    },
  });
  if (r.failed) span.setStatus({ code: SpanStatusCode.ERROR, message: 'step failed' });
  else if (r.kind === 'retry') span.setStatus({ code: SpanStatusCode.ERROR, message: 'attempt failed; retrying' });
  span.end(end);
}
