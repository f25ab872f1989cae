/**
 * What the route modules (workflows.ts, schedules.ts, hooks.ts) share with app.ts: the Hono env, the
 * per-request kit app.ts hands them, and body parsing. Route modules import from here, never from
 * app.ts, which imports them.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import type { DbClient } from '../engine/db.ts';
import type { Logger } from '../log.ts';
import { ApiError, validationError } from './errors.ts';

/** role: the token's database role; requestId: the X-Request-Id; log: the logger with request_id on every line. */
export type ApiEnv = { Variables: { role: string; requestId: string; log: Logger } };

/** A logger that adds `fields` to every line of `log`. */
export function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  const at = (l: keyof Logger) => (msg: string, more?: Record<string, unknown>) => log[l](msg, { ...fields, ...more });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** What route modules need: the per-request transaction as the token's role, body parsing, the ready port. */
export interface RouteKit {
  asRole: <T>(c: Context<ApiEnv>, fn: (client: DbClient) => Promise<T>) => Promise<T>;
  parse: typeof parse;
  jsonBody: typeof jsonBody;
  /**
   * Call after the transaction that made work of `instanceId` ready has committed (a start, a signal,
   * a webhook delivery): hands it to the runtime's onReady port. Never throws and never delays the answer.
   */
  ready: (instanceId: string, log?: Logger) => void;
}

/** The request body as JSON; `empty` stands in for an empty body when given, else an empty body is a 400. */
export async function jsonBody(c: Context<ApiEnv>, empty?: unknown): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') {
    if (empty !== undefined) return empty;
    throw new ApiError(400, 'invalid_json', 'request body must be JSON');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'request body is not valid JSON');
  }
}

export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query'): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}
