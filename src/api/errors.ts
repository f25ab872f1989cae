/**
 * API errors: every failure leaves as `{"error":{"code","message"}}` with a status. Codes are stable
 * (clients match on them); messages are for people. Database errors are mapped by SQLSTATE, per route.
 */
import type { ZodError } from 'zod';

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 503;

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const errorBody = (code: string, message: string) => ({ error: { code, message } });

/** The SQLSTATE of a driver error (`pg` and `@neondatabase/serverless` both set `code`). */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** SQLSTATE → API error, for the codes every route shares; undefined leaves the error a 500. */
export function mapDbError(err: unknown, overrides: Record<string, [ErrorStatus, string]> = {}): ApiError | undefined {
  const state = sqlState(err);
  if (!state) return undefined;
  const message = (err as Error).message;
  const hit = overrides[state] ?? overrides[state.slice(0, 2)];
  if (hit) return new ApiError(hit[0], hit[1], message);
  if (state === 'P0002') return new ApiError(404, 'not_found', message);
  if (state === '42501') return new ApiError(403, 'forbidden', message);
  if (state === '23505') return new ApiError(409, 'conflict', message);
  if (state === '57014') return new ApiError(503, 'statement_timeout', 'the request took longer than the API allows');
  // The caller's data that PostgreSQL cannot hold (U+0000 in text or JSON, bad encoding, …), on any
  // route; found by fuzzing as 500s (e.g. GET /v1/instances?label=%00).
  if (state.startsWith('22')) return new ApiError(400, 'invalid_input', message);
  // A size limit of migrations/0014_limits.sql (signal data, …).
  if (state === '54000') return new ApiError(413, 'payload_too_large', message);
  return undefined;
}

/** Mapping for starting a workflow: anything the DSL or graph validation raises is the caller's workflow. */
export const WORKFLOW_ERRORS: Record<string, [ErrorStatus, string]> = {
  PF001: [422, 'invalid_workflow'],
  PF002: [422, 'invalid_workflow'],
  '22': [422, 'invalid_workflow'], // 22023 bad DSL argument, 22004 NULL, 22P02 bad ::jsonb literal, …
  '42': [422, 'invalid_workflow'], // no such operator/function for these argument types, syntax
  '54': [422, 'invalid_workflow'], // 54000 graph too deep / too many nodes, 54001 stack depth
  '55': [422, 'invalid_workflow'], // 55000 helper trap (df.setvar as a step), HTTP disabled
  '42501': [403, 'forbidden'],
  '0A000': [422, 'invalid_workflow'],
};

export function validationError(err: ZodError, where: 'body' | 'query'): ApiError {
  const first = err.issues[0];
  const path = first?.path.length ? first.path.join('.') : where;
  const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more)` : '';
  return new ApiError(400, where === 'body' ? 'invalid_body' : 'invalid_query', `${path}: ${first?.message ?? 'invalid'}${more}`);
}
