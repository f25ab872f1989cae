/**
 * pg_durable's WAIT_SCHEDULE cron dialect (SPEC §3.9), pure (time is an argument): the Rust `cron`
 * crate with "0 " prepended, i.e. `min hour dom month dow [year]`, evaluated in UTC. Day of week
 * 1 = Sunday … 7 = Saturday (0 is invalid), dom and dow must BOTH match, `?` only in dom/dow, years
 * 1970–2100, no `@daily`. `parseCron` / `nextFireAfter`.
 *
 * Schedules use standard (Vixie) cron in a time zone; that dialect is implemented in SQL only
 * (migration 0012: df._cron_std_parse, df.cron_next_fire), tested against croner in
 * test/schedules/cron-sql.test.ts.
 */

export class CronError extends Error {
  override name = 'CronError';
}

/** Matching values per field. */
export interface CronSchedule {
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** 1 = Sunday … 7 = Saturday. */
  readonly daysOfWeek: ReadonlySet<number>;
  /** All of 1970–2100 when the field is absent. */
  readonly years: ReadonlySet<number> | null;
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

function nameTable(short: string[], full: string[], base: number): Record<string, number> {
  const t: Record<string, number> = {};
  short.forEach((n, i) => (t[n] = i + base));
  full.forEach((n, i) => (t[n] = i + base));
  return t;
}

// The Rust crate knows both short and full names.
const DURABLE_FIELDS: FieldSpec[] = [
  { name: 'Minutes', min: 0, max: 59 },
  { name: 'Hours', min: 0, max: 23 },
  { name: 'Days of Month', min: 1, max: 31, allowAny: true },
  { name: 'Months', min: 1, max: 12, names: nameTable(MONTH_NAMES, MONTH_FULL, 1) },
  { name: 'Days of Week', min: 1, max: 7, names: nameTable(DOW_NAMES, DOW_FULL, 1), allowAny: true },
  { name: 'Years', min: 1970, max: 2100 },
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
  };
}

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

function dayMatches(s: CronSchedule, w: Wall): boolean {
  return s.daysOfMonth.has(w.d) && s.daysOfWeek.has(weekday(w.y, w.mo, w.d) + 1);
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
function nextWall(s: CronSchedule, start: Wall, lastYear: number): Wall | null {
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
    if (d > daysInMonth(y, mo) || !dayMatches(s, { y, mo, d, h, mi })) {
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
  const w = nextWall(s, start, 2100);
  return w ? new Date(wallToUtcMs(w)) : null;
}
