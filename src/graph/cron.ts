/**
 * Two cron dialects, both pure (time is an argument).
 *
 * 1. pg_durable's WAIT_SCHEDULE dialect (SPEC §3.9): the Rust `cron` crate with "0 " prepended, i.e.
 *    `min hour dom month dow [year]`, evaluated in UTC. Day of week 1 = Sunday … 7 = Saturday (0 is
 *    invalid), dom and dow must BOTH match, `?` only in dom/dow, years 1970–2100, no `@daily`.
 *    `parseCron` / `nextFireAfter`.
 * 2. Standard (Vixie) cron for schedules: `min hour dom month dow`, dow 0–7 (0 and 7 = Sunday),
 *    dom/dow OR-ed when both are restricted, `@daily` & co., evaluated in an IANA time zone.
 *    `parseStandardCron` / `nextFireInZone`.
 */

export class CronError extends Error {
  override name = 'CronError';
}

/** Matching values per field; `days` holds dom/dow, whose combination differs by dialect. */
export interface CronSchedule {
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** pg_durable: 1 = Sunday … 7 = Saturday. Standard: 0 = Sunday … 6 = Saturday. */
  readonly daysOfWeek: ReadonlySet<number>;
  /** pg_durable only; all of 1970–2100 when the field is absent. */
  readonly years: ReadonlySet<number> | null;
  /** Standard dialect: dom/dow are OR-ed (both fields restricted, neither starts with `*`). */
  readonly dayOr: boolean;
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: Record<string, number>;
  allowAny?: boolean; // `?`
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH_FULL = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DOW_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DOW_FULL = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

function nameTable(short: string[], full: string[] | null, base: number): Record<string, number> {
  const t: Record<string, number> = {};
  short.forEach((n, i) => (t[n] = i + base));
  full?.forEach((n, i) => (t[n] = i + base));
  return t;
}

// The Rust crate knows both short and full names; Vixie cron only the three-letter ones.
const DURABLE_FIELDS: FieldSpec[] = [
  { name: 'Minutes', min: 0, max: 59 },
  { name: 'Hours', min: 0, max: 23 },
  { name: 'Days of Month', min: 1, max: 31, allowAny: true },
  { name: 'Months', min: 1, max: 12, names: nameTable(MONTH_NAMES, MONTH_FULL, 1) },
  { name: 'Days of Week', min: 1, max: 7, names: nameTable(DOW_NAMES, DOW_FULL, 1), allowAny: true },
  { name: 'Years', min: 1970, max: 2100 },
];

const STANDARD_FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: nameTable(MONTH_NAMES, null, 1) },
  { name: 'day of week', min: 0, max: 7, names: nameTable(DOW_NAMES, null, 0) },
];

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

function parseField(text: string, spec: FieldSpec): Set<number> {
  const fail = (problem: string): never => {
    throw new CronError(`${spec.name} field '${text}': ${problem}`);
  };
  const out = new Set<number>();
  const value = (tok: string): number => {
    if (/^\d+$/.test(tok)) {
      const n = Number(tok);
      if (n < spec.min) fail(`${n} is below the minimum ${spec.min}`);
      if (n > spec.max) fail(`${n} is above the maximum ${spec.max}`);
      return n;
    }
    if (/^[A-Za-z]+$/.test(tok)) {
      const n = spec.names?.[tok.toLowerCase()];
      if (n === undefined) fail(spec.names ? `unknown name '${tok}'` : `names are not allowed in this field ('${tok}')`);
      return n!;
    }
    return fail(`'${tok}' is not a number${spec.names ? ' or name' : ''}`);
  };
  for (const item of text.split(',')) {
    if (item === '') fail('empty list item');
    const slash = item.split('/');
    if (slash.length > 2) fail(`'${item}' has more than one '/'`);
    const [base, stepText] = slash;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText)) fail(`step '${stepText}' is not a number`);
      step = Number(stepText);
      if (step === 0) fail('range step cannot be zero');
    }
    let values: number[];
    if (base === '*' || (base === '?' && spec.allowAny)) {
      values = range(spec.min, spec.max);
    } else if (base === '?') {
      return fail(`'?' is only allowed in the day-of-month and day-of-week fields`);
    } else if (base.includes('-')) {
      const parts = base.split('-');
      if (parts.length !== 2 || parts[0] === '' || parts[1] === '') fail(`'${base}' is not a valid range`);
      const lo = value(parts[0]);
      const hi = value(parts[1]);
      if (lo > hi) fail(`range ${base} starts after it ends`);
      values = range(lo, hi);
    } else {
      const v = value(base);
      if (stepText !== undefined && !/^\d+$/.test(base)) fail(`a step needs '*', a range or a number before '/'`);
      // `5/15` = from 5 to the maximum, every 15.
      values = stepText === undefined ? [v] : range(v, spec.max);
    }
    values.forEach((v, i) => {
      if (i % step === 0) out.add(v);
    });
  }
  return out;
}

/**
 * Parses a WAIT_SCHEDULE expression (SPEC §3.9). Throws CronError naming the field and the problem;
 * df.wait_for_schedule reports it as `Invalid cron expression '<e>': <message>`.
 */
export function parseCron(expr: string): CronSchedule {
  const fields = expr.trim().split(/\s+/).filter(Boolean);
  if (expr.trim().startsWith('@')) {
    throw new CronError(`shorthand '${expr.trim()}' is not supported; write the five fields (e.g. '0 0 * * *' for @daily)`);
  }
  if (fields.length < 5 || fields.length > 6) {
    throw new CronError(
      `expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a year, got ${fields.length}`,
    );
  }
  const sets = fields.map((f, i) => parseField(f, DURABLE_FIELDS[i]));
  return {
    minutes: sets[0],
    hours: sets[1],
    daysOfMonth: sets[2],
    months: sets[3],
    daysOfWeek: sets[4],
    years: sets[5] ?? null,
    dayOr: false,
  };
}

/** Parses standard 5-field cron (Vixie semantics) plus @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly. */
export function parseStandardCron(expr: string): CronSchedule {
  const trimmed = expr.trim();
  const macro = MACROS[trimmed.toLowerCase()];
  if (trimmed.startsWith('@') && !macro) throw new CronError(`unknown shorthand '${trimmed}'`);
  const fields = (macro ?? trimmed).split(/\s+/).filter(Boolean);
  if (fields.length !== 5) {
    throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`);
  }
  const sets = fields.map((f, i) => parseField(f, STANDARD_FIELDS[i]));
  const dow = new Set([...sets[4]].map((d) => d % 7)); // 7 = Sunday = 0
  return {
    minutes: sets[0],
    hours: sets[1],
    daysOfMonth: sets[2],
    months: sets[3],
    daysOfWeek: dow,
    years: null,
    // Vixie: a field starting with '*' (including '*/2') counts as unrestricted for the OR rule.
    dayOr: !fields[2].startsWith('*') && !fields[4].startsWith('*'),
  };
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

// ---------------------------------------------------------------------------------------------
// Searching forward over wall-clock fields
// ---------------------------------------------------------------------------------------------

interface Wall {
  y: number;
  mo: number; // 1–12
  d: number;
  h: number;
  mi: number;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, mo: number): number {
  return mo === 2 && isLeap(y) ? 29 : MONTH_DAYS[mo - 1];
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function weekday(y: number, mo: number, d: number): number {
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  return t.getUTCDay(); // 0 = Sunday
}

function dayMatches(s: CronSchedule, w: Wall, durableDow: boolean): boolean {
  const wd = weekday(w.y, w.mo, w.d);
  const dowOk = s.daysOfWeek.has(durableDow ? wd + 1 : wd);
  const domOk = s.daysOfMonth.has(w.d);
  return s.dayOr ? domOk || dowOk : domOk && dowOk;
}

function nextIn(set: ReadonlySet<number>, from: number, max: number): number | null {
  for (let v = from; v <= max; v++) if (set.has(v)) return v;
  return null;
}

/**
 * The first wall-clock minute at or after `start` that matches, or null when there is none up to
 * and including `lastYear`. Skips whole years, months, days and hours, so it costs at most a few
 * thousand steps even for impossible expressions.
 */
function nextWall(s: CronSchedule, start: Wall, lastYear: number, durableDow: boolean): Wall | null {
  let { y, mo, d, h, mi } = start;
  while (y <= lastYear) {
    if (s.years && !s.years.has(y)) {
      y++;
      mo = 1;
      d = 1;
      h = 0;
      mi = 0;
      continue;
    }
    const m2 = nextIn(s.months, mo, 12);
    if (m2 === null) {
      y++;
      mo = 1;
      d = 1;
      h = 0;
      mi = 0;
      continue;
    }
    if (m2 !== mo) {
      mo = m2;
      d = 1;
      h = 0;
      mi = 0;
    }
    if (d > daysInMonth(y, mo) || !dayMatches(s, { y, mo, d, h, mi }, durableDow)) {
      d++;
      h = 0;
      mi = 0;
      if (d > daysInMonth(y, mo)) {
        d = 1;
        mo++;
        if (mo > 12) {
          mo = 1;
          y++;
        }
      }
      continue;
    }
    const h2 = nextIn(s.hours, h, 23);
    if (h2 === null) {
      h = 24; // forces the day to advance below
    } else if (h2 !== h) {
      h = h2;
      mi = 0;
    }
    const mi2 = h === 24 ? null : nextIn(s.minutes, mi, 59);
    if (mi2 === null) {
      mi = 0;
      h++;
      if (h > 23) {
        h = 0;
        d++;
        if (d > daysInMonth(y, mo)) {
          d = 1;
          mo++;
          if (mo > 12) {
            mo = 1;
            y++;
          }
        }
      }
      continue;
    }
    return { y, mo, d, h, mi: mi2 };
  }
  return null;
}

function wallToUtcMs(w: Wall): number {
  const t = new Date(0);
  t.setUTCFullYear(w.y, w.mo - 1, w.d);
  t.setUTCHours(w.h, w.mi, 0, 0);
  return t.getTime();
}

function utcWall(ms: number): Wall {
  const t = new Date(ms);
  return { y: t.getUTCFullYear(), mo: t.getUTCMonth() + 1, d: t.getUTCDate(), h: t.getUTCHours(), mi: t.getUTCMinutes() };
}

const MINUTE = 60_000;

/**
 * Next fire time of a WAIT_SCHEDULE expression strictly after `after`, in UTC, on a whole minute;
 * null when the expression never fires again (e.g. `0 0 30 2 *`, or a year field in the past).
 * `expr` may be a string (parsed, throwing CronError) or a parsed schedule.
 */
export function nextFireAfter(expr: string | CronSchedule, after: Date): Date | null {
  const s = typeof expr === 'string' ? parseCron(expr) : expr;
  const startMs = Math.floor(after.getTime() / MINUTE) * MINUTE + MINUTE;
  let start = utcWall(startMs);
  if (start.y < 1970) start = { y: 1970, mo: 1, d: 1, h: 0, mi: 0 };
  const w = nextWall(s, start, 2100, true);
  return w ? new Date(wallToUtcMs(w)) : null;
}

// ---------------------------------------------------------------------------------------------
// Time zones (standard dialect)
// ---------------------------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
        era: 'short',
      });
    } catch {
      throw new CronError(`unknown time zone '${timeZone}'`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local wall-clock fields (to the second) of an instant in a zone. */
function zonedParts(ms: number, timeZone: string): Wall & { s: number } {
  const parts = formatterFor(timeZone).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  let y = Number(get('year'));
  if (/^B/i.test(get('era'))) y = 1 - y;
  return { y, mo: Number(get('month')), d: Number(get('day')), h: Number(get('hour')) % 24, mi: Number(get('minute')), s: Number(get('second')) };
}

/** UTC offset of the zone at an instant, in ms (local − UTC). */
function offsetAt(ms: number, timeZone: string): number {
  const p = zonedParts(ms, timeZone);
  const asUtc = wallToUtcMs(p) + p.s * 1000;
  return asUtc - Math.floor(ms / 1000) * 1000;
}

function sameWall(a: Wall, b: Wall): boolean {
  return a.y === b.y && a.mo === b.mo && a.d === b.d && a.h === b.h && a.mi === b.mi;
}

/**
 * The instant a local wall time denotes: the earlier one when it occurs twice (fall back); when it
 * does not exist (spring forward), the first instant after the gap.
 */
function wallToInstant(w: Wall, timeZone: string): number {
  const naive = wallToUtcMs(w);
  const DAY = 86_400_000;
  const before = offsetAt(naive - DAY, timeZone);
  const after = offsetAt(naive + DAY, timeZone);
  const valid = [...new Set([naive - before, naive - after])]
    .filter((t) => sameWall(zonedParts(t, timeZone), w))
    .sort((a, b) => a - b);
  if (valid.length > 0) return valid[0];
  // In a gap: the transition lies between these two guesses; find its first instant.
  let lo = Math.min(naive - before, naive - after);
  let hi = Math.max(naive - before, naive - after);
  const loOffset = offsetAt(lo, timeZone);
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (offsetAt(mid, timeZone) === loOffset) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Next fire time of a standard cron expression strictly after `after`, with fields read as wall
 * clock time in `timeZone` (IANA name). A wall time skipped by a DST gap fires once at the first
 * instant after the gap; a wall time repeated by a fall-back fires once, at its first occurrence.
 * Returns null when nothing matches within 10 years (e.g. `0 0 30 2 *`).
 */
export function nextFireInZone(expr: string | CronSchedule, after: Date, timeZone: string): Date | null {
  const s = typeof expr === 'string' ? parseStandardCron(expr) : expr;
  const afterMs = after.getTime();
  const startWall = zonedParts(afterMs, timeZone);
  const lastYear = startWall.y + 10;
  let cursor: Wall = advanceMinute(startWall);
  // Each rejected candidate (its instant is not after `after`) moves the cursor one wall minute on;
  // that happens at most for the minutes of one repeated hour.
  for (let guard = 0; guard < 10_000; guard++) {
    const w = nextWall(s, cursor, lastYear, false);
    if (!w) return null;
    const t = wallToInstant(w, timeZone);
    if (t > afterMs) return new Date(t);
    cursor = advanceMinute(w);
  }
  return null;
}

function advanceMinute(w: Wall): Wall {
  const ms = wallToUtcMs(w) + MINUTE;
  return utcWall(ms);
}
