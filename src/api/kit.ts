/**
 * What the route modules (workflows.ts, schedules.ts, hooks.ts) share with app.ts: the Hono env, the
 * per-request kit app.ts hands them, and validation failures as our error body. Route modules import
 * from here, never from app.ts, which imports them.
 */
import type { Context } from 'hono';
import type { OpenAPIHono, z } from '@hono/zod-openapi';
import type { DbClient } from '../engine/db.ts';
import type { Logger } from '../log.ts';
import { errorBody, validationError } from './errors.ts';

/** role: the token's database role; requestId: the X-Request-Id; log: the logger with request_id on every line. */
export type ApiEnv = { Variables: { role: string; requestId: string; log: Logger } };
/** The app every route module defines its routes on (createRoute + app.openapi). */
export type ApiApp = OpenAPIHono<ApiEnv>;

/** What a path parameter names, for the 404 of a malformed one (it cannot exist, like an unknown one). */
function missing(path: string, params: Record<string, string>): string {
  if (path.startsWith('/v1/instances/')) return `instance ${params.instance_id ?? ''} not found`;
  const name = (params.name ?? '').slice(0, 100);
  if (path.startsWith('/v1/workflows/')) return `workflow "${name}" not found`;
  if (path.startsWith('/v1/schedules/')) return `schedule "${name}" not found`;
  if (path.startsWith('/v1/hooks/') || path.startsWith('/hooks/')) return `no webhook named "${name}"`;
  return `no such ${path}`;
}

/**
 * The validation hook of every route (OpenAPIHono's defaultHook): a request the route's zod schemas
 * refuse answers with our error body: a bad body or query is a 400 `invalid_body`/`invalid_query`, a
 * malformed path parameter a 404 `not_found` (routes with a parameter that can be wrong otherwise, a
 * signal name, pass their own hook), a malformed Idempotency-Key a 400 `invalid_idempotency_key`.
 */
export function defaultHook(
  result: { success: true; target: string } | { success: false; target: string; error: z.ZodError },
  c: Context<ApiEnv>,
): Response | undefined {
  if (result.success) return undefined;
  const { target } = result;
  if (target === 'param') return c.json(errorBody('not_found', missing(c.req.path, c.req.param() as Record<string, string>)), 404);
  if (target === 'header') {
    return c.json(errorBody('invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces'), 400);
  }
  const err = validationError(result.error, target === 'query' ? 'query' : 'body');
  return c.json(errorBody(err.code, err.message), err.status);
}

/** A logger that adds `fields` to every line of `log`. */
export function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  const at = (l: keyof Logger) => (msg: string, more?: Record<string, unknown>) => log[l](msg, { ...fields, ...more });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** What route modules need: the per-request transaction as the token's role and the ready port. */
export interface RouteKit {
  asRole: <T>(c: Context<ApiEnv>, fn: (client: DbClient) => Promise<T>) => Promise<T>;
  /**
   * Call after the transaction that made work of `instanceId` ready has committed (a start, a signal,
   * a webhook delivery): hands it to the runtime's onReady port. Never throws and never delays the answer.
   */
  ready: (instanceId: string, log?: Logger) => void;
}
