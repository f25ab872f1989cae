/**
 * JSON text exactly as PostgreSQL's jsonb prints it once the DSL compacts it (df._json_compact): keys
 * sorted by byte length then bytes, the last of duplicate keys kept, numbers as numeric text, no
 * whitespace. The DSL stores HTTP headers, multipart parts and pgflare's node options this way, so the
 * builder must write the same bytes.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

const utf8 = new TextEncoder();

function compareKeys(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** A finite number as PostgreSQL's numeric prints it: plain decimal, never an exponent. */
export function numericText(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`${n} is not a JSON number`);
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s === '-0' ? '0' : s;
  const [, sign, int, frac = '', expText] = m;
  const exp = Number(expText);
  const digits = int + frac;
  const point = int.length + exp;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

export function jsonbText(value: JsonValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return numericText(value);
    case 'string':
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`a ${typeof value} is not JSON`);
  }
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(',')}]`;
  // Object.entries keeps one entry per key, so "last duplicate wins" holds by construction.
  const entries = Object.entries(value).filter(([, v]) => v !== undefined) as [string, JsonValue][];
  entries.sort(([a], [b]) => compareKeys(a, b));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonbText(v)}`).join(',')}}`;
}
