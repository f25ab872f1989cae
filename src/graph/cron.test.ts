import { describe, expect, it } from 'vitest';
import { CronError, nextFireAfter, parseCron } from './cron.ts';

const at = (iso: string) => new Date(iso);
const next = (expr: string, after: string) => nextFireAfter(expr, at(after))?.toISOString() ?? null;
const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CronError);
    return (e as Error).message;
  }
  return 'no error';
};

describe('parseCron (pg_durable dialect)', () => {
  it('expands *, lists, ranges, steps and names', () => {
    const s = parseCron('*/15 9-17/4 1,15 JAN-mar,Dec mon,WED');
    expect([...s.minutes]).toEqual([0, 15, 30, 45]);
    expect([...s.hours]).toEqual([9, 13, 17]);
    expect([...s.daysOfMonth]).toEqual([1, 15]);
    expect([...s.months].sort((a, b) => a - b)).toEqual([1, 2, 3, 12]);
    expect([...s.daysOfWeek]).toEqual([2, 4]); // 1 = Sunday
    expect(s.years).toBeNull();
  });

  it('reads a point with a step as "from there to the maximum"', () => {
    expect([...parseCron('50/5 * * * *').minutes]).toEqual([50, 55]);
  });

  it('accepts full names, ? in dom/dow and a sixth year field', () => {
    expect([...parseCron('0 0 ? january sunday').daysOfWeek]).toEqual([1]);
    expect([...parseCron('0 0 * * ? 2030-2031').years!]).toEqual([2030, 2031]);
  });

  it.each([
    ['0 9 * * 0', "Days of Week field '0': 0 is below the minimum 1"],
    ['60 * * * *', "Minutes field '60': 60 is above the maximum 59"],
    ['* 24 * * *', "Hours field '24': 24 is above the maximum 23"],
    ['* * 0 * *', "Days of Month field '0': 0 is below the minimum 1"],
    ['* * * 13 *', "Months field '13': 13 is above the maximum 12"],
    ['* * * * * 1969', "Years field '1969': 1969 is below the minimum 1970"],
    ['5-1 * * * *', "Minutes field '5-1': range 5-1 starts after it ends"],
    ['*/0 * * * *', "Minutes field '*/0': range step cannot be zero"],
    ['? * * * *', "Minutes field '?': '?' is only allowed in the day-of-month and day-of-week fields"],
    ['* * * FOO *', "Months field 'FOO': unknown name 'FOO'"],
    ['MON * * * *', "Minutes field 'MON': names are not allowed in this field ('MON')"],
    ['1,,2 * * * *', "Minutes field '1,,2': empty list item"],
    ['* * * * MON/2', "Days of Week field 'MON/2': a step needs '*', a range or a number before '/'"],
    ['* * * *', 'expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a year, got 4'],
    ['0 0 0 * * * *', 'expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a year, got 7'],
    ['@daily', "shorthand '@daily' is not supported; write the five fields (e.g. '0 0 * * *' for @daily)"],
    ['1L * * * *', "Minutes field '1L': '1L' is not a number"],
  ])('%s → %s', (expr, message) => {
    expect(errorOf(() => parseCron(expr))).toBe(message);
  });
});

describe('nextFireAfter', () => {
  it('reads 1-5 as Sunday–Thursday (1 = Sunday)', () => {
    // 2024-06-14 is a Friday.
    expect(next('0 9 * * 1-5', '2024-06-14T08:00:00Z')).toBe('2024-06-16T09:00:00.000Z'); // Sunday
    expect(next('0 9 * * 1-5', '2024-06-20T09:00:00Z')).toBe('2024-06-23T09:00:00.000Z'); // Thu → Sun
    expect(next('0 9 * * SUN', '2024-06-14T08:00:00Z')).toBe('2024-06-16T09:00:00.000Z');
  });

  it('fires * * * * * on consecutive minutes, strictly after the given time', () => {
    let t = at('2024-06-14T10:00:00Z');
    const fires: string[] = [];
    for (let i = 0; i < 3; i++) {
      t = nextFireAfter('* * * * *', t)!;
      fires.push(t.toISOString());
    }
    expect(fires).toEqual(['2024-06-14T10:01:00.000Z', '2024-06-14T10:02:00.000Z', '2024-06-14T10:03:00.000Z']);
    expect(next('* * * * *', '2024-06-14T10:00:59.999Z')).toBe('2024-06-14T10:01:00.000Z');
    expect(next('* * * * *', '2024-12-31T23:59:30Z')).toBe('2025-01-01T00:00:00.000Z');
  });

  it('requires both dom and dow when both are restricted', () => {
    expect(next('0 0 13 * 6', '2024-01-01T00:00:00Z')).toBe('2024-09-13T00:00:00.000Z'); // Friday 13th
  });

  it('finds Feb 29 across years and skips 2100', () => {
    expect(next('0 0 29 2 *', '2024-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2096-03-01T00:00:00Z')).toBeNull(); // 2100 is not a leap year, 2104 > 2100
  });

  it('honours the year field', () => {
    expect(next('30 12 1 1 * 2030', '2024-03-01T00:00:00Z')).toBe('2030-01-01T12:30:00.000Z');
    expect(next('0 12 1 * * 2020', '2024-03-01T00:00:00Z')).toBeNull();
    expect(next('0 0 1 1 * 2100', '2099-06-01T00:00:00Z')).toBe('2100-01-01T00:00:00.000Z');
  });

  it('rolls hours, days and months correctly', () => {
    expect(next('15 10 * * *', '2024-06-14T10:15:00Z')).toBe('2024-06-15T10:15:00.000Z');
    expect(next('0 0 31 * *', '2024-04-01T00:00:00Z')).toBe('2024-05-31T00:00:00.000Z');
    expect(next('5 4 * 2 *', '2024-02-29T04:06:00Z')).toBe('2025-02-01T04:05:00.000Z');
  });

  it('returns null for impossible expressions, quickly', () => {
    const t0 = performance.now();
    expect(next('0 0 30 2 *', '1970-01-01T00:00:00Z')).toBeNull();
    expect(next('59 23 31 4,6,9,11 ?', '1970-01-01T00:00:00Z')).toBeNull();
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it('accepts a parsed schedule', () => {
    expect(nextFireAfter(parseCron('0 * * * *'), at('2024-06-14T10:30:00Z'))?.toISOString()).toBe('2024-06-14T11:00:00.000Z');
  });
});
