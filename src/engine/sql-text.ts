/**
 * Literals for the engine's batched simple-protocol queries. Batching several statements into one
 * round trip (e.g. `BEGIN; <claim>; SAVEPOINT …`) needs the simple protocol, which takes no bind
 * parameters, so values are inlined with the same escaping node-postgres' escapeLiteral uses.
 */
export function literal(value: string): string {
  let backslash = false;
  let out = "'";
  for (const ch of value) {
    if (ch === "'") out += "''";
    else if (ch === '\\') {
      out += '\\\\';
      backslash = true;
    } else out += ch;
  }
  out += "'";
  return backslash ? ` E${out}` : out;
}

export function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(',')}]::text[]`;
}

/** The rows of the last statement of a (possibly multi-statement) query result. */
export function lastRows<R>(result: unknown): R[] {
  const r = Array.isArray(result) ? result[result.length - 1] : result;
  return ((r as { rows?: R[] })?.rows ?? []) as R[];
}
