/**
 * Shared pieces of the benchmark harness: the bench database, timing, statistics and the
 * per-window rate sampler. Nothing here knows about a particular contender.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';

/** What every contender gets: the same server, the same database, the same owner role. */
export interface BenchContext {
  /** Connection string of the database owner (not a superuser), like a user who installed pgflare. */
  ownerUrl: string;
  /** Connection string of the cluster superuser, same database (CHECKPOINT, settings). */
  superUrl: string;
  quick: boolean;
  /** Seconds of the sustained (over-time) phases. */
  durationW2: number;
  /** Seconds per rate window in the sustained phases. */
  windowSeconds: number;
  log: (line: string) => void;
}

/** One line of a workload's result table. */
export interface Measurement {
  contender: 'floor' | 'graphile' | 'pgflare';
  /** Short name of what was measured, e.g. "chain of 1000, ms/step". */
  metric: string;
  /** The headline number (median of repeats where there are repeats); null = not available. */
  value: number | null;
  unit: string;
  /** Lower is better (latency) or higher is better (throughput). */
  better: 'lower' | 'higher';
  /** Extra numbers worth keeping in the JSON (repeats, percentiles, windows, …). */
  detail?: Record<string, unknown>;
  /** Why value is null, or a caveat. */
  note?: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const nowMs = () => performance.now();

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

export const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export async function connect(url: string, applicationName = 'pgflare-bench'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: applicationName });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Flushes dirty buffers before a timed phase, so a checkpoint does not land inside the measurement. */
export async function checkpoint(ctx: BenchContext): Promise<void> {
  const c = await connect(ctx.superUrl);
  try {
    await c.query('CHECKPOINT');
  } finally {
    await c.end();
  }
}

/**
 * VACUUM ANALYZE of the whole bench database, then CHECKPOINT: the garbage of earlier phases (W2 leaves
 * ~150 000 finished instances, and each contender empties its tables before W3) is cleaned before a
 * latency phase instead of by autovacuum during it.
 */
export async function settle(ctx: BenchContext): Promise<void> {
  const c = await connect(ctx.superUrl);
  try {
    await c.query('VACUUM ANALYZE');
    await c.query('CHECKPOINT');
  } finally {
    await c.end();
  }
}

export interface Window {
  /** Seconds since the phase started, at the window's end. */
  t: number;
  /** Items completed in the window. */
  count: number;
  /** count / the window's real length (timers drift under load). */
  rate: number;
}

/**
 * Samples a monotonically growing counter every `seconds`, giving the rate per window.
 * `read` may be synchronous (an in-process counter) or a query.
 */
export class WindowSampler {
  readonly windows: Window[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private lastAt = 0;
  private startAt = 0;
  private busy = false;
  private stopped = false;

  constructor(
    private readonly read: () => number | Promise<number>,
    private readonly seconds: number,
    private readonly onWindow?: (w: Window) => void,
  ) {}

  async start(): Promise<void> {
    this.last = await this.read();
    this.startAt = this.lastAt = nowMs();
    this.timer = setInterval(() => void this.tick(), this.seconds * 1000);
  }

  private async tick(final = false): Promise<void> {
    if (this.busy && !final) return;
    this.busy = true;
    try {
      const value = await this.read();
      const at = nowMs();
      const elapsed = (at - this.lastAt) / 1000;
      // A final partial window shorter than half a window says little about the rate; drop it.
      if (!final || elapsed >= this.seconds / 2) {
        const w = { t: round((at - this.startAt) / 1000, 1), count: value - this.last, rate: round((value - this.last) / elapsed, 1) };
        this.windows.push(w);
        this.onWindow?.(w);
      }
      this.last = value;
      this.lastAt = at;
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<Window[]> {
    if (this.stopped) return this.windows;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.tick(true);
    return this.windows;
  }
}

/** Summary of a rate-over-time series: is it flat? */
export function summariseWindows(windows: Window[]) {
  const rates = windows.map((w) => w.rate);
  const first = rates[0] ?? NaN;
  const last = rates[rates.length - 1] ?? NaN;
  const early = median(rates.slice(0, Math.max(1, Math.ceil(rates.length / 3))));
  return {
    windows: windows.length,
    medianRate: round(median(rates), 1),
    firstRate: first,
    lastRate: last,
    minRate: rates.length ? Math.min(...rates) : NaN,
    maxRate: rates.length ? Math.max(...rates) : NaN,
    /** last window / first window: 1.0 = flat, 0.5 = halved. */
    lastOverFirst: first > 0 ? round(last / first, 2) : null,
    /** Median of the last third of the windows / median of the first third (null if the first third did nothing). */
    lateOverEarly: early > 0 ? round(median(rates.slice(Math.floor((rates.length * 2) / 3))) / early, 2) : null,
  };
}

export function formatWindows(windows: Window[]): string {
  return windows.map((w) => `${w.t}s:${Math.round(w.rate)}`).join(' ');
}

/** Runs `fn` on `n` workers at once and resolves when all are done. */
export async function parallel(n: number, fn: (worker: number) => Promise<void>): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
}

/** Waits until `check` is true, polling every `everyMs`; throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 2, what = 'condition'): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (nowMs() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Idle gap between W3 samples: long enough that the worker is parked, jittered so no timer lines up. */
export function idleGapMs(): number {
  return 40 + Math.random() * 40;
}

/** Row counts shared by all contenders, so the same work is compared. */
export function sizes(quick: boolean) {
  return quick
    ? { chain: 200, chainRepeats: 3, drainItems: 3000, fanOut: 200, w3Samples: 30, floor8Tx: 3000 }
    : { chain: 1000, chainRepeats: 3, drainItems: 20000, fanOut: 1000, w3Samples: 200, floor8Tx: 20000 };
}

/** A Markdown table: the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
  const line = (r: string[]) => '| ' + r.map((c, i) => pad(c ?? '', widths[i])).join(' | ') + ' |';
  return [line(rows[0]), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}
