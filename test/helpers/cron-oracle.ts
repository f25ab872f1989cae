/**
 * An independent oracle for the SQL cron (migration 0012, df.cron_next_fire): croner matches the cron
 * fields; pgflare's two documented differences from croner are stated here, not hidden:
 *
 * 1. Day of month / day of week (Vixie): OR-ed only when neither field starts with `*`; `*\/2` counts
 *    as `*`. croner ORs whenever both fields are other than `*`, so the oracle passes `domAndDow: true`
 *    when either field starts with `*` (AND with an unrestricted field is the other field alone).
 * 2. Daylight saving: a wall time that a spring-forward gap skips fires once, at the first instant
 *    after the gap; a wall time that a fall-back repeats fires once, at its first occurrence. croner
 *    shifts a skipped time by the gap's length, and in the repeated hour can answer a time before the
 *    one asked about. So croner runs on the zone's wall clock (as if it were UTC, where nothing is
 *    skipped or repeated) and `wallToInstant` below applies pgflare's rule.
 *
 * Also: `5/15` (from 5, every 15) needs croner's `sloppyRanges`; a fire more than 10 years after the
 * start is "never" (NULL), as in SQL.
 */
import { Cron } from 'croner';

const MINUTE = 60_000;
const DAY = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's wall clock at `ms`, to the second, as a UTC timestamp (the "naive" local time). */
function wallAt(ms: number, timeZone: string): number {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour) % 24, Number(p.minute), Number(p.second));
}

/** The zone's offset (local − UTC) at `ms`, whole seconds. */
const offsetAt = (ms: number, timeZone: string) => wallAt(ms, timeZone) - Math.floor(ms / 1000) * 1000;

/**
 * The instant a wall time denotes: the earlier one when it occurs twice (fall back); the first
 * instant after the gap when it does not occur (spring forward).
 */
export function wallToInstant(wall: number, timeZone: string): number {
  const guesses = [...new Set([wall - offsetAt(wall - DAY, timeZone), wall - offsetAt(wall + DAY, timeZone)])].sort((a, b) => a - b);
  const valid = guesses.filter((t) => wallAt(t, timeZone) === wall);
  if (valid.length > 0) return valid[0]!;
  // In a gap: the offset changes between the two guesses; the change is on a whole minute.
  let lo = guesses[0]!;
  let hi = guesses[guesses.length - 1]!;
  const before = offsetAt(lo, timeZone);
  while (hi - lo > MINUTE) {
    const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
    if (offsetAt(mid, timeZone) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** croner with difference 1 applied: Vixie's day-field rule. */
function croner(expr: string, timezone: string): Cron {
  const fields = expr.trim().split(/\s+/);
  // Macros (@daily, …) have a `*` day field, so AND is right for them too.
  const domAndDow = fields.length !== 5 || fields[2]!.startsWith('*') || fields[4]!.startsWith('*');
  return new Cron(expr, { timezone, mode: '5-part', sloppyRanges: true, domAndDow });
}

/** The first fire time of standard cron `expr` in `timeZone` strictly after `after`, or null. */
export function oracleNextFire(expr: string, after: Date, timeZone: string): Date | null {
  const cron = croner(expr, 'UTC');
  let wall = wallAt(after.getTime(), timeZone);
  const limit = Date.UTC(new Date(wall).getUTCFullYear() + 11, 0, 1);
  // Each candidate already passed (the repeated hour of a fall-back) moves one wall minute on.
  for (let guard = 0; guard < 10_000; guard++) {
    const next = cron.nextRun(new Date(wall));
    if (!next || next.getTime() >= limit) return null;
    const t = wallToInstant(next.getTime(), timeZone);
    if (t > after.getTime()) return new Date(t);
    wall = next.getTime();
  }
  return null;
}

/** croner in the zone with its own DST rule (difference 2 not applied), to show where the two rules part. */
export function cronerInZone(expr: string, after: Date, timeZone: string): Date | null {
  return croner(expr, timeZone).nextRun(after);
}

/** Whether the zone's offset changes between two instants (a DST transition lies between them). */
export function offsetChangesBetween(from: number, to: number, timeZone: string): boolean {
  const [a, b] = from <= to ? [from, to] : [to, from];
  const first = offsetAt(a, timeZone);
  for (let t = a; t < b; t += 15 * MINUTE) if (offsetAt(t, timeZone) !== first) return true;
  return offsetAt(b, timeZone) !== first;
}
