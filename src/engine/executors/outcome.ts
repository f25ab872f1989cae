/** What running one step produced: its result text, or the error text the node fails with. */
export type StepOutcome = { ok: true; resultText: string } | { ok: false; error: string; pg?: PgErrorFields };

/** What PostgreSQL said about a failed SQL step (kept so the API can report the SQLSTATE). */
export interface PgErrorFields {
  code: string;
  detail?: string;
  hint?: string;
}

/** The SQLSTATE, detail and hint of a driver error (`pg` and neon set them), or undefined. */
export function pgErrorFields(err: unknown): PgErrorFields | undefined {
  const e = err as { code?: unknown; detail?: unknown; hint?: unknown } | null;
  if (typeof e?.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) return undefined;
  return {
    code: e.code,
    ...(typeof e.detail === 'string' && e.detail ? { detail: e.detail } : {}),
    ...(typeof e.hint === 'string' && e.hint ? { hint: e.hint } : {}),
  };
}
