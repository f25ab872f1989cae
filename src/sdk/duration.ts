/** Durations for sleeps and time-outs: a number of seconds, or text such as '90s', '5 minutes', '1h 30m'. */

export type Duration = number | string;

const UNITS: Record<string, number> = {
  ms: 0.001, millisecond: 0.001, milliseconds: 0.001,
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86_400, day: 86_400, days: 86_400,
  w: 604_800, week: 604_800, weeks: 604_800,
};

/** Seconds in `d`; throws RangeError for text that is not a duration or a negative/non-finite number. */
export function toSeconds(d: Duration, what = 'duration'): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new RangeError(`${what} must be a non-negative number of seconds, got ${d}`);
    return d;
  }
  const text = d.trim().toLowerCase();
  const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;
  let total = 0;
  let at = 0;
  let m: RegExpExecArray | null;
  while (at < text.length && (m = part.exec(text)) !== null) {
    const unit = UNITS[m[2]!];
    if (unit === undefined) break;
    total += Number(m[1]) * unit;
    at = part.lastIndex;
  }
  if (text === '' || at !== text.length) {
    throw new RangeError(`${what}: '${d}' is not a duration (e.g. 30, '90s', '5 minutes', '1h 30m')`);
  }
  // Keep sums such as 0.1 + 0.2 from printing 0.30000000000000004.
  return Math.round(total * 1e6) / 1e6;
}

/** Whole seconds, for the DSL arguments that are integers (sleep, signal and HTTP time-outs). */
export function toWholeSeconds(d: Duration, what: string): number {
  const s = toSeconds(d, what);
  if (!Number.isInteger(s)) throw new RangeError(`${what} must be a whole number of seconds, got ${s}`);
  return s;
}
