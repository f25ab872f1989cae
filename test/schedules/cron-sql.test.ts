/**
 * The SQL cron (0012: df._cron_std_parse, df.cron_next_fire) against the TypeScript one
 * (parseStandardCron / nextFireInZone in src/graph/cron.ts): same errors, same fire times, same DST rule.
 */
import { describe, expect, it } from 'vitest';
import { CronError, nextFireInZone, parseStandardCron } from '../../src/graph/cron.ts';
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
  it.each([
    ['60 * * * *'],
    ['* 24 * * *'],
    ['* * 0 * *'],
    ['* * * 13 *'],
    ['0 0 * * 8'],
    ['5-1 * * * *'],
    ['*/0 * * * *'],
    ['? * * * *'],
    ['* * * FOO *'],
    ['MON * * * *'],
    ['1,,2 * * * *'],
    ['* * * * MON/2'],
    ['1/2/3 * * * *'],
    ['1- * * * *'],
    ['*/x * * * *'],
    ['1L * * * *'],
    ['* * * *'],
    ['0 0 * * * 2030'],
    [''],
    ['@reboot'],
    ['* * * january *'],
  ])('rejects %j with 22023 and the TypeScript parser\'s message', async (cron) => {
    let tsMessage = 'no error';
    try {
      parseStandardCron(cron);
    } catch (e) {
      expect(e).toBeInstanceOf(CronError);
      tsMessage = (e as Error).message;
    }
    const err = await sqlError('SELECT df.cron_next_fire($1)', [cron]);
    expect(err).toEqual({ code: '22023', message: `Invalid cron expression '${cron}': ${tsMessage}` });
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

  it('agrees with nextFireInZone on a spread of expressions, zones and instants (DST days included)', async () => {
    const exprs = [
      '* * * * *', '*/7 * * * *', '0 9 * * 1-5', '30 2 * * *', '30 1 * * *', '0 0 1 * MON', '15 */5 * * *',
      '0 0 29 2 *', '0 0 30 2 *', '@weekly', '@hourly', '5 4 * 2 *', '0,30 2,3 * * 0', '0 0 13 * 5', '59 23 31 * *',
      '*/15 2,3 * * *', '0 12 * jan-mar,dec sun', '0 3 * * 7', '1-59/29 0-23/6 1-10 * *',
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
        const ts = nextFireInZone(e, new Date(a), z)?.toISOString() ?? null;
        const sql = r.at?.toISOString() ?? null;
        return ts === sql ? null : { e, z, a, ts, sql };
      })
      .filter(Boolean);
    expect(rows).toHaveLength(cases.length);
    expect(mismatches).toEqual([]);
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

  it('returns NULL for a cron that never fires, quickly', async () => {
    const t0 = performance.now();
    expect(await sqlNext('0 0 30 2 *', 'UTC', '2024-01-01T00:00:00Z')).toBeNull();
    expect(await sqlNext('59 23 31 4,6,9,11 *', 'Europe/Berlin', '2024-01-01T00:00:00Z')).toBeNull();
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
