import { describe, expect, it } from 'vitest';
import { OID, buildSqlResult, unsupportedColumnError, type ResultField } from './sql-result.ts';

const f = (name: string, dataTypeID: number, typeName?: string): ResultField => ({ name, dataTypeID, typeName });
const one = (field: ResultField, value: string | null) => {
  const r = buildSqlResult([field], [[value]]);
  return r.ok ? r.text : `ERROR: ${r.error}`;
};
const val = (field: ResultField, value: string | null) => {
  const text = one(field, value);
  const m = /^\{"rows":\[\{"[^"]*":(.*)\}\],"row_count":1\}$/.exec(text);
  return m ? m[1] : text;
};

describe('buildSqlResult', () => {
  it('builds rows and row_count, keeping column order', () => {
    const r = buildSqlResult([f('z', OID.int4), f('a', OID.text), f('1', OID.bool)], [
      ['1', 'x', 't'],
      ['2', null, 'f'],
    ]);
    expect(r).toEqual({ ok: true, text: '{"rows":[{"z":1,"a":"x","1":true},{"z":2,"a":null,"1":false}],"row_count":2}' });
  });

  it('gives an empty row set for statements without rows', () => {
    expect(buildSqlResult([], [])).toEqual({ ok: true, text: '{"rows":[],"row_count":0}' });
  });

  it('collapses duplicate column names: first position, last value', () => {
    const r = buildSqlResult([f('a', OID.int4), f('b', OID.int4), f('a', OID.text)], [['1', '2', 'x']]);
    expect(r).toEqual({ ok: true, text: '{"rows":[{"a":"x","b":2}],"row_count":1}' });
  });

  it('escapes column names and strings as JSON', () => {
    expect(one(f('we"ird\\', OID.text), 'line\n"q"\u0001✓')).toBe('{"rows":[{"we\\"ird\\\\":"line\\n\\"q\\"\\u0001✓"}],"row_count":1}');
  });
});

describe('type mapping', () => {
  it.each<[string, ResultField, string | null, string]>([
    ['bool t', f('c', OID.bool), 't', 'true'],
    ['bool f', f('c', OID.bool), 'f', 'false'],
    ['int2', f('c', OID.int2), '-32768', '-32768'],
    ['int4', f('c', OID.int4), '42', '42'],
    ['int8 beyond 2^53', f('c', OID.int8), '9223372036854775807', '9223372036854775807'],
    ['float8', f('c', OID.float8), '3.14', '3.14'],
    ['float8 whole', f('c', OID.float8), '2', '2.0'],
    ['float8 exponent', f('c', OID.float8), '1e+20', '1e20'],
    ['float8 small', f('c', OID.float8), '1.5e-07', '1.5e-7'],
    ['float8 NaN', f('c', OID.float8), 'NaN', 'null'],
    ['float8 Infinity', f('c', OID.float8), 'Infinity', 'null'],
    ['float8 -Infinity', f('c', OID.float8), '-Infinity', 'null'],
    ['float4 widened like f32→f64', f('c', OID.float4), '0.1', '0.10000000149011612'],
    ['float4 NaN', f('c', OID.float4), 'NaN', 'null'],
    ['text', f('c', OID.text), 'hi', '"hi"'],
    ['varchar', f('c', OID.varchar), 'hi', '"hi"'],
    ['bpchar keeps padding', f('c', OID.bpchar), 'ab  ', '"ab  "'],
    ['name', f('c', OID.name), 'postgres', '"postgres"'],
    ['unknown literal', f('c', OID.unknown), 'lit', '"lit"'],
    ['numeric keeps scale', f('c', OID.numeric), '123456.78900000', '"123456.78900000"'],
    ['numeric negative integer', f('c', OID.numeric), '-5', '"-5"'],
    ['uuid', f('c', OID.uuid), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"'],
    ['timestamptz UTC', f('c', OID.timestamptz), '2024-06-15 12:30:00+00', '"2024-06-15T12:30:00+00:00"'],
    ['timestamptz other zone', f('c', OID.timestamptz), '2024-06-15 21:30:00+09', '"2024-06-15T12:30:00+00:00"'],
    ['timestamptz half-hour zone', f('c', OID.timestamptz), '2024-06-15 18:00:00+05:30', '"2024-06-15T12:30:00+00:00"'],
    ['timestamptz LMT seconds', f('c', OID.timestamptz), '1850-01-01 00:00:00-04:56:02', '"1850-01-01T04:56:02+00:00"'],
    ['timestamptz across midnight', f('c', OID.timestamptz), '2024-01-01 01:00:00+02', '"2023-12-31T23:00:00+00:00"'],
    ['timestamptz micros', f('c', OID.timestamptz), '2024-06-15 12:30:00.123456+00', '"2024-06-15T12:30:00.123456+00:00"'],
    ['timestamptz millis', f('c', OID.timestamptz), '2024-06-15 12:30:00.5+00', '"2024-06-15T12:30:00.500+00:00"'],
    ['timestamptz 4 digits', f('c', OID.timestamptz), '2024-06-15 12:30:00.1234+00', '"2024-06-15T12:30:00.123400+00:00"'],
    ['timestamp', f('c', OID.timestamp), '2024-06-15 12:30:00', '"2024-06-15T12:30:00"'],
    ['timestamp micros', f('c', OID.timestamp), '2024-06-15 12:30:00.000001', '"2024-06-15T12:30:00.000001"'],
    ['timestamp year 1', f('c', OID.timestamp), '0001-01-01 00:00:00', '"0001-01-01T00:00:00"'],
    ['timestamp BC', f('c', OID.timestamp), '0044-03-15 12:00:00 BC', '"-0043-03-15T12:00:00"'],
    ['date', f('c', OID.date), '2024-02-29', '"2024-02-29"'],
    ['date BC', f('c', OID.date), '0001-01-01 BC', '"0000-01-01"'],
    ['date far future', f('c', OID.date), '10000-01-01', '"+10000-01-01"'],
    ['jsonb compacted', f('c', OID.jsonb), '{"b": 1, "a": [1, 2.50, {"x": null}]}', '{"b":1,"a":[1,2.5,{"x":null}]}'],
    ['json keeps order, dedups keys', f('c', OID.json), '{ "z": 1, "a": 2, "z": 3 }', '{"z":3,"a":2}'],
    ['json scalar', f('c', OID.json), '"s"', '"s"'],
    ['json big int', f('c', OID.jsonb), '12345678901234567890', '12345678901234567890'],
    ['void', f('c', OID.void), '', 'null'],
    ['NULL of any supported type', f('c', OID.timestamptz), null, 'null'],
  ])('%s', (_label, field, input, expected) => {
    expect(val(field, input)).toBe(expected);
  });
});

describe('failures', () => {
  const supported =
    'Supported types: bool, int2, int4, int8, float4, float8, text, varchar, numeric, uuid, timestamptz, timestamp, date, jsonb, json, void.';

  it.each<[ResultField, string]>([
    [f('b', OID.bytea), 'BYTEA'],
    [f('b', 1007), 'INT4[]'],
    [f('b', 1186), 'INTERVAL'],
    [f('b', 1083), 'TIME'],
    [f('b', OID.oid), 'OID'],
    [f('b', OID.char), '"CHAR"'],
    [f('b', 869), 'INET'],
    [f('b', 790), 'MONEY'],
    [f('b', 2249), 'RECORD'],
    [f('b', 99999, 'mood'), 'mood'],
    [f('b', 99998), 'OID 99998'],
  ])('unsupported %j', (field, type) => {
    expect(one(field, 'x')).toBe(`ERROR: Unsupported column type '${type}' for column 'b'. ${supported}`);
    expect(one(field, null)).toBe(`ERROR: Unsupported column type '${type}' for column 'b'. ${supported}`);
    expect(unsupportedColumnError(field)).toContain('Unsupported column type');
  });

  it('does not fail an empty result of an unsupported type', () => {
    expect(buildSqlResult([f('b', OID.bytea)], [])).toEqual({ ok: true, text: '{"rows":[],"row_count":0}' });
  });

  it('fails values pg_durable cannot decode', () => {
    expect(one(f('n', OID.numeric), 'NaN')).toBe("ERROR: Failed to decode NUMERIC column 'n': cannot represent 'NaN'");
    expect(one(f('t', OID.timestamptz), 'infinity')).toBe("ERROR: Failed to decode TIMESTAMPTZ column 't': cannot represent 'infinity'");
    expect(one(f('t', OID.timestamp), '-infinity')).toBe("ERROR: Failed to decode TIMESTAMP column 't': cannot represent '-infinity'");
    expect(one(f('d', OID.date), 'infinity')).toBe("ERROR: Failed to decode DATE column 'd': cannot represent 'infinity'");
    expect(one(f('j', OID.json), '{bad')).toMatch(/^ERROR: Failed to decode JSON column 'j': /);
  });
});
