/**
 * The REST API: one Hono app shared by the Node runtime (served on a port) and the Workers runtime
 * (`fetch`). It sees the database only through the Db port; runtimes pass their deps in.
 *
 * Every /v1 route except the OpenAPI document needs `Authorization: Bearer <token>` (auth.ts). A token
 * maps to a database role, and each request's SQL runs in one transaction that starts with
 * SET LOCAL ROLE <role>: df.start records that role as the owner, and row-level security shows it only
 * its own instances (another role's instance is a 404, like an unknown id).
 */
import type { Context } from 'hono';
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { Db, DbClient } from '../engine/db.ts';
import { silentLogger, type Logger } from '../log.ts';
import { bearerToken, createTokenResolver } from './auth.ts';
import { ApiError, errorBody, mapDbError, sqlState } from './errors.ts';
import { healthCheck } from './health.ts';
import { mountHooks } from './hooks.ts';
import { instanceRoutes } from './instances.ts';
import { defaultHook, withFields, type ApiApp, type ApiEnv, type RouteKit } from './kit.ts';
import { healthz, mountOpenApi } from './openapi.ts';
import { streamRoutes } from './stream.ts';
import { workflowRoutes } from './workflows.ts';
import { scheduleRoutes } from './schedules.ts';
import { resumeRoutes } from './resume.ts';
import { createUi } from '../ui/routes.ts';

export interface AppDeps {
  db: Db;
  log?: Logger;
  /** Tokens configured as secrets/env (PGFLARE_API_TOKENS), in addition to tokens stored in Postgres. */
  staticTokens?: { token: string; role: string }[];
  /** Largest accepted request body in bytes (default 1 MiB + 64 KiB, room for a large graph). */
  maxBodyBytes?: number;
  /** statement_timeout of every API transaction (default 30 s; 0 = no timeout). */
  statementTimeoutMs?: number;
  /** Clock for webhook signature timestamps (ms since the epoch; tests move it). */
  now?: () => number;
  /**
   * The ready port: called with an instance id once a request's transaction has committed and left
   * work of that instance ready to run (POST /v1/instances, /v1/workflows/{name}/instances,
   * /v1/instances/{instance_id}/signals/{name}, a new webhook delivery). The Workers runtime sends the
   * queue messages from it; the Node worker needs none (df.start and df.signal NOTIFY it). Not awaited:
   * the answer does not wait for it, and a failure is logged (the sweep finds the rows anyway).
   */
  onReady?: (instanceId: string) => void | Promise<void>;
  /** Longest `?wait=` of GET /v1/instances/{instance_id} in seconds (default 60). */
  maxWaitSeconds?: number;
  /** How often an open event stream (GET /v1/instances/{instance_id}/events/stream) reads the database, ms (default 500). */
  streamPollMs?: number;
  /** Longest an event stream stays open, seconds (default 900); the client reconnects with Last-Event-ID. */
  streamMaxSeconds?: number;
  /** An idle event stream sends a comment line this often, ms (default 15 000). */
  streamKeepAliveMs?: number;
  /** Origins allowed by CORS (PGFLARE_CORS_ORIGINS, comma separated; `*` = any); none = no CORS headers. */
  corsOrigins?: string[];
  /** /healthz is a 503 when no worker heartbeat is this recent (seconds); absent: reported, not required (health.ts). */
  healthWorkerMaxAgeS?: number;
}

/** The API's settings from the runtime configuration (src/config.ts). */
export function apiConfig(cfg: { healthWorkerMaxAgeS: number; streamPollMs: number }): Pick<AppDeps, 'healthWorkerMaxAgeS' | 'streamPollMs'> {
  return { healthWorkerMaxAgeS: cfg.healthWorkerMaxAgeS, streamPollMs: cfg.streamPollMs };
}

/** PGFLARE_CORS_ORIGINS: comma-separated origins (`*` = any); unset or empty = no CORS. */
export function parseCorsOrigins(value: string | undefined): string[] {
  return (value ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
}

/** A client's X-Request-Id is echoed when it is 1-200 visible characters; otherwise one is made. */
const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** The methods routes define for `path` (middleware excluded), for 405's Allow. */
function allowedMethods(app: ApiApp, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL' || r.path.includes('*')) continue;
    const pattern = new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}$`);
    if (pattern.test(path)) methods.add(r.method);
  }
  return [...methods].sort();
}

const DEFAULT_MAX_BODY = 1_114_112;

/** Errors hono and @hono/zod-openapi raise themselves (a body that is not JSON, a wrong Content-Type) as our body. */
function httpError(err: HTTPException): ApiError {
  if (err.status === 400) return new ApiError(400, 'invalid_json', 'request body is not valid JSON');
  if (err.status === 415) return new ApiError(415, 'unsupported_media_type', 'request bodies must be JSON: send Content-Type: application/json');
  return new ApiError(err.status === 413 ? 413 : 400, err.status === 413 ? 'payload_too_large' : 'bad_request', err.message);
}

export function createApp(deps: AppDeps): ApiApp {
  const { db, log } = deps;
  const tokens = createTokenResolver(deps.staticTokens);
  const statementTimeout = `${Math.max(0, Math.floor(deps.statementTimeoutMs ?? 30_000))}ms`;
  const lookupStored = (hash: string) =>
    db.withClient(async (client) => {
      try {
        return (await client.query<{ role: string | null }>('SELECT df._api_token_role($1) AS role', [hash])).rows[0]?.role ?? null;
      } catch (err) {
        // Only the owner of schema df reads token hashes: a deployment problem, not the caller's.
        if (sqlState(err) === '42501') throw new Error(`the API's database role cannot read df._api_tokens (connect as the owner of schema df): ${(err as Error).message}`);
        throw err;
      }
    });
  const app: ApiApp = new OpenAPIHono<ApiEnv>({ defaultHook });

  const ready = (instanceId: string, reqLog: Logger | undefined = log) => {
    const warn = (err: unknown) => reqLog?.warn('api: onReady failed; the sweep will find the ready rows', { instance: instanceId, error: err });
    try {
      void Promise.resolve(deps.onReady?.(instanceId)).catch(warn);
    } catch (err) {
      warn(err);
    }
  };

  // Every answer carries X-Request-Id (the client's when it sent a usable one); every log line of the
  // request carries it as request_id.
  app.use('*', async (c, next) => {
    const sent = c.req.header('X-Request-Id');
    const id = sent !== undefined && REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
    c.set('requestId', id);
    c.set('log', withFields(log ?? silentLogger, { request_id: id }));
    c.header('X-Request-Id', id);
    const t0 = Date.now();
    await next();
    c.res.headers.set('X-Request-Id', id);
    c.var.log.debug('api request', { method: c.req.method, path: c.req.path, status: c.res.status, ms: Date.now() - t0 });
  });
  const origins = deps.corsOrigins ?? [];
  if (origins.length > 0) {
    app.use(
      '*',
      cors({
        origin: origins.includes('*') ? '*' : origins,
        allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
        exposeHeaders: ['Location', 'X-Request-Id', 'Idempotent-Replayed', 'Allow'],
        maxAge: 600,
      }),
    );
  }

  app.onError((err, c) => {
    const api = err instanceof ApiError ? err : err instanceof HTTPException ? httpError(err) : mapDbError(err);
    if (api) return c.json(errorBody(api.code, api.message), api.status);
    (c.var.log ?? log)?.error('api request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json(errorBody('internal', 'internal error'), 500);
  });
  // A known path with another method is a 405 with the methods it has; anything else a 404.
  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0) {
      return c.json(errorBody('method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(', ')}`), 405, { Allow: allowed.join(', ') });
    }
    return c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404);
  });

  app.openapi(healthz, async (c) => {
    const h = await healthCheck(db, log, deps.healthWorkerMaxAgeS);
    return c.json(h.body as never, h.status);
  });
  // Before the /v1 auth middleware: the document and /docs need no token. Generated on first request,
  // once every route below has defined itself.
  mountOpenApi(app);

  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.maxBodyBytes ?? DEFAULT_MAX_BODY,
      onError: (c) => c.json(errorBody('payload_too_large', 'request body too large'), 413),
    }),
  );

  // Authentication: the token's role, resolved before any body is read.
  app.use('/v1/*', async (c, next) => {
    const token = bearerToken(c.req.header('Authorization'));
    c.set('role', await tokens.resolve(token, lookupStored));
    await next();
  });

  /** Runs fn in one transaction as the request's role, under the API's statement_timeout. */
  const asRole = <T>(c: Context<ApiEnv>, fn: (client: DbClient) => Promise<T>): Promise<T> =>
    db.withTransaction(async (client) => {
      const role = c.get('role');
      const { rows } = await client.query<{ r: string }>(
        `SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1) THEN 'missing'
                     WHEN NOT pg_catalog.pg_has_role(current_user, $1, 'MEMBER') THEN 'denied'
                     ELSE pg_catalog.set_config('role', $1, true)
                          || pg_catalog.set_config('statement_timeout', $2, true) END AS r`,
        [role, statementTimeout],
      );
      const r = rows[0]?.r;
      if (r === 'missing') throw new ApiError(403, 'forbidden', `the token's role "${role}" does not exist`);
      if (r === 'denied') throw new ApiError(403, 'forbidden', `the API's database role may not act as the token's role "${role}"`);
      return fn(client);
    });

  const kit: RouteKit = { asRole, ready };
  instanceRoutes(app, kit, { maxWaitSeconds: deps.maxWaitSeconds ?? 60 });
  streamRoutes(app, kit, { pollMs: deps.streamPollMs ?? 500, maxSeconds: deps.streamMaxSeconds ?? 900, keepAliveMs: deps.streamKeepAliveMs ?? 15_000 });
  workflowRoutes(app, kit);
  scheduleRoutes(app, kit);
  resumeRoutes(app, kit);
  mountHooks(app, { ...kit, db, log, now: deps.now ?? Date.now });

  // The web dashboard, over these same routes (src/ui); resume: the API has POST .../resume (resume.ts).
  app.route('/ui', createUi({ api: (path, init) => Promise.resolve(app.request(path, init)), resume: true }));

  return app;
}
