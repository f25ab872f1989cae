/**
 * Variable substitution (SPEC §4): one `{name}` pass, then one `$…` pass over its output.
 *
 * Result shape: `substitute` returns `{ ok: true, text }` or `{ ok: false, error }`; the error
 * strings are pg_durable's verbatim, and the engine fails the node with them. Nothing throws for
 * user data (only programming errors would).
 *
 * Modes: 'sql' quotes values as SQL literals (SQL nodes); 'raw' inserts them as plain text (HTTP
 * url/body/headers, multipart fields). `{name}` values are inserted as-is in both modes: they are
 * the user's own SQL fragments, run with the user's own rights.
 *
 * Named results are read from their in-memory *text* (column order matters: bare `$name` is the
 * first column), parsed with the order-preserving parser in json.ts.
 */
import { isJsonObject, parseJson, stringifyJson, tryParseJson, type JsonObject, type JsonValue, JsonNumber, JsonParseError } from './json.ts';

/** A named result as the engine holds it: the result text, and optionally its parsed value. */
export interface NamedResult {
  text: string;
  value?: unknown;
}

export type SubstitutionMode = 'sql' | 'raw';

export interface SubstitutionContext {
  instanceId: string;
  label: string | null;
  /** df.vars captured at df.start. */
  vars: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Named results in scope (result_name → result). */
  results: ReadonlyMap<string, NamedResult | string> | Readonly<Record<string, NamedResult | string>>;
}

export type SubstitutionOutcome = { ok: true; text: string } | { ok: false; error: string };

/** Maximum rows `$name.*` expands (SPEC §6.5). */
export const MAX_ROWSET_EXPANSION = 10_000;

export function substitute(template: string, ctx: SubstitutionContext, mode: SubstitutionMode): SubstitutionOutcome {
  const braced = substituteBraced(template, ctx);
  return substituteResults(braced, ctx.results, mode);
}

const IDENT_CONT = /[A-Za-z0-9_]/;
const IDENT_AT_START = /^[A-Za-z_][A-Za-z0-9_]*/;
const IDENT_STICKY = /[A-Za-z_][A-Za-z0-9_]*/y;

function lookup<T>(m: ReadonlyMap<string, T> | Readonly<Record<string, T>>, key: string): T | undefined {
  if (m instanceof Map) return m.get(key);
  return Object.prototype.hasOwnProperty.call(m, key) ? (m as Record<string, T>)[key] : undefined;
}

function keysOf(m: ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>): string[] {
  return m instanceof Map ? [...m.keys()] : Object.keys(m);
}

/**
 * `{name}` pass (SPEC §4.1): each `{` pairs with the first following `}`; `sys_instance_id`,
 * `sys_label` and captured vars are replaced, anything else stays verbatim and scanning resumes
 * after that `}`. Inserted values are not rescanned by this pass.
 */
export function substituteBraced(template: string, ctx: Pick<SubstitutionContext, 'instanceId' | 'label' | 'vars'>): string {
  let out = '';
  let rest = template;
  for (;;) {
    const open = rest.indexOf('{');
    if (open < 0) break;
    out += rest.slice(0, open);
    const close = rest.indexOf('}', open + 1);
    if (close < 0) {
      out += rest.slice(open);
      return out;
    }
    const name = rest.slice(open + 1, close);
    let value: string | undefined;
    if (name === 'sys_instance_id') value = ctx.instanceId;
    else if (name === 'sys_label') value = ctx.label ?? '';
    // pg_durable's identifier test accepts the empty candidate too, so `{}` reads a var named ''.
    else if (name === '' || /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) value = lookup(ctx.vars, name);
    out += value ?? rest.slice(open, close + 1);
    rest = rest.slice(close + 1);
  }
  return out + rest;
}

class Fail {
  constructor(readonly error: string) {}
}

/** The `$…` pass (SPEC §4.2) on its own. */
export function substituteResults(
  input: string,
  results: SubstitutionContext['results'],
  mode: SubstitutionMode,
): SubstitutionOutcome {
  const names = keysOf(results).sort((a, b) => b.length - a.length);
  if (names.length === 0) return { ok: true, text: input };
  const sql = mode === 'sql';
  // Parse each result text once per call, however often it is referenced.
  const cache = new Map<string, JsonValue | JsonParseError>();
  const parse = (text: string): JsonValue | JsonParseError => {
    let v = cache.get(text);
    if (v === undefined && !cache.has(text)) {
      try {
        v = parseJson(text);
      } catch (e) {
        if (!(e instanceof JsonParseError)) throw e;
        v = e;
      }
      cache.set(text, v);
    }
    return v as JsonValue | JsonParseError;
  };
  let out = '';
  let i = 0;
  try {
    while (i < input.length) {
      const dollar = input.indexOf('$', i);
      if (dollar < 0) {
        out += input.slice(i);
        break;
      }
      out += input.slice(i, dollar);
      i = dollar;
      let matched = false;
      for (const name of names) {
        if (name === '' || !input.startsWith(name, i + 1)) continue;
        const at = i + 1 + name.length; // index just after the name
        const raw = lookup(results, name)!;
        const text = typeof raw === 'string' ? raw : raw.text;
        if (input.startsWith('.*', at)) {
          out += expandRowSet(name, parse(text), sql);
          i = at + 2;
          matched = true;
          break;
        }
        if (input[at] === '.') {
          IDENT_STICKY.lastIndex = at + 1;
          const col = IDENT_STICKY.exec(input)?.[0];
          if (col) {
            const nullSafe = input[at + 1 + col.length] === '?';
            out += extractColumn(name, parse(text), col, nullSafe, sql);
            i = at + 1 + col.length + (nullSafe ? 1 : 0);
            matched = true;
            break;
          }
          // `$name.` + non-identifier: fall back to bare `$name` (the '.' stays in the text).
        }
        if (input[at] === '?') {
          out += extractFirstColumn(name, text, parse(text), true, sql);
          i = at + 1;
          matched = true;
          break;
        }
        if (at >= input.length || !IDENT_CONT.test(input[at])) {
          out += extractFirstColumn(name, text, parse(text), false, sql);
          i = at;
          matched = true;
          break;
        }
        // Followed by an identifier character: `$names` is not `$name`; try shorter names.
      }
      if (!matched) {
        out += '$';
        i += 1;
      }
    }
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: e.error };
    throw e;
  }
  return { ok: true, text: out };
}

/** SQL string literal: `'…'` with `'` doubled (standard_conforming_strings: backslashes are literal). */
export function quoteSqlLiteral(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function quoteIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

function formatValue(v: JsonValue, sql: boolean): string {
  if (typeof v === 'string') return sql ? quoteSqlLiteral(v) : v;
  if (v instanceof JsonNumber) return v.text;
  if (typeof v === 'boolean') return String(v);
  const json = stringifyJson(v);
  return sql ? quoteSqlLiteral(json) : json;
}

function rowsOf(v: Parsed): JsonValue[] | undefined {
  if (v instanceof JsonParseError || !isJsonObject(v)) return undefined;
  const rows = v.get('rows');
  return Array.isArray(rows) ? rows : undefined;
}

type Parsed = JsonValue | JsonParseError;

function extractFirstColumn(name: string, text: string, parsed: Parsed, nullSafe: boolean, sql: boolean): string {
  const rows = rowsOf(parsed);
  // Not JSON, or JSON without a rows array (HTTP envelope, signal, JOIN array…): the whole text.
  if (!rows) return sql ? quoteSqlLiteral(text) : text;
  if (rows.length === 0) {
    if (nullSafe) return 'NULL';
    throw new Fail(`$${name} has no rows — query returned zero results`);
  }
  const first = rows[0];
  if (!isJsonObject(first)) throw new Fail(`$${name}: first row is not an object`);
  const entry = first.entries().next();
  if (entry.done) throw new Fail(`$${name}: first row has no columns`);
  const val = entry.value[1];
  if (val === null) {
    if (nullSafe) return 'NULL';
    throw new Fail(`$${name} is NULL — first column of first row is NULL`);
  }
  return formatValue(val, sql);
}

function extractColumn(name: string, json: Parsed, col: string, nullSafe: boolean, sql: boolean): string {
  if (json instanceof JsonParseError) throw new Fail(`$${name}.${col}: result is not valid JSON`);
  const rows = rowsOf(json);
  let fields: JsonObject;
  if (rows) {
    if (rows.length === 0) {
      if (nullSafe) return 'NULL';
      throw new Fail(`$${name} has no rows — query returned zero results`);
    }
    if (!isJsonObject(rows[0])) throw new Fail(`$${name}.${col}: first row is not an object`);
    fields = rows[0];
  } else {
    if (!isJsonObject(json)) throw new Fail(`$${name}.${col}: result is neither a row set nor a JSON object`);
    fields = json;
  }
  if (!fields.has(col)) {
    // SQL: leave the pattern for PostgreSQL to report. Raw (URL, header…): fail loudly, unless `?`.
    if (!sql && !nullSafe) {
      const available = [...fields.keys()].sort(compareUtf8).join(', ');
      throw new Fail(`$${name}.${col}: result has no field '${col}' (available: ${available})`);
    }
    return `$${name}.${col}${nullSafe ? '?' : ''}`;
  }
  const val = fields.get(col)!;
  if (val === null) {
    if (nullSafe) return 'NULL';
    throw new Fail(`$${name}.${col} is NULL`);
  }
  return formatValue(val, sql);
}

// Rust sorts &str by UTF-8 bytes, which is code point order (UTF-16 order differs for astral characters).
export function compareUtf8(a: string, b: string): number {
  const ca = [...a];
  const cb = [...b];
  for (let k = 0; k < Math.min(ca.length, cb.length); k++) {
    const d = ca[k].codePointAt(0)! - cb[k].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

function expandRowSet(name: string, json: Parsed, sql: boolean): string {
  if (json instanceof JsonParseError) throw new Fail(`$${name}.* — invalid result JSON: ${json.message}`);
  const rows = rowsOf(json);
  if (!rows) throw new Fail(`$${name}.* — invalid result format`);
  if (rows.length > MAX_ROWSET_EXPANSION) {
    throw new Fail(
      `$${name}.* — result has ${rows.length} rows, exceeding the maximum of ${MAX_ROWSET_EXPANSION} for row-set expansion. ` +
        'Use pagination or intermediate tables for large result sets.',
    );
  }
  if (!sql) return stringifyJson(rows);
  const alias = quoteIdent(name);
  if (rows.length === 0) return `(SELECT NULL WHERE false) AS ${alias}`;
  const first = rows[0];
  if (!isJsonObject(first)) throw new Fail(`$${name}.* — row is not an object`);
  const cols = [...first.keys()];
  const valueRows = rows.map((row) => {
    if (!isJsonObject(row)) throw new Fail(`$${name}.* — row is not an object`);
    const vals = cols.map((c) => {
      const v = row.get(c);
      if (v === undefined || v === null) return 'NULL';
      if (typeof v === 'string') return `${quoteSqlLiteral(v)}::text`;
      if (v instanceof JsonNumber) return v.text;
      if (typeof v === 'boolean') return String(v);
      return `${quoteSqlLiteral(stringifyJson(v))}::text`;
    });
    return `(${vals.join(',')})`;
  });
  return `(VALUES ${valueRows.join(', ')}) AS ${alias}(${cols.map(quoteIdent).join(', ')})`;
}

/**
 * True when `value` (trimmed) is exactly one reference — `$n`, `$n?`, `$n.c`, `$n.c?` or `{v}` —
 * which is the only form multipart `data_b64` may use (SPEC §3.11; `$n.*` is not one value).
 */
export function isWholeValueReference(value: string): boolean {
  const v = value.trim();
  if (v.startsWith('$')) {
    const name = IDENT_AT_START.exec(v.slice(1))?.[0];
    if (!name) return false;
    let rest = v.slice(1 + name.length);
    if (rest.startsWith('.')) {
      const col = IDENT_AT_START.exec(rest.slice(1))?.[0];
      if (!col) return false;
      rest = rest.slice(1 + col.length);
    }
    return rest === '' || rest === '?';
  }
  if (v.startsWith('{')) {
    const name = IDENT_AT_START.exec(v.slice(1))?.[0];
    return !!name && v.slice(1 + name.length) === '}';
  }
  return false;
}

/** Builds a NamedResult from a result text, parsing it when it is JSON (value stays undefined otherwise). */
export function toNamedResult(text: string): NamedResult {
  const v = tryParseJson(text);
  return { text, value: v === undefined ? undefined : JSON.parse(text) };
}
