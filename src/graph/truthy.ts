/**
 * IF conditions (SPEC §3.3): truthiness of a condition node's result text, and df.if_rows.
 */
import { isJsonObject, JsonNumber, parseJson, JsonParseError, tryParseJson, type JsonValue } from './json.ts';
import type { NamedResult } from './substitute.ts';

/**
 * Truthiness of a result text: a SQL result's first row's first column (no rows → false);
 * otherwise the whole JSON value; non-JSON text is judged as a string.
 */
export function isConditionTrue(resultText: string): boolean {
  const json = tryParseJson(resultText);
  if (json === undefined) return isTruthy(resultText);
  if (isJsonObject(json)) {
    const rows = json.get('rows');
    if (Array.isArray(rows)) {
      if (rows.length === 0) return false;
      const first = rows[0];
      if (isJsonObject(first)) {
        const entry = first.entries().next();
        if (!entry.done) return isTruthy(entry.value[1]);
      }
      // First row not an object, or no columns: fall through to the whole value.
    }
  }
  return isTruthy(json);
}

// Rust's float syntax (after trim + lower-case): inf, infinity, nan, `5.`, `.5`, exponents.
const RUST_FLOAT = /^[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)$/;

/** One JSON value's truthiness (the table in SPEC §3.3). */
export function isTruthy(value: JsonValue | number): boolean {
  if (value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (value instanceof JsonNumber) return value.toNumber() !== 0;
  if (Array.isArray(value)) return value.length > 0;
  if (isJsonObject(value)) return value.size > 0;
  const s = trimRust(value).toLowerCase();
  if (s === '') return false;
  if (s === 'true' || s === 't' || s === 'yes') return true;
  if (s === 'false' || s === 'f' || s === 'no') return false;
  if (RUST_FLOAT.test(s)) {
    if (s.includes('nan') || s.includes('inf')) return true; // NaN != 0, ±inf != 0
    return Number(s) !== 0;
  }
  return true; // any other text, including "off" and "n"
}

// Rust's str::trim (Unicode White_Space): unlike JS trim it strips U+0085 and keeps U+FEFF.
const RUST_WS = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const RUST_TRIM = new RegExp(`^${RUST_WS}+|${RUST_WS}+$`, 'g');
function trimRust(s: string): string {
  return s.replace(RUST_TRIM, '');
}

export type IfRowsOutcome = { ok: true; value: boolean } | { ok: false; error: string };

/**
 * df.if_rows: true iff the named result (in memory) is a SQL result with `row_count > 0`.
 * Errors are pg_durable's texts.
 */
export function evaluateIfRows(
  resultName: string,
  results: ReadonlyMap<string, NamedResult | string> | Readonly<Record<string, NamedResult | string>>,
): IfRowsOutcome {
  const raw =
    results instanceof Map
      ? results.get(resultName)
      : Object.prototype.hasOwnProperty.call(results, resultName)
        ? (results as Record<string, NamedResult | string>)[resultName]
        : undefined;
  if (raw === undefined) return { ok: false, error: `df.if_rows: result '${resultName}' not found` };
  const text = typeof raw === 'string' ? raw : raw.text;
  let json: JsonValue;
  try {
    json = parseJson(text);
  } catch (e) {
    if (e instanceof JsonParseError) return { ok: false, error: `df.if_rows: invalid result JSON: ${e.message}` };
    throw e;
  }
  const rc = isJsonObject(json) ? json.get('row_count') : undefined;
  // serde's as_u64: only a non-negative integer literal that fits u64 counts.
  if (!(rc instanceof JsonNumber) || !/^\d+$/.test(rc.text)) {
    return { ok: false, error: `df.if_rows: result '${resultName}' is not a SQL result (missing row_count)` };
  }
  return { ok: true, value: rc.text !== '0' };
}
