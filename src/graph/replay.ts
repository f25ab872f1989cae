/**
 * What a resume (Checkpoint.resume, df.resume) replays: a completed leaf's recorded result, once, when it
 * is activated again with the stamp it completed under; and the generation a scope reopens in, the newest
 * its rows were stamped with (so a loop resumes in the iteration that failed, and only a leaf of that
 * iteration replays); and the text to replay from a stored result. Pure.
 */
import type { NodeState } from './changes.ts';
import { scopeOfStamp } from './scope-ids.ts';
import { JsonNumber, stringifyJson, tryParseJson, type JsonValue } from './json.ts';
import { storedResult } from './result-text.ts';

export interface Replay {
  /** The result text to finish `id` with instead of running it, or undefined to run it. */
  take(id: string, stamp: string): string | undefined;
  /** The generation scope `scopeId` reopens in, when any row was stamped in it. */
  generation(scopeId: string): number | undefined;
}

export function replayOf(nodes: readonly NodeState[], done: ReadonlyMap<string, string>): Replay {
  const stamps = new Map<string, string>();
  const generations = new Map<string, number>();
  for (const n of nodes) {
    if (n.stamp === null) continue;
    stamps.set(n.id, n.stamp);
    const scope = scopeOfStamp(n.stamp);
    const gen = Number(n.stamp.slice(scope.length + 2));
    if (Number.isInteger(gen) && gen > (generations.get(scope) ?? 0)) generations.set(scope, gen);
  }
  const left = new Map(done);
  return {
    take(id, stamp) {
      const text = left.get(id);
      if (text === undefined || stamps.get(id) !== stamp) return undefined;
      left.delete(id);
      return text;
    },
    generation: (scopeId) => generations.get(scopeId),
  };
}

/**
 * A completed leaf's result text from its row. `result` is jsonb, which keeps neither the key order nor
 * the spacing of the text the step produced (a bare `$name` is the first column): a text the step
 * produced that a scope still holds under the leaf's name (`exact`) is used when it is the same value.
 * Otherwise the stored JSON, compact; a JSON string that holds no JSON was a plain text (storedResult).
 */
export function recordedText(stored: string, exact: readonly string[] = []): string {
  const value = tryParseJson(stored);
  if (value === undefined) return stored;
  const key = canonical(value);
  for (const t of exact) {
    const v = tryParseJson(storedResult(t));
    if (v !== undefined && canonical(v) === key) return t;
  }
  if (typeof value === 'string' && tryParseJson(value) === undefined) return value;
  return stringifyJson(value);
}

/** A JSON value as text with object keys sorted: equal for values jsonb stores alike. */
function canonical(v: JsonValue): string {
  if (v instanceof Map) return `{${[...v.keys()].sort().map((k) => `${JSON.stringify(k)}:${canonical(v.get(k)!)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v instanceof JsonNumber) return v.text;
  return JSON.stringify(v);
}
