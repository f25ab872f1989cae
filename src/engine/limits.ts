/**
 * Worker-side size limits (issue 7 item 5). The limits on what users write (step text, graph size,
 * signal data, variables) are database triggers, `migrations/0014_limits.sql`; the ones here cap what
 * a step produces, before it is checkpointed. Pure: no Node or Workers APIs.
 */
import type { StepOutcome } from './executors/outcome.ts';

/** A step's result text (SQL rows as JSON, or the HTTP envelope): PGFLARE_MAX_RESULT_BYTES. */
export const DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024;

/** UTF-8 length of a JS string without allocating its bytes. Lone surrogates count 3, as TextEncoder writes U+FFFD. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

export function resultTooLargeError(bytes: number, max: number): string {
  return `Step result too large: ${bytes} bytes, over the limit of ${max} bytes (PGFLARE_MAX_RESULT_BYTES). Return fewer rows or columns, or write large data to a table.`;
}

/** The outcome, or a failure naming the limit when its result text is over `max` bytes. */
export function capStepResult(out: StepOutcome, max: number = DEFAULT_MAX_RESULT_BYTES): StepOutcome {
  if (!out.ok) return out;
  // Cheap bound first: a string of n UTF-16 units has at most 3n UTF-8 bytes.
  if (out.resultText.length * 3 <= max) return out;
  const bytes = utf8Length(out.resultText);
  return bytes > max ? { ok: false, error: resultTooLargeError(bytes, max) } : out;
}
