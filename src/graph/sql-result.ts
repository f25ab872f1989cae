/**
 * A SQL step's rows → the result text `{"rows":[{…},…],"row_count":N}` (SPEC §3.1 step 5).
 *
 * Input is what node-postgres gives with `rowMode: 'array'` and text parsing switched off
 * (`types: { getTypeParser: () => (v: string) => v }`): field descriptions and each value as the
 * server's text (NULL as null). Array rows keep duplicate column names, which pg's object rows lose.
 * The server must send ISO dates (`DateStyle = ISO`, any TimeZone; timestamptz is converted to UTC).
 *
 * Supported type OIDs: bool 16, int8 20, int2 21, int4 23, text 25, name 19, json 114, float4 700,
 * float8 701, bpchar 1042, varchar 1043, date 1082, timestamp 1114, timestamptz 1184, numeric 1700,
 * void 2278, uuid 2950, jsonb 3802, and unknown 705 (an untyped literal, sent as text). Any other
 * type fails with pg_durable's `Unsupported column type …` once there is at least one row (like
 * pg_durable, which decodes per value: an empty result of any type succeeds).
 */
import { JsonParseError, formatF64, parseJson, stringifyJson } from './json.ts';

export interface ResultField {
  name: string;
  /** The column's type OID (node-postgres `FieldDef.dataTypeID`). */
  dataTypeID: number;
  /** The type's name for the error message when the OID is not built in (e.g. an enum's name). */
  typeName?: string;
}

export type SqlResultOutcome = { ok: true; text: string } | { ok: false; error: string };

export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  void: 2278,
  uuid: 2950,
  jsonb: 3802,
} as const;

const SUPPORTED_LIST =
  'bool, int2, int4, int8, float4, float8, text, varchar, numeric, uuid, timestamptz, timestamp, date, jsonb, json, void';

// Names as pg_durable's driver (sqlx) prints them in the error, for common built-in types.
const SQLX_TYPE_NAMES: Record<number, string> = {
  17: 'BYTEA',
  18: '"CHAR"',
  26: 'OID',
  142: 'XML',
  600: 'POINT',
  601: 'LSEG',
  602: 'PATH',
  603: 'BOX',
  604: 'POLYGON',
  628: 'LINE',
  650: 'CIDR',
  718: 'CIRCLE',
  774: 'MACADDR8',
  790: 'MONEY',
  829: 'MACADDR',
  869: 'INET',
  1083: 'TIME',
  1186: 'INTERVAL',
  1266: 'TIMETZ',
  1560: 'BIT',
  1562: 'VARBIT',
  2249: 'RECORD',
  3904: 'INT4RANGE',
  3906: 'NUMRANGE',
  3908: 'TSRANGE',
  3910: 'TSTZRANGE',
  3912: 'DATERANGE',
  3926: 'INT8RANGE',
  4072: 'JSONPATH',
  1000: 'BOOL[]',
  1001: 'BYTEA[]',
  1002: '"CHAR"[]',
  1003: 'NAME[]',
  1005: 'INT2[]',
  1007: 'INT4[]',
  1009: 'TEXT[]',
  1014: 'BPCHAR[]',
  1015: 'VARCHAR[]',
  1016: 'INT8[]',
  1021: 'FLOAT4[]',
  1022: 'FLOAT8[]',
  1028: 'OID[]',
  1115: 'TIMESTAMP[]',
  1182: 'DATE[]',
  1183: 'TIME[]',
  1185: 'TIMESTAMPTZ[]',
  1187: 'INTERVAL[]',
  1231: 'NUMERIC[]',
  199: 'JSON[]',
  2951: 'UUID[]',
  3807: 'JSONB[]',
};

class Fail {
  constructor(readonly error: string) {}
}

/** Builds the result text. `rows[i][j]` is the text of column j (or null). */
export function buildSqlResult(fields: readonly ResultField[], rows: readonly (readonly (string | null)[])[]): SqlResultOutcome {
  try {
    const out: string[] = [];
    for (const row of rows) {
      // Map keeps the first position of a duplicate column name and the last value (IndexMap insert).
      const obj = new Map<string, string>();
      fields.forEach((f, j) => obj.set(f.name, encodeValue(f, row[j] ?? null)));
      out.push(`{${[...obj].map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`);
    }
    return { ok: true, text: `{"rows":[${out.join(',')}],"row_count":${rows.length}}` };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: e.error };
    throw e;
  }
}

/** The error text for a column whose type is not supported. */
export function unsupportedColumnError(field: ResultField): string {
  const type = SQLX_TYPE_NAMES[field.dataTypeID] ?? field.typeName ?? `OID ${field.dataTypeID}`;
  return `Unsupported column type '${type}' for column '${field.name}'. Supported types: ${SUPPORTED_LIST}.`;
}

/** JSON text of one value. */
function encodeValue(f: ResultField, v: string | null): string {
  switch (f.dataTypeID) {
    case OID.bool:
      return v === null ? 'null' : v === 't' || v === 'true' ? 'true' : 'false';
    case OID.int2:
    case OID.int4:
    case OID.int8:
      if (v === null) return 'null';
      if (!/^-?\d+$/.test(v)) throw new Fail(`Failed to decode ${typeLabel(f)} column '${f.name}': invalid integer '${v}'`);
      return v;
    case OID.float4:
    case OID.float8: {
      if (v === null) return 'null';
      const n = f.dataTypeID === OID.float4 ? Math.fround(Number(v)) : Number(v);
      // NaN / ±Infinity have no JSON form.
      return Number.isFinite(n) ? formatF64(n) : 'null';
    }
    case OID.text:
    case OID.varchar:
    case OID.bpchar:
    case OID.name:
    case OID.unknown:
    case OID.uuid:
      return v === null ? 'null' : JSON.stringify(v);
    case OID.numeric:
      if (v === null) return 'null';
      // The server's text keeps the scale ("123456.78900000"); NaN/Infinity do not decode in pg_durable.
      if (!/^-?\d+(\.\d+)?$/.test(v)) throw new Fail(`Failed to decode NUMERIC column '${f.name}': cannot represent '${v}'`);
      return JSON.stringify(v);
    case OID.timestamptz:
      return v === null ? 'null' : JSON.stringify(formatTimestamp(f, v, true));
    case OID.timestamp:
      return v === null ? 'null' : JSON.stringify(formatTimestamp(f, v, false));
    case OID.date:
      return v === null ? 'null' : JSON.stringify(formatDate(f, v));
    case OID.json:
    case OID.jsonb:
      if (v === null) return 'null';
      try {
        return stringifyJson(parseJson(v));
      } catch (e) {
        if (e instanceof JsonParseError) throw new Fail(`Failed to decode JSON column '${f.name}': ${e.message}`);
        throw e;
      }
    case OID.void:
      return 'null';
    default:
      throw new Fail(unsupportedColumnError(f));
  }
}

function typeLabel(f: ResultField): string {
  return { [OID.int2]: 'INT2', [OID.int4]: 'INT4', [OID.int8]: 'INT8' }[f.dataTypeID] ?? 'INT';
}

/** chrono prints a year outside 0000–9999 with a sign. */
function formatYear(y: number): string {
  if (y >= 0 && y <= 9999) return String(y).padStart(4, '0');
  return (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(4, '0');
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** chrono's `%.f` / RFC 3339 AutoSi: no fraction, or 3, 6 (or 9) digits. */
function formatFraction(micros: number): string {
  if (micros === 0) return '';
  if (micros % 1000 === 0) return '.' + String(micros / 1000).padStart(3, '0');
  return '.' + String(micros).padStart(6, '0');
}

// ISO DateStyle: `2024-06-15 12:30:00.123456+05:30[:15]` (tz part only for timestamptz), ` BC` suffix.
const TS_RE = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?$/;

function formatTimestamp(f: ResultField, v: string, withZone: boolean): string {
  const label = withZone ? 'TIMESTAMPTZ' : 'TIMESTAMP';
  const m = TS_RE.exec(v);
  if (!m || (withZone && !m[8])) throw new Fail(`Failed to decode ${label} column '${f.name}': cannot represent '${v}'`);
  const bc = !!m[12];
  const year = bc ? 1 - Number(m[1]) : Number(m[1]);
  const micros = Number((m[7] ?? '').padEnd(6, '0'));
  const t = new Date(0);
  t.setUTCFullYear(year, Number(m[2]) - 1, Number(m[3]));
  t.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), 0);
  if (withZone) {
    const sign = m[8] === '-' ? -1 : 1;
    const offsetSec = sign * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0));
    t.setTime(t.getTime() - offsetSec * 1000);
  }
  const body =
    `${formatYear(t.getUTCFullYear())}-${pad2(t.getUTCMonth() + 1)}-${pad2(t.getUTCDate())}` +
    `T${pad2(t.getUTCHours())}:${pad2(t.getUTCMinutes())}:${pad2(t.getUTCSeconds())}${formatFraction(micros)}`;
  return withZone ? `${body}+00:00` : body;
}

function formatDate(f: ResultField, v: string): string {
  const m = /^(\d{4,})-(\d\d)-(\d\d)( BC)?$/.exec(v);
  if (!m) throw new Fail(`Failed to decode DATE column '${f.name}': cannot represent '${v}'`);
  const year = m[4] ? 1 - Number(m[1]) : Number(m[1]);
  return `${formatYear(year)}-${m[2]}-${m[3]}`;
}
