/**
 * The SQL cron (0012: df._cron_std_parse, df.cron_next_fire): its errors, its DST rule, and its fire
 * times against an independent oracle (croner, with pgflare's stated differences: test/helpers/cron-oracle.ts).
 */
import { Cron } from 'croner';
import { describe, expect, it } from 'vitest';
import { cronerInZone, offsetChangesBetween, oracleNextFire } from '../helpers/cron-oracle.ts';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();

const sqlNext = async (cron: string, tz: string, after: string): Promise<string | null> => {
  const [r] = await t.query<{ at: Date | null }>('SELECT df.cron_next_fire($1, $2, $3) AS at', [cron, tz, after]);
  return r.at?.toISOString() ?? null;
};
const sqlError = async (sql: string, params: unknown[]) => {
  try {
    await t.query(sql, params);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  return { code: 'none', message: 'no error' };
};

describe('df.cron_next_fire', () => {
  // Vixie cron's grammar; croner rejects each of these too, except the two noted.
  it.each([
    ['60 * * * *', "minute field '60': 60 is above the maximum 59"],
    ['* 24 * * *', "hour field '24': 24 is above the maximum 23"],
    ['* * 0 * *', "day of month field '0': 0 is below the minimum 1"],
    ['* * * 13 *', "month field '13': 13 is above the maximum 12"],
    ['0 0 * * 8', "day of week field '8': 8 is above the maximum 7"],
    ['5-1 * * * *', "minute field '5-1': range 5-1 starts after it ends"],
    ['*/0 * * * *', "minute field '*/0': range step cannot be zero"],
    ['? * * * *', "minute field '?': '?' is only allowed in the day-of-month and day-of-week fields"],
    ['* * * FOO *', "month field 'FOO': unknown name 'FOO'"],
    ['MON * * * *', "minute field 'MON': names are not allowed in this field ('MON')"],
    ['1,,2 * * * *', "minute field '1,,2': empty list item"],
    ['* * * * MON/2', "day of week field 'MON/2': a step needs '*', a range or a number before '/'"],
    ['1/2/3 * * * *', "minute field '1/2/3': '1/2/3' has more than one '/'"],
    ['1- * * * *', "minute field '1-': '1-' is not a valid range"],
    ['*/x * * * *', "minute field '*/x': step 'x' is not a number"],
    ['1L * * * *', "minute field '1L': '1L' is not a number"],
    ['* * * *', 'expected 5 fields (minute hour day-of-month month day-of-week), got 4'],
    ['0 0 * * * 2030', 'expected 5 fields (minute hour day-of-month month day-of-week), got 6'],
    ['', 'expected 5 fields (minute hour day-of-month month day-of-week), got 0'],
    ['@reboot', "unknown shorthand '@reboot'"],
    ['* * * january *', "month field 'january': unknown name 'january'"],
  ])('rejects %j with 22023: %s', async (cron, message) => {
    const err = await sqlError('SELECT df.cron_next_fire($1)', [cron]);
    expect(err).toEqual({ code: '22023', message: `Invalid cron expression '${cron}': ${message}` });
    // croner reads `?` as "the current time's value" and, with sloppyRanges, `MON/2` as "from Monday, every 2".
    const cronerAccepts = cron === '? * * * *' || cron === '* * * * MON/2';
    const croner = () => new Cron(cron, { mode: '5-part', sloppyRanges: true });
    if (cronerAccepts) expect(croner).not.toThrow();
    else expect(croner).toThrow();
  });

  it('rejects unknown time zones, POSIX offsets and NULLs', async () => {
    expect(await sqlError('SELECT df.cron_next_fire($1, $2)', ['* * * * *', 'Mars/Olympus'])).toEqual({
      code: '22023',
      message: "unknown time zone 'Mars/Olympus'",
    });
    expect((await sqlError('SELECT df.cron_next_fire($1, $2)', ['* * * * *', 'UTC+3'])).code).toBe('22023');
    expect((await sqlError('SELECT df.cron_next_fire($1, $2)', [null, 'UTC'])).code).toBe('22004');
    expect((await sqlError('SELECT df.cron_next_fire($1, $2)', ['* * * * *', null])).code).toBe('22004');
  });

  it('accepts a zone name in any case', async () => {
    expect(await sqlNext('0 9 * * *', 'europe/berlin', '2024-06-14T00:00:00Z')).toBe('2024-06-14T07:00:00.000Z');
  });

  it('agrees with the croner oracle on a spread of expressions, zones and instants (DST days included)', async () => {
    const exprs = [
      '* * * * *', '*/7 * * * *', '0 9 * * 1-5', '30 2 * * *', '30 1 * * *', '0 0 1 * MON', '15 */5 * * *',
      '0 0 29 2 *', '0 0 30 2 *', '@weekly', '@hourly', '5 4 * 2 *', '0,30 2,3 * * 0', '0 0 13 * 5', '59 23 31 * *',
      '*/15 2,3 * * *', '0 12 * jan-mar,dec sun', '0 3 * * 7', '1-59/29 0-23/6 1-10 * *',
      '0 0 */2 * MON', '0 0 1 * */2', '5/15 * * * *', '@yearly',
    ];
    const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Sao_Paulo'];
    const afters = [
      '2024-03-10T06:50:00Z', '2024-11-03T05:29:00Z', '2024-11-03T06:10:30Z', '2024-03-31T00:59:00Z',
      '2024-10-27T00:30:00Z', '2024-10-06T15:10:00Z', '2024-04-06T14:45:00Z', '2024-02-28T23:59:59Z',
      '2025-12-31T23:59:00Z',
    ];
    const cases: [string, string, string][] = [];
    for (const e of exprs) for (const z of zones) for (const a of afters) cases.push([e, z, a]);
    const { rows } = await t.owner.query<{ i: number; at: Date | null }>(
      `SELECT c.i, df._cron_next(c.e, c.z, c.a) AS at
         FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS c(e, z, a, i)`,
      [cases.map((c) => c[0]), cases.map((c) => c[1]), cases.map((c) => c[2])],
    );
    const mismatches = rows
      .map((r) => {
        const [e, z, a] = cases[Number(r.i) - 1];
        const oracle = oracleNextFire(e, new Date(a), z)?.toISOString() ?? null;
        const sql = r.at?.toISOString() ?? null;
        return oracle === sql ? null : { e, z, a, oracle, sql };
      })
      .filter(Boolean);
    expect(rows).toHaveLength(cases.length);
    expect(mismatches).toEqual([]);

    // croner alone (its own DST rule) parts from the oracle only where a DST change lies among the
    // instant asked about and the two answers, and the spread does reach such cases.
    const dstOnly = cases.filter(([e, z, a]) => {
      const own = cronerInZone(e, new Date(a), z)?.getTime() ?? null;
      const ours = oracleNextFire(e, new Date(a), z)?.getTime() ?? null;
      if (own === ours) return false;
      const times = [new Date(a).getTime(), own ?? Infinity, ours ?? Infinity];
      const dst = own !== null && ours !== null && offsetChangesBetween(Math.min(...times), Math.max(...times), z);
      expect(dst, `${e} ${z} ${a}: croner ${own}, oracle ${ours}`).toBe(true);
      return true;
    });
    expect(dstOnly.length).toBeGreaterThan(0);
  });

  it('fires a wall time skipped by spring-forward once, after the gap; a repeated one once, at its first occurrence', async () => {
    // New York 2024-03-10: 02:00 EST → 03:00 EDT (07:00Z).
    expect(await sqlNext('30 2 * * *', 'America/New_York', '2024-03-10T05:00:00Z')).toBe('2024-03-10T07:00:00.000Z');
    expect(await sqlNext('30 2 * * *', 'America/New_York', '2024-03-10T07:00:00Z')).toBe('2024-03-11T06:30:00.000Z');
    // New York 2024-11-03: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST); it fires at the first.
    expect(await sqlNext('30 1 * * *', 'America/New_York', '2024-11-03T04:00:00Z')).toBe('2024-11-03T05:30:00.000Z');
    expect(await sqlNext('30 1 * * *', 'America/New_York', '2024-11-03T05:30:00Z')).toBe('2024-11-04T06:30:00.000Z');
    // Berlin 2024-03-31 02:00 CET → 03:00 CEST (01:00Z); 2024-10-27 03:00 CEST → 02:00 CET.
    expect(await sqlNext('30 2 * * *', 'Europe/Berlin', '2024-03-30T12:00:00Z')).toBe('2024-03-31T01:00:00.000Z');
    expect(await sqlNext('30 2 * * *', 'Europe/Berlin', '2024-10-26T12:00:00Z')).toBe('2024-10-27T00:30:00.000Z');
    expect(await sqlNext('30 2 * * *', 'Europe/Berlin', '2024-10-27T00:30:00Z')).toBe('2024-10-28T01:30:00.000Z');
  });

  it('evaluates fields in local time; 7 is Sunday; day fields OR-ed only when neither starts with *', async () => {
    expect(await sqlNext('0 9 * * *', 'Europe/Berlin', '2024-06-14T00:00:00Z')).toBe('2024-06-14T07:00:00.000Z');
    expect(await sqlNext('0 9 * * 1-5', 'America/New_York', '2024-06-14T14:00:00Z')).toBe('2024-06-17T13:00:00.000Z'); // Fri → Mon
    expect(await sqlNext('0 0 1 * MON', 'UTC', '2024-06-14T00:00:00Z')).toBe('2024-06-17T00:00:00.000Z'); // OR: Monday 17th first
    expect(await sqlNext('0 0 */2 * MON', 'UTC', '2024-01-01T00:00:00Z')).toBe('2024-01-15T00:00:00.000Z'); // AND: odd-day Monday
    // 2024-06-14 is a Friday: 5-7 is Friday, Saturday, Sunday.
    const fires: string[] = [];
    let after = '2024-06-13T12:00:00Z';
    for (let i = 0; i < 4; i++) fires.push((after = (await sqlNext('0 0 * * 5-7', 'UTC', after))!));
    expect(fires).toEqual(['2024-06-14T00:00:00.000Z', '2024-06-15T00:00:00.000Z', '2024-06-16T00:00:00.000Z', '2024-06-21T00:00:00.000Z']);
    expect(await sqlNext('@daily', 'UTC', '2024-06-14T10:00:00Z')).toBe('2024-06-15T00:00:00.000Z');
  });

  it('collapses every quarter hour of a skipped hour into one fire; skips a repeated hour instead of firing twice', async () => {
    // New York 2024-03-10: 02:00 EST → 03:00 EDT (07:00Z).
    const fires: string[] = [];
    let after = '2024-03-10T06:50:00Z';
    for (let i = 0; i < 3; i++) fires.push((after = (await sqlNext('*/15 2,3 * * *', 'America/New_York', after))!));
    expect(fires).toEqual(['2024-03-10T07:00:00.000Z', '2024-03-10T07:15:00.000Z', '2024-03-10T07:30:00.000Z']);
    // New York 2024-11-03: 02:00 EDT → 01:00 EST.
    expect(await sqlNext('* * * * *', 'America/New_York', '2024-11-03T05:59:00Z')).toBe('2024-11-03T07:00:00.000Z');
    // Berlin 2024-03-31: 02:00 CET → 03:00 CEST at 01:00Z; 2024-10-27: 03:00 CEST → 02:00 CET.
    expect(await sqlNext('0 2 * * *', 'Europe/Berlin', '2024-03-30T12:00:00Z')).toBe('2024-03-31T01:00:00.000Z');
    expect(await sqlNext('* * * * *', 'Europe/Berlin', '2024-03-31T00:59:00Z')).toBe('2024-03-31T01:00:00.000Z');
    expect(await sqlNext('* * * * *', 'Europe/Berlin', '2024-03-31T01:00:00Z')).toBe('2024-03-31T01:01:00.000Z');
    expect(await sqlNext('0 3 * * *', 'Europe/Berlin', '2024-10-27T00:30:00Z')).toBe('2024-10-27T02:00:00.000Z');
  });

  it('returns NULL for a cron that never fires, quickly', async () => {
    const t0 = performance.now();
    expect(await sqlNext('0 0 30 2 *', 'UTC', '2024-01-01T00:00:00Z')).toBeNull();
    expect(await sqlNext('59 23 31 4,6,9,11 *', 'Europe/Berlin', '2024-01-01T00:00:00Z')).toBeNull();
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
