/**
 * REST routes for instances (/v1/instances): start (with Idempotency-Key), list, read (with `?wait=`
 * long-poll), explain, events, cancel, signal. Each database step is one transaction as the token's role.
 *
 * An instance's `result` is JSON (the root result once completed, else null) and a failed instance has a
 * structured `error`: the first final failure recorded in df.events (its SQLSTATE, detail and hint when
 * the engine kept them: step-policy.ts failedDetail), else the instance's output text.
 */
import type { Context } from 'hono';
import type { DbClient } from '../engine/db.ts';
import { ApiError, errorBody, mapDbError, WORKFLOW_ERRORS } from './errors.ts';
import { idempotent } from './idempotency.ts';
import * as r from './instances-openapi.ts';
import { defaultHook, type ApiApp, type ApiEnv, type RouteKit } from './kit.ts';
import { decodeCursor, pageOf } from './paging.ts';
import { InstanceId, type STATUSES } from './schemas.ts';

type InstanceStatus = (typeof STATUSES)[number];

export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

/**
 * Columns every instance answer shares, over `i` (df.instances), `r` (its root node's result once
 * completed) and `f` (its first `failed` event), both joined by OUTCOME. started_at and finished_at
 * are recorded when they happen (migrations/0033_instance_times.sql).
 */
const COMMON = `'result', r.result,
                'failure', CASE WHEN i.status = 'failed' THEN json_build_object('node_id', f.node_id, 'attempt', f.attempt, 'detail', f.detail) END,
                'created_at', i.created_at,
                'started_at', i.started_at,
                'finished_at', i.finished_at,
                'completed_at', i.completed_at`;
// Both lateral subqueries test the instance's status inside, so for every other instance they are a
// one-time filter that reads nothing (a join condition would be applied after running them; the LIMITs
// keep them from being flattened into joins). The root
// result is df.result's join, inline: a function call per row cost as much as the rest of a list page.
const OUTCOME = `LEFT JOIN LATERAL (SELECT r.result FROM df.nodes AS r
                                          WHERE i.status = 'completed' AND r.instance_id = i.id AND r.id = i.root_node
                                            AND r.status = 'completed' LIMIT 1) AS r ON true
                      LEFT JOIN LATERAL (SELECT e.node_id, e.attempt, e.detail FROM df.events e
                                          WHERE i.status = 'failed' AND e.instance_id = i.id AND e.kind = 'failed'
                                          ORDER BY e.id LIMIT 1) AS f ON true`;

/**
 * A page of GET /v1/instances as one JSON value: df.list_instances($1 status, $2 limit, $3 label,
 * $4 cursor), each row joined back to its instance by key for the columns the list lacks. The LIMITs
 * keep the lateral subqueries from being flattened into joins, which the planner may hash over a whole
 * table when it is small enough: a page's cost stays that of its rows, whatever the history's size.
 */
export const LIST_INSTANCES_SQL = `SELECT json_build_object(
           'instances', coalesce(json_agg(json_build_object(
               'instance_id', l.instance_id, 'label', l.label, 'status', l.status,
               'execution_count', l.execution_count, 'output', l.output, ${COMMON}) ORDER BY l.ord), '[]'::json),
           'next_cursor', max(l.next_cursor)) AS page
    FROM df.list_instances($1::text, $2::integer, $3::text, $4::text) WITH ORDINALITY
         AS l(instance_id, label, function_name, status, execution_count, output, created_at,
              completed_at, next_cursor, ord)
    CROSS JOIN LATERAL (SELECT i.id, i.status, i.root_node, i.created_at, i.started_at, i.finished_at, i.completed_at
                          FROM df.instances AS i WHERE i.id = l.instance_id LIMIT 1) AS i
    ${OUTCOME}`;

export interface InstanceError {
  code: string;
  message: string;
  detail: string | null;
  hint: string | null;
  node_id: string | null;
  attempt: number | null;
}

type Failure = { node_id: string | null; attempt: number | null; detail: string | null } | null;

/** The structured error of a failed instance from its first failed event (or its output text). */
export function instanceError(status: string, output: string | null, failure: Failure): InstanceError | null {
  if (status !== 'failed') return null;
  const base = { detail: null, hint: null, node_id: failure?.node_id ?? null, attempt: failure?.attempt ?? null };
  const text = failure?.detail ?? null;
  if (text === null) return { ...base, code: 'workflow_failed', message: output ?? 'the instance failed' };
  const pg = parseDetail(text);
  if (!pg) return { ...base, code: 'step_failed', message: text };
  return { ...base, code: pg.code, message: pg.message, detail: pg.detail ?? null, hint: pg.hint ?? null };
}

function parseDetail(text: string): { code: string; message: string; detail?: string; hint?: string } | null {
  if (!text.startsWith('{')) return null;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    return typeof v.code === 'string' && typeof v.message === 'string' ? (v as never) : null;
  } catch {
    return null;
  }
}

/** Replaces the raw `failure` column with the structured `error`. */
function shape<T extends { status: string; output: string | null; failure?: Failure }>(row: T): Omit<T, 'failure'> & { error: InstanceError | null } {
  const { failure, ...rest } = row;
  return { ...rest, error: instanceError(row.status, row.output, failure ?? null) };
}

/** The instance's summary (no nodes), or null when it is unknown or another role's. */
export async function instanceSummary(client: DbClient, id: string): Promise<Record<string, unknown> | null> {
  const { rows } = await client.query<{ instance: any }>(
    `SELECT json_build_object('instance_id', i.id, 'label', i.label, 'status', i.status, 'output', i.output, ${COMMON}) AS instance
       FROM df.instances AS i ${OUTCOME} WHERE i.id = $1`,
    [id],
  );
  return rows[0] ? shape(rows[0].instance) : null;
}

/** The instance as JSON, or 404 (unknown and invisible look the same). */
export async function requireInstance(client: DbClient, id: string): Promise<void> {
  const { rows } = await client.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM df.instance_info($1)) AS found', [id]);
  if (!rows[0]?.found) throw new ApiError(404, 'not_found', `instance ${id} not found`);
}

export function instanceRoutes(app: ApiApp, kit: RouteKit, opts: { maxWaitSeconds: number }): void {
  const { asRole, ready } = kit;

  app.openapi(r.startInstance, async (c) => {
    const body = c.req.valid('json');
    const answer = await idempotent(c, kit, body, async (client) => {
      const fut = body.workflow !== undefined ? 'df._eval_dsl($1)' : '$1';
      const arg = body.workflow ?? JSON.stringify(body.graph);
      try {
        const { rows } = await client.query<{ instance_id: string; status: InstanceStatus }>(
          `WITH s AS MATERIALIZED (SELECT df.start(${fut}, $2) AS id) SELECT s.id AS instance_id, df.status(s.id) AS status FROM s`,
          [arg, body.label ?? null],
        );
        return { status: 201, body: rows[0]! };
      } catch (err) {
        throw mapDbError(err, WORKFLOW_ERRORS) ?? err;
      }
    });
    if (!answer.replayed) ready(answer.body.instance_id, c.var.log);
    return c.json(answer.body, 201, startHeaders(answer.body.instance_id, answer.replayed));
  });

  app.openapi(r.listInstances, async (c) => {
    const q = c.req.valid('query');
    const page = await asRole(c, async (client) => {
      try {
        const { rows } = await client.query<{ page: { instances: any[]; next_cursor: string | null } }>(
          LIST_INSTANCES_SQL,
          [q.status ?? null, q.limit, q.label ?? null, q.cursor ?? null],
        );
        return rows[0]!.page;
      } catch (err) {
        throw mapDbError(err, { '22023': [400, 'invalid_query'], '54000': [400, 'invalid_query'] }) ?? err;
      }
    });
    return c.json({ instances: page.instances.map(shape), next_cursor: page.next_cursor } as never, 200);
  });

  const readInstance = (c: Context<ApiEnv>, id: string) =>
    asRole(c, async (client) => {
      await requireInstance(client, id);
      const { rows } = await client.query<{ instance: any }>(
        `SELECT json_build_object(
                  'instance_id', info.instance_id, 'label', info.label, 'status', info.status,
                  'output', info.output, ${COMMON},
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
           JOIN df.instances AS i ON i.id = info.instance_id
           ${OUTCOME}`,
        [id],
      );
      return shape(rows[0]!.instance);
    });

  app.openapi(r.getInstance, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const { wait } = c.req.valid('query');
    // Long-poll: re-read with a growing pause (each read its own short transaction) until the
    // instance is finished or the wait (capped at maxWaitSeconds) is over.
    const deadline = Date.now() + Math.min(wait ?? 0, opts.maxWaitSeconds) * 1000;
    let pause = 50;
    for (;;) {
      const instance = await readInstance(c, id);
      const left = deadline - Date.now();
      if (TERMINAL.has(instance.status) || left <= 0) return c.json(instance as never, 200);
      await new Promise((res) => setTimeout(res, Math.min(pause, left)));
      pause = Math.min(1000, pause * 2);
    }
  });

  app.openapi(r.explainInstance, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const text = await asRole(c, async (client) => {
      await requireInstance(client, id);
      return (await client.query<{ text: string }>('SELECT df.explain($1) AS text', [id])).rows[0]!.text;
    });
    return c.json({ text }, 200);
  });

  app.openapi(r.instanceEvents, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const q = c.req.valid('query');
    const after = decodeCursor('events', q.cursor, 1)?.[0];
    const page = await asRole(c, async (client) => {
      await requireInstance(client, id);
      return pageOf(await eventsAfter(client, id, after === undefined ? 0 : Number(after), q.limit + 1), q.limit, 'events', (e) => [e.event_id]);
    });
    return c.json({ events: page.rows, next_cursor: page.next_cursor }, 200);
  });

  app.openapi(r.cancelInstance, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const body = c.req.valid('json');
    const message = await asRole(c, async (client) => {
      const status = await lockedStatus(client, id);
      if (status === 'completed' || status === 'failed') {
        throw new ApiError(409, 'instance_finished', `instance ${id} already ${status}`);
      }
      const { rows } = await client.query<{ m: string }>('SELECT df.cancel($1, $2) AS m', [id, body.reason ?? 'Cancelled by user']);
      return rows[0]!.m;
    });
    return c.json({ message }, 200);
  });

  app.openapi(
    r.signalInstance,
    async (c) => {
      const { instance_id: id, name } = c.req.valid('param');
      const payload = c.req.valid('json');
      await asRole(c, async (client) => {
        const status = await lockedStatus(client, id);
        if (TERMINAL.has(status)) throw new ApiError(409, 'instance_finished', `instance ${id} is ${status}; it takes no more signals`);
        await client.query('SELECT df.signal($1, $2, $3)', [id, name, JSON.stringify(payload ?? {})]);
      });
      ready(id, c.var.log);
      return c.json({ ok: true as const }, 200);
    },
    (result, c) => {
      // A malformed instance id is a 404 like an unknown one; a bad signal name is the caller's 400.
      if (!result.success && result.target === 'param' && InstanceId.safeParse(c.req.param('instance_id')).success) {
        return c.json(errorBody('invalid_signal_name', 'signal name must be 1 to 200 characters'), 400) as never;
      }
      return defaultHook(result, c) as never;
    },
  );
}

export interface EventRow {
  event_id: number;
  node_id: string | null;
  kind: string;
  attempt: number | null;
  detail: string | null;
  created_at: string;
}

/**
 * Up to `limit` events of the instance with an event_id above `after`, oldest first: df.instance_events'
 * columns, read from df.events directly so the keyset uses events_instance_idx (RLS applies the same).
 */
export async function eventsAfter(client: DbClient, id: string, after: number, limit: number): Promise<EventRow[]> {
  const { rows } = await client.query<{ events: EventRow[] }>(
    `SELECT coalesce(json_agg(json_build_object(
              'event_id', e.event_id, 'node_id', e.node_id, 'kind', e.kind, 'attempt', e.attempt,
              'detail', e.detail, 'created_at', e.created_at) ORDER BY e.event_id), '[]'::json) AS events
       FROM (SELECT x.id AS event_id, x.node_id, x.kind, x.attempt, x.detail, x.created_at
               FROM df.events AS x WHERE x.instance_id = $1 AND x.id > $2 ORDER BY x.id LIMIT $3) AS e`,
    [id, after, limit],
  );
  return rows[0]!.events;
}

/** Headers of a start's answer: where the instance is, and whether this is a stored answer replayed. */
export function startHeaders(instanceId: string, replayed: boolean): Record<string, string> {
  return { Location: `/v1/instances/${instanceId}`, ...(replayed ? { 'Idempotent-Replayed': 'true' } : {}) };
}

/** The instance's status, its row locked for the rest of the transaction (as df.cancel does); 404 when invisible. */
async function lockedStatus(client: DbClient, id: string): Promise<string> {
  const { rows } = await client.query<{ status: string }>('SELECT i.status FROM df.instances AS i WHERE i.id = $1 FOR UPDATE', [id]);
  if (!rows[0]) throw new ApiError(404, 'not_found', `instance ${id} not found`);
  return rows[0].status;
}
