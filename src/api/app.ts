/**
 * The REST API: one Hono app shared by the Node runtime (served on a port) and the Workers runtime
 * (`fetch`). It sees the database only through the Db port; runtimes pass their deps in.
 *
 * Every /v1 route except the OpenAPI document needs `Authorization: Bearer <token>` (auth.ts). A token
 * maps to a database role, and each request's SQL runs in one transaction that starts with
 * SET LOCAL ROLE <role>: df.start records that role as the owner, and row-level security shows it only
 * its own instances (another role's instance is a 404, like an unknown id).
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Db, DbClient } from '../engine/db.ts';
import type { Logger } from '../log.ts';
import { bearerToken, createTokenResolver } from './auth.ts';
import { ApiError, errorBody, mapDbError, sqlState, WORKFLOW_ERRORS } from './errors.ts';
import { mountHooks } from './hooks.ts';
import { jsonBody, parse, type ApiEnv, type RouteKit } from './kit.ts';
import { openApiDocument } from './openapi.ts';
import { CancelBody, InstanceId, ListQuery, SignalName, StartBody } from './schemas.ts';
import { workflowRoutes } from './workflows.ts';
import { scheduleRoutes } from './schedules.ts';
import { resumeRoutes } from './resume.ts';

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
}

const DEFAULT_MAX_BODY = 1_114_112;

export function createApp(deps: AppDeps): Hono<ApiEnv> {
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
  const app = new Hono<ApiEnv>();

  const ready = (instanceId: string) => {
    const warn = (err: unknown) => log?.warn('api: onReady failed; the sweep will find the ready rows', { instance: instanceId, error: err });
    try {
      void Promise.resolve(deps.onReady?.(instanceId)).catch(warn);
    } catch (err) {
      warn(err);
    }
  };

  app.onError((err, c) => {
    const api = err instanceof ApiError ? err : mapDbError(err);
    if (api) return c.json(errorBody(api.code, api.message), api.status);
    log?.error('api request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json(errorBody('internal', 'internal error'), 500);
  });
  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404));

  app.get('/healthz', async (c) => {
    try {
      await db.withClient((client) => client.query('SELECT 1'));
    } catch (err) {
      log?.warn('healthz: database unreachable', { error: err });
      return c.json(errorBody('unavailable', 'database unreachable'), 503);
    }
    return c.json({ ok: true });
  });

  app.get('/v1/openapi.json', (c) => c.json(openApiDocument()));

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

  /** The instance as JSON, or 404 (unknown and invisible look the same). */
  const requireInstance = async (client: DbClient, id: string) => {
    const { rows } = await client.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM df.instance_info($1)) AS found', [id]);
    if (!rows[0]?.found) throw new ApiError(404, 'not_found', `instance ${id} not found`);
  };

  const instanceId = (c: Context<ApiEnv>) => {
    const id = c.req.param('instance_id') ?? '';
    if (!InstanceId.safeParse(id).success) throw new ApiError(404, 'not_found', `instance ${id} not found`);
    return id;
  };

  app.post('/v1/instances', async (c) => {
    const body = parse(StartBody, await jsonBody(c), 'body');
    const started = await asRole(c, async (client) => {
      const fut = body.workflow !== undefined ? 'df._eval_dsl($1)' : '$1';
      const arg = body.workflow ?? JSON.stringify(body.graph);
      try {
        const { rows } = await client.query<{ id: string; status: string }>(
          `WITH s AS MATERIALIZED (SELECT df.start(${fut}, $2) AS id) SELECT s.id, df.status(s.id) AS status FROM s`,
          [arg, body.label ?? null],
        );
        return rows[0]!;
      } catch (err) {
        throw mapDbError(err, WORKFLOW_ERRORS) ?? err;
      }
    });
    ready(started.id);
    return c.json({ instance_id: started.id, status: started.status }, 201, { Location: `/v1/instances/${started.id}` });
  });

  app.get('/v1/instances', async (c) => {
    const q = parse(ListQuery, c.req.query(), 'query');
    const page = await asRole(c, async (client) => {
      try {
        const { rows } = await client.query<{ page: { instances: unknown[]; next_cursor: string | null } }>(
          `SELECT json_build_object(
                    'instances', coalesce(json_agg(json_build_object(
                        'instance_id', l.instance_id, 'label', l.label, 'status', l.status,
                        'execution_count', l.execution_count, 'output', l.output,
                        'created_at', l.created_at, 'completed_at', l.completed_at) ORDER BY l.ord), '[]'::json),
                    'next_cursor', max(l.next_cursor)) AS page
             FROM df.list_instances($1::text, $2::integer, $3::text, $4::text) WITH ORDINALITY
                  AS l(instance_id, label, function_name, status, execution_count, output, created_at,
                       completed_at, next_cursor, ord)`,
          [q.status ?? null, q.limit, q.label ?? null, q.cursor ?? null],
        );
        return rows[0]!.page;
      } catch (err) {
        throw mapDbError(err, { '22023': [400, 'invalid_query'], '54000': [400, 'invalid_query'] }) ?? err;
      }
    });
    return c.json(page);
  });

  app.get('/v1/instances/:instance_id', async (c) => {
    const id = instanceId(c);
    const instance = await asRole(c, async (client) => {
      await requireInstance(client, id);
      const { rows } = await client.query<{ instance: unknown }>(
        `SELECT json_build_object(
                  'instance_id', info.instance_id, 'label', info.label, 'status', info.status,
                  'result', df.result($1)::json, 'output', info.output,
                  'created_at', i.created_at, 'completed_at', i.completed_at,
                  'nodes', (SELECT coalesce(json_agg(json_build_object(
                                'node_id', n.node_id, 'node_type', n.node_type, 'query', n.query,
                                'result_name', n.result_name, 'left_node', n.left_node, 'right_node', n.right_node,
                                'status', n.status, 'result', n.result::json, 'status_details', n.status_details::json,
                                'inferred_status', n.inferred_status,
                                'inferred_status_from_ancestor_id', n.inferred_status_from_ancestor_id,
                                'updated_at', n.updated_at) ORDER BY n.ord), '[]'::json)
                              FROM df.instance_nodes($1) WITH ORDINALITY
                                   AS n(node_id, node_type, query, result_name, left_node, right_node, status,
                                        result, status_details, inferred_status,
                                        inferred_status_from_ancestor_id, updated_at, ord))) AS instance
           FROM df.instance_info($1) AS info
           JOIN df.instances AS i ON i.id = info.instance_id`,
        [id],
      );
      return rows[0]!.instance;
    });
    return c.json(instance as object);
  });

  app.get('/v1/instances/:instance_id/explain', async (c) => {
    const id = instanceId(c);
    const text = await asRole(c, async (client) => {
      await requireInstance(client, id);
      return (await client.query<{ text: string }>('SELECT df.explain($1) AS text', [id])).rows[0]!.text;
    });
    return c.json({ text });
  });

  app.get('/v1/instances/:instance_id/events', async (c) => {
    const id = instanceId(c);
    const events = await asRole(c, async (client) => {
      await requireInstance(client, id);
      const { rows } = await client.query<{ events: unknown[] }>(
        `SELECT coalesce(json_agg(json_build_object(
                  'event_id', e.event_id, 'node_id', e.node_id, 'kind', e.kind, 'attempt', e.attempt,
                  'detail', e.detail, 'created_at', e.created_at) ORDER BY e.event_id), '[]'::json) AS events
           FROM df.instance_events($1) AS e`,
        [id],
      );
      return rows[0]!.events;
    });
    return c.json({ events });
  });

  app.post('/v1/instances/:instance_id/cancel', async (c) => {
    const id = instanceId(c);
    const body = parse(CancelBody, await jsonBody(c, {}), 'body');
    const message = await asRole(c, async (client) => {
      const status = await lockedStatus(client, id);
      if (status === 'completed' || status === 'failed') {
        throw new ApiError(409, 'instance_finished', `instance ${id} already ${status}`);
      }
      const { rows } = await client.query<{ m: string }>('SELECT df.cancel($1, $2) AS m', [id, body.reason ?? 'Cancelled by user']);
      return rows[0]!.m;
    });
    return c.json({ message });
  });

  const kit: RouteKit = { asRole, parse, jsonBody, ready };
  workflowRoutes(app, kit);
  scheduleRoutes(app, kit);
  resumeRoutes(app, kit);
  mountHooks(app, { ...kit, db, log, now: deps.now ?? Date.now });

  app.post('/v1/instances/:instance_id/signals/:name', async (c) => {
    const id = instanceId(c);
    const name = c.req.param('name');
    if (!SignalName.safeParse(name).success) throw new ApiError(400, 'invalid_signal_name', 'signal name must be 1 to 200 characters');
    const payload = await jsonBody(c, {});
    await asRole(c, async (client) => {
      const status = await lockedStatus(client, id);
      if (status === 'completed' || status === 'failed' || status === 'cancelled') {
        throw new ApiError(409, 'instance_finished', `instance ${id} is ${status}; it takes no more signals`);
      }
      await client.query('SELECT df.signal($1, $2, $3)', [id, name, JSON.stringify(payload)]);
    });
    ready(id);
    return c.json({ ok: true });
  });

  return app;
}

/** The instance's status, its row locked for the rest of the transaction (as df.cancel does); 404 when invisible. */
async function lockedStatus(client: DbClient, id: string): Promise<string> {
  const { rows } = await client.query<{ status: string }>('SELECT i.status FROM df.instances AS i WHERE i.id = $1 FOR UPDATE', [id]);
  if (!rows[0]) throw new ApiError(404, 'not_found', `instance ${id} not found`);
  return rows[0].status;
}
