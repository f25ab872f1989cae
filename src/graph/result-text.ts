/**
 * The JSON texts the state machine stores in `result`: a step's result text, and a df.break() value.
 */
import { stringifyJson, tryParseJson } from './json.ts';

/** The JSON text stored in `result` for a result text: JSON as is, anything else as a JSON string. */
export function storedResult(text: string): string {
  return tryParseJson(text) !== undefined ? text : JSON.stringify(text);
}

/** SPEC §3.7: the literal break value, as JSON when it parses, else a JSON string; absent → null. */
export function breakValueText(value: string | null): string {
  if (value === null) return 'null';
  const parsed = tryParseJson(value);
  return parsed !== undefined ? stringifyJson(parsed) : JSON.stringify(value);
}
