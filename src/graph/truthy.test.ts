import { describe, expect, it } from 'vitest';
import { parseJson } from './json.ts';
import { evaluateIfRows, isConditionTrue, isTruthy } from './truthy.ts';

const sqlResult = (firstValueJson: string) => `{"rows":[{"c":${firstValueJson},"d":true}],"row_count":1}`;

describe('isTruthy (SPEC §3.3 table)', () => {
  it.each([
    ['true', true],
    ['false', false],
    ['1', true],
    ['0', false],
    ['-0.0', false],
    ['0.5', true],
    ['18446744073709551615', true],
    ['null', false],
    ['[]', false],
    ['[0]', true],
    ['{}', false],
    ['{"a":null}', true],
  ])('JSON %s → %s', (json, expected) => {
    expect(isTruthy(parseJson(json))).toBe(expected);
  });

  it.each([
    ['', false],
    ['   ', false],
    ['true', true],
    [' TRUE ', true],
    ['t', true],
    ['Yes', true],
    ['false', false],
    ['F', false],
    ['no', false],
    ['0', false],
    ['0.00', false],
    ['-0', false],
    ['0e5', false],
    ['.0', false],
    ['0.', false],
    ['1', true],
    ['-2.5', true],
    ['1e3', true],
    ['nan', true],
    ['NaN', true],
    ['inf', true],
    ['-Infinity', true],
    ['off', true],
    ['n', true],
    ['y', true],
    ['0x0', true], // not a Rust float
    ['1_000', true],
    ['\u00a00\u3000', false], // Unicode whitespace is trimmed
    ['\ufeff0', true], // …but U+FEFF is not whitespace in Rust
  ])('string %j → %s', (s, expected) => {
    expect(isTruthy(s)).toBe(expected);
  });
});

describe('isConditionTrue', () => {
  it('takes the first column of the first row of a SQL result', () => {
    expect(isConditionTrue(sqlResult('true'))).toBe(true);
    expect(isConditionTrue(sqlResult('false'))).toBe(false);
    expect(isConditionTrue(sqlResult('0'))).toBe(false);
    expect(isConditionTrue(sqlResult('"0.00"'))).toBe(false);
    expect(isConditionTrue(sqlResult('null'))).toBe(false);
    expect(isConditionTrue(sqlResult('"off"'))).toBe(true);
  });

  it('uses the first column in text order, even for integer-like names', () => {
    expect(isConditionTrue('{"rows":[{"z":false,"1":true}],"row_count":1}')).toBe(false);
  });

  it('is false for no rows', () => {
    expect(isConditionTrue('{"rows":[],"row_count":0}')).toBe(false);
  });

  it('falls through to the whole value when the first row is not an object or has no columns', () => {
    expect(isConditionTrue('{"rows":[{}],"row_count":1}')).toBe(true);
    expect(isConditionTrue('{"rows":[0],"row_count":1}')).toBe(true);
  });

  it('judges other JSON as a whole and non-JSON text as a string', () => {
    expect(isConditionTrue('{"status":200,"body":"","ok":false}')).toBe(true); // HTTP envelope
    expect(isConditionTrue('[{"rows":[],"row_count":0}]')).toBe(true); // JOIN result
    expect(isConditionTrue('"done"')).toBe(true);
    expect(isConditionTrue('"no"')).toBe(false);
    expect(isConditionTrue('null')).toBe(false);
    expect(isConditionTrue('0')).toBe(false);
    expect(isConditionTrue('{"rows":"x"}')).toBe(true);
    expect(isConditionTrue('yes')).toBe(true);
    expect(isConditionTrue('f')).toBe(false);
    expect(isConditionTrue('')).toBe(false);
  });
});

describe('evaluateIfRows', () => {
  const results = {
    some: { text: '{"rows":[{"a":1}],"row_count":1}' },
    none: { text: '{"rows":[],"row_count":0}' },
    http: { text: '{"status":200,"body":"x","ok":true}' },
    float: { text: '{"rows":[],"row_count":1.0}' },
    neg: { text: '{"rows":[],"row_count":-1}' },
    text: 'not json',
  };

  it('is true iff row_count > 0', () => {
    expect(evaluateIfRows('some', results)).toEqual({ ok: true, value: true });
    expect(evaluateIfRows('none', results)).toEqual({ ok: true, value: false });
  });

  it('reports pg_durable error texts', () => {
    expect(evaluateIfRows('missing', results)).toEqual({ ok: false, error: "df.if_rows: result 'missing' not found" });
    for (const name of ['http', 'float', 'neg']) {
      expect(evaluateIfRows(name, results)).toEqual({
        ok: false,
        error: `df.if_rows: result '${name}' is not a SQL result (missing row_count)`,
      });
    }
    expect(evaluateIfRows('text', results)).toEqual({
      ok: false,
      error: 'df.if_rows: invalid result JSON: expected value at line 1 column 1',
    });
  });

  it('accepts a Map and ignores inherited properties', () => {
    expect(evaluateIfRows('some', new Map([['some', results.some]]))).toEqual({ ok: true, value: true });
    expect(evaluateIfRows('toString', results)).toEqual({ ok: false, error: "df.if_rows: result 'toString' not found" });
  });
});
