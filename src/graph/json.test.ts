import { describe, expect, it } from 'vitest';
import { JsonNumber, formatF64, normalizeNumber, parseJson, stringifyJson, toPlain, tryParseJson } from './json.ts';

describe('parseJson / stringifyJson', () => {
  it('keeps key order, including integer-like keys JS objects would reorder', () => {
    const text = '{"b":1,"2":2,"a":3,"1":4}';
    expect(stringifyJson(parseJson(text))).toBe(text);
    expect(Object.keys(JSON.parse(text))).toEqual(['1', '2', 'b', 'a']); // why we do not use JSON.parse
  });

  it('collapses duplicate keys: first position, last value', () => {
    expect(stringifyJson(parseJson('{"a":1,"b":2,"a":3}'))).toBe('{"a":3,"b":2}');
  });

  it('compacts whitespace and keeps strings exact', () => {
    expect(stringifyJson(parseJson(' { "rows" : [ {"x": "a\\"b\\\\c\\u00e9\\n"} ] , "row_count": 1 } '))).toBe(
      '{"rows":[{"x":"a\\"b\\\\cé\\n"}],"row_count":1}',
    );
  });

  it('keeps int8 values beyond 2^53 exactly', () => {
    const v = parseJson('{"id":9223372036854775807,"n":-9223372036854775808}');
    expect(stringifyJson(v)).toBe('{"id":9223372036854775807,"n":-9223372036854775808}');
  });

  it('rejects invalid JSON with a position', () => {
    expect(() => parseJson('{"a":}')).toThrow(/expected value at line 1 column 6/);
    expect(() => parseJson('[1,]')).toThrow();
    expect(() => parseJson('{"a":1} x')).toThrow(/trailing/);
    expect(() => parseJson("{'a':1}")).toThrow();
    expect(() => parseJson('"a\tb"')).toThrow(/control character/);
    expect(tryParseJson('SELECT 1')).toBeUndefined();
    expect(tryParseJson('')).toBeUndefined();
  });

  it('converts to plain values', () => {
    expect(toPlain(parseJson('{"a":[1,"x",null,true,{"b":2.5}]}'))).toEqual({ a: [1, 'x', null, true, { b: 2.5 }] });
    const proto = toPlain(parseJson('{"__proto__":{"polluted":1}}')) as Record<string, unknown>;
    expect(Object.keys(proto)).toEqual(['__proto__']);
    expect((proto as { polluted?: number }).polluted).toBeUndefined();
  });
});

describe('normalizeNumber (serde_json round trip)', () => {
  it.each([
    ['42', '42'],
    ['-7', '-7'],
    ['18446744073709551615', '18446744073709551615'],
    ['18446744073709551616', '1.8446744073709552e19'],
    ['-9223372036854775809', '-9.223372036854776e18'],
    ['-0', '-0.0'],
    ['1.50', '1.5'],
    ['1e2', '100.0'],
    ['1E2', '100.0'],
    ['0.1', '0.1'],
    ['3.14', '3.14'],
    ['1e15', '1000000000000000.0'],
    ['1e16', '1e16'],
    ['1.5e20', '1.5e20'],
    ['0.0001', '0.0001'],
    ['0.00001', '0.00001'],
    ['1e-6', '1e-6'],
    ['1.25e-7', '1.25e-7'],
    ['0.0', '0.0'],
  ])('%s → %s', (input, out) => {
    expect(normalizeNumber(input)).toBe(out);
  });

  it('rejects numbers out of f64 range', () => {
    expect(() => parseJson('1e400')).toThrow(/out of range/);
  });

  it('formats doubles like ryu', () => {
    expect(formatF64(123456.789)).toBe('123456.789');
    expect(formatF64(-2)).toBe('-2.0');
    expect(formatF64(Math.fround(0.1))).toBe('0.10000000149011612');
    expect(new JsonNumber('5').toNumber()).toBe(5);
  });
});
