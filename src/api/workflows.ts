/**
 * REST routes for named workflows (/v1/workflows): define versions, list, read, start by name, drop.
 * Each route is one transaction as the token's role, like the instance routes (app.ts); RLS keeps a role
 * to its own workflow names.
 */
import type { DbClient } from '../engine/db.ts';
import { ApiError, mapDbError, WORKFLOW_ERRORS } from './errors.ts';
import { idempotent } from './idempotency.ts';
import { startHeaders } from './instances.ts';
import type { ApiApp, RouteKit } from './kit.ts';
import { decodeCursor, pageOf } from './paging.ts';
import * as r from './workflows-openapi.ts';

export function workflowRoutes(app: ApiApp, { asRole, ready }: RouteKit): void {
  app.openapi(r.defineWorkflow, async (c) => {
    const body = c.req.valid('json');
    const version = await asRole(c, async (client) => {
      const fut = body.workflow !== undefined ? 'df._eval_dsl($2)' : '$2';
      try {
        const { rows } = await client.query<{ v: number }>(`SELECT df.define_workflow($1, ${fut}, $3) AS v`, [
          body.name,
          body.workflow ?? JSON.stringify(body.graph),
          body.description ?? null,
        ]);
        return rows[0]!.v;
      } catch (err) {
        throw mapDbError(err, WORKFLOW_ERRORS) ?? err;
      }
    });
    return c.json({ name: body.name, version }, 201, { Location: `/v1/workflows/${body.name}` });
  });

  // Keyset on the name (unique among a role's workflows), in byte order (COLLATE "C") so the cursor's
  // comparison and the order agree whatever the database's collation.
  app.openapi(r.listWorkflows, async (c) => {
    const q = c.req.valid('query');
    const after = decodeCursor('workflows', q.cursor, 1)?.[0] ?? null;
    const page = await asRole(c, async (client) => {
      const { rows } = await client.query<{ list: { name: string; latest_version: number; description: string | null; created_at: string }[] }>(
        `SELECT coalesce(json_agg(json_build_object('name', w.name, 'latest_version', w.version,
                  'description', w.description, 'created_at', w.created_at) ORDER BY w.name COLLATE "C"), '[]'::json) AS list
           FROM (SELECT DISTINCT ON (name COLLATE "C") name, version, description, created_at
                   FROM df.workflows WHERE $1::text IS NULL OR name COLLATE "C" > $1
                  ORDER BY name COLLATE "C", version DESC LIMIT $2) AS w`,
        [after, q.limit + 1],
      );
      return pageOf(rows[0]!.list, q.limit, 'workflows', (w) => [w.name]);
    });
    return c.json({ workflows: page.rows, next_cursor: page.next_cursor }, 200);
  });

  app.openapi(r.getWorkflow, async (c) => {
    const { name } = c.req.valid('param');
    const workflow = await asRole(c, async (client) => {
      const { rows } = await client.query<{ w: unknown }>(
        `SELECT json_build_object(
                  'name', $1::text,
                  'latest_version', max(w.version),
                  'graph', (SELECT l.graph::json FROM df.workflows l WHERE l.name = $1 ORDER BY l.version DESC LIMIT 1),
                  'versions', json_agg(json_build_object('version', w.version, 'description', w.description,
                                                         'created_at', w.created_at) ORDER BY w.version)) AS w
           FROM df.workflows w WHERE w.name = $1 HAVING count(*) > 0`,
        [name],
      );
      if (!rows[0]) throw new ApiError(404, 'not_found', `workflow "${name}" not found`);
      return rows[0].w;
    });
    return c.json(workflow as never, 200);
  });

  app.openapi(r.startWorkflow, async (c) => {
    const { name } = c.req.valid('param');
    const body = c.req.valid('json');
    const answer = await idempotent(c, { asRole }, body, async (client) => ({ status: 201, body: await startByName(client, name, body) }));
    if (!answer.replayed) ready(answer.body.instance_id, c.var.log);
    return c.json(answer.body as never, 201, startHeaders(answer.body.instance_id, answer.replayed));
  });

  app.openapi(r.dropWorkflow, async (c) => {
    const { name } = c.req.valid('param');
    const removed = await asRole(c, async (client) => {
      const { rows } = await client.query<{ n: number }>('SELECT df.drop_workflow($1) AS n', [name]);
      return rows[0]!.n;
    });
    return c.json({ removed }, 200);
  });
}

/** Starts a named workflow in the caller's transaction; the version actually started is returned too. */
export async function startByName(
  client: DbClient,
  name: string,
  opts: { input?: unknown; label?: string; version?: number },
): Promise<{ instance_id: string; status: string; version: number }> {
  try {
    const { rows } = await client.query<{ instance_id: string; status: string; version: number }>(
      `WITH s AS MATERIALIZED (SELECT df.start_workflow($1, $2::jsonb, $3, $4) AS id)
       SELECT s.id AS instance_id, df.status(s.id) AS status,
              (SELECT max(w.version) FROM df.workflows w WHERE w.name = $1 AND ($4::integer IS NULL OR w.version = $4)) AS version
         FROM s`,
      [name, opts.input === undefined ? null : JSON.stringify(opts.input), opts.label ?? null, opts.version ?? null],
    );
    return rows[0]!;
  } catch (err) {
    throw mapDbError(err, WORKFLOW_ERRORS) ?? err;
  }
}
