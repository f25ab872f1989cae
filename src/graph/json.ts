/**
 * Order-preserving JSON, serialised the way pg_durable's serde_json (preserve_order) does.
 *
 * Why not JSON.parse: result texts must keep the query's column order (bare `$name` is the
 * *first* column), and JS objects reorder integer-like keys ("2" before "a"); int8 values beyond
 * 2^53 must also survive exactly. So objects are `Map`s (insertion order; a duplicate key keeps
 * its first position and takes the last value, like IndexMap) and numbers keep their text.
 */

/** A JSON number, held as its serde_json-normalised text (see `normalizeNumber`). */
export class JsonNumber {
  constructor(readonly text: string) {}
  toNumber(): number {
    return Number(this.text);
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

export class JsonParseError extends Error {
  override name = 'JsonParseError';
}

export function isJsonObject(v: JsonValue): v is JsonObject {
  return v instanceof Map;
}

/** Parses strict JSON (RFC 8259; surrounding whitespace allowed). Throws JsonParseError. */
export function parseJson(text: string): JsonValue {
  const p = new Parser(text);
  p.skipWs();
  const v = p.value(0);
  p.skipWs();
  if (p.i < text.length) p.fail('trailing characters');
  return v;
}

/** Like parseJson but returns undefined for text that is not JSON. */
export function tryParseJson(text: string): JsonValue | undefined {
  try {
    return parseJson(text);
  } catch (e) {
    if (e instanceof JsonParseError) return undefined;
    throw e;
  }
}

/** Compact serialisation (no spaces), keys in map order. */
export function stringifyJson(v: JsonValue): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof JsonNumber) return v.text;
  if (Array.isArray(v)) return `[${v.map(stringifyJson).join(',')}]`;
  let out = '{';
  let first = true;
  for (const [k, val] of v) {
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${stringifyJson(val)}`;
  }
  return out + '}';
}

/** Converts to plain JS values (numbers become JS numbers; order of integer-like keys may change). */
export function toPlain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return v.toNumber();
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    // defineProperty: a "__proto__" key must stay an own property, as with JSON.parse.
    for (const [k, val] of v) Object.defineProperty(o, k, { value: toPlain(val), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}

const U64_MAX = 18446744073709551615n;
const I64_MIN_ABS = 9223372036854775808n;

/**
 * serde_json's number round trip: integers that fit u64 (or i64 when negative) keep their digits;
 * everything else becomes an f64 printed like Rust's ryu (`1.0`, `1e20`, `1.5e-7`). `-0` is an f64.
 */
export function normalizeNumber(token: string): string {
  if (/^-?\d+$/.test(token)) {
    const neg = token.startsWith('-');
    const mag = BigInt(neg ? token.slice(1) : token);
    if (!neg && mag <= U64_MAX) return mag.toString();
    if (neg && mag !== 0n && mag <= I64_MIN_ABS) return `-${mag.toString()}`;
  }
  const f = Number(token);
  if (!Number.isFinite(f)) throw new JsonParseError('number out of range');
  return formatF64(f);
}

/** Formats a finite double the way Rust's ryu crate does (shortest round-trip digits). */
export function formatF64(x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, expPart] = Math.abs(x).toExponential().split('e');
  const digits = mant.replace('.', '');
  const length = digits.length;
  const kk = Number(expPart) + 1; // 10^(kk-1) <= x < 10^kk
  const k = kk - length;
  let body: string;
  if (k >= 0 && kk <= 16) body = digits + '0'.repeat(k) + '.0';
  else if (kk > 0 && kk <= 16) body = `${digits.slice(0, kk)}.${digits.slice(kk)}`;
  else if (kk > -5 && kk <= 0) body = `0.${'0'.repeat(-kk)}${digits}`;
  else if (length === 1) body = `${digits}e${kk - 1}`;
  else body = `${digits[0]}.${digits.slice(1)}e${kk - 1}`;
  return sign + body;
}

// serde_json stops at 128 levels; we allow more but bound recursion to stay off the JS stack limit.
const MAX_DEPTH = 1_000;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(msg: string): never {
    let line = 1;
    let col = 1;
    for (let j = 0; j < this.i && j < this.s.length; j++) {
      if (this.s[j] === '\n') {
        line++;
        col = 1;
      } else col++;
    }
    throw new JsonParseError(`${msg} at line ${line} column ${col}`);
  }

  skipWs() {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('recursion limit exceeded');
    const s = this.s;
    const c = s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (s.startsWith('true', this.i)) {
      this.i += 4;
      return true;
    }
    if (s.startsWith('false', this.i)) {
      this.i += 5;
      return false;
    }
    if (s.startsWith('null', this.i)) {
      this.i += 4;
      return null;
    }
    if (this.i >= s.length) this.fail('EOF while parsing a value');
    this.fail('expected value');
  }

  object(depth: number): JsonObject {
    const m: JsonObject = new Map();
    this.i++;
    this.skipWs();
    if (this.s[this.i] === '}') {
      this.i++;
      return m;
    }
    for (;;) {
      this.skipWs();
      if (this.s[this.i] !== '"') this.fail('key must be a string');
      const k = this.string();
      this.skipWs();
      if (this.s[this.i] !== ':') this.fail('expected `:`');
      this.i++;
      this.skipWs();
      m.set(k, this.value(depth + 1));
      this.skipWs();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === '}') {
        this.i++;
        return m;
      }
      this.fail(this.i >= this.s.length ? 'EOF while parsing an object' : 'expected `,` or `}`');
    }
  }

  array(depth: number): JsonValue[] {
    const a: JsonValue[] = [];
    this.i++;
    this.skipWs();
    if (this.s[this.i] === ']') {
      this.i++;
      return a;
    }
    for (;;) {
      this.skipWs();
      a.push(this.value(depth + 1));
      this.skipWs();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === ']') {
        this.i++;
        return a;
      }
      this.fail(this.i >= this.s.length ? 'EOF while parsing a list' : 'expected `,` or `]`');
    }
  }

  number(): JsonNumber {
    NUMBER_RE.lastIndex = this.i;
    const m = NUMBER_RE.exec(this.s);
    if (!m) this.fail('invalid number');
    this.i += m[0].length;
    try {
      return new JsonNumber(normalizeNumber(m[0]));
    } catch {
      this.fail('number out of range');
    }
  }

  string(): string {
    const s = this.s;
    this.i++; // opening quote
    let out = '';
    let start = this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('EOF while parsing a string');
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(start, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail('control character (\\u0000-\\u001F) found while parsing a string');
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += s.slice(start, this.i);
      const e = s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = s.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
          break;
        }
        default:
          this.i -= 1;
          this.fail('invalid escape');
      }
      start = this.i;
    }
  }
}
