// SPEC §3.9: the cron dialect df.wait_for_schedule validates at DSL time.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

const reject = (expr: string, problem: string) =>
  expect(t.query(`SELECT df.wait_for_schedule($1)`, [expr])).rejects.toMatchObject({
    code: '22023',
    message: `Invalid cron expression '${expr}': ${problem}`,
  });

describe('accepted expressions', () => {
  it.each([
    '* * * * *',
    '*/5 * * * *',
    '0 9 * * 1-5',
    '0 9 * * 7',
    '0,15,30,45 * * * *',
    '5-10/2 0-23/6 1-31 1-12 1-7',
    '0 0 1 JAN *',
    '0 0 ? jan-Mar MON',
    '0 0 1 * ?',
    '30 4 1,15 * SUN,sat',
    '0 12 * * * 2030',
    '0 12 * * * 2025-2030/2',
    '59 23 31 12 7 2100',
    '0 0 1 1 * 1970',
    '10/15 * * * *',
    '  */5   *\t* * *  ',
    '0 0 30 2 *',
  ])('%j', async (expr) => {
    const [r] = await t.query(`SELECT df.wait_for_schedule($1) AS e`, [expr]);
    expect(JSON.parse(JSON.parse(r.e).query)).toEqual({ cron_expr: expr });
  });
});

describe('rejected expressions name the problem', () => {
  it.each([
    ['0 9 * * 0', "field 'day of week': value 0 out of range 1-7"],
    ['0 9 * * 0-4', "field 'day of week': value 0 out of range 1-7"],
    ['0 9 * * 8', "field 'day of week': value 8 out of range 1-7"],
    ['60 * * * *', "field 'minute': value 60 out of range 0-59"],
    ['* 24 * * *', "field 'hour': value 24 out of range 0-23"],
    ['* * 0 * *', "field 'day of month': value 0 out of range 1-31"],
    ['* * 32 * *', "field 'day of month': value 32 out of range 1-31"],
    ['* * * 13 *', "field 'month': value 13 out of range 1-12"],
    ['* * * 0 *', "field 'month': value 0 out of range 1-12"],
    ['* * * * * 1969', "field 'year': value 1969 out of range 1970-2100"],
    ['* * * * * 2101', "field 'year': value 2101 out of range 1970-2100"],
    ['99999999999 * * * *', "field 'minute': value 99999999999 out of range 0-59"],
    ['* * * FOO *', "field 'month': invalid value 'FOO'"],
    ['* * * * MONDAY', "field 'day of week': invalid value 'MONDAY'"],
    ['* * * MON *', "field 'month': invalid value 'MON'"],
    ['* * * * JAN', "field 'day of week': invalid value 'JAN'"],
    ['x * * * *', "field 'minute': invalid value 'x'"],
    ['* * L * *', "field 'day of month': invalid value 'L'"],
    ['* * * * 1#2', "field 'day of week': invalid value '1#2'"],
    ['? * * * *', "field 'minute': '?' is only allowed in day of month and day of week"],
    ['* * * ? *', "field 'month': '?' is only allowed in day of month and day of week"],
    ['* * ?/2 * *', "field 'day of month': '?' cannot have a step"],
    ['*/0 * * * *', "field 'minute': invalid step '0' (must be a whole number of at least 1)"],
    ['*/x * * * *', "field 'minute': invalid step 'x' (must be a whole number of at least 1)"],
    ['*/ * * * *', "field 'minute': invalid step '' (must be a whole number of at least 1)"],
    ['1/2/3 * * * *', "field 'minute': invalid step '2/3' (must be a whole number of at least 1)"],
    ['10-5 * * * *', "field 'minute': range '10-5' starts after it ends"],
    ['* * * * FRI-MON', "field 'day of week': range 'FRI-MON' starts after it ends"],
    ['1-2-3 * * * *', "field 'minute': invalid item '1-2-3'"],
    ['/5 * * * *', "field 'minute': invalid item '/5'"],
    ['1,,2 * * * *', "field 'minute': empty item in list '1,,2'"],
    ['1, * * * *', "field 'minute': empty item in list '1,'"],
    ['-5 * * * *', "field 'minute': invalid value ''"],
    ['* * * *', 'expected 5 fields (minute hour day-of-month month day-of-week) and an optional year, found 4'],
    ['0 * * * * * *', 'expected 5 fields (minute hour day-of-month month day-of-week) and an optional year, found 7'],
    ['', 'expected 5 fields (minute hour day-of-month month day-of-week) and an optional year, found 0'],
    ['   ', 'expected 5 fields (minute hour day-of-month month day-of-week) and an optional year, found 0'],
    ['@daily', "shortcut '@daily' is not supported; write the 5 fields (minute hour day-of-month month day-of-week)"],
    ['@every 5m', "shortcut '@every' is not supported; write the 5 fields (minute hour day-of-month month day-of-week)"],
  ])('%j', async (expr, problem) => {
    await reject(expr, problem);
  });

  it('reports the first bad field', async () => {
    await reject('60 24 * * *', "field 'minute': value 60 out of range 0-59");
  });

  it('quotes the expression as given (with its whitespace)', async () => {
    await reject(' 0 9 * * 0 ', "field 'day of week': value 0 out of range 1-7");
  });
});
