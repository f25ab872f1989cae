/**
 * REST routes for named workflows (/v1/workflows): define versions, list, read, start by name, drop.
 * Each route is one transaction as the token's role, like the instance routes (app.ts); RLS keeps a role
 * to its own workflow names.
 */
import type { Context, Hono } from 'hono';
import type { DbClient } from '../engine/db.ts';
import { ApiError, mapDbError, WORKFLOW_ERRORS } from './errors.ts';
import { DefineWorkflowBody, StartWorkflowBody, WorkflowName } from './schemas.ts';
import { idempotent } from './idempotency.ts';
import { startHeaders } from './instances.ts';
import type { ApiEnv, RouteKit } from './kit.ts';

export function workflowRoutes(app: Hono<ApiEnv>, { asRole, parse, jsonBody, ready }: RouteKit): void {
  const nameParam = (c: Context<ApiEnv>) => {
    const name = c.req.param('name') ?? '';
    if (!WorkflowName.safeParse(name).success) throw new ApiError(404, 'not_found', `workflow "${name}" not found`);
    return name;
  };

  app.post('/v1/workflows', async (c) => {
    const body = parse(DefineWorkflowBody, await jsonBody(c), 'body');
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

  app.get('/v1/workflows', async (c) => {
    const workflows = await asRole(c, async (client) => {
      const { rows } = await client.query<{ list: unknown[] }>(
        `SELECT coalesce(json_agg(json_build_object('name', w.name, 'latest_version', w.version,
                  'description', w.description, 'created_at', w.created_at) ORDER BY w.name), '[]'::json) AS list
           FROM (SELECT DISTINCT ON (name) name, version, description, created_at
                   FROM df.workflows ORDER BY name, version DESC) AS w`,
      );
      return rows[0]!.list;
    });
    return c.json({ workflows });
  });

  app.get('/v1/workflows/:name', async (c) => {
    const name = nameParam(c);
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
    return c.json(workflow as object);
  });

  app.post('/v1/workflows/:name/instances', async (c) => {
    const name = nameParam(c);
    const body = parse(StartWorkflowBody, await jsonBody(c, {}), 'body');
    const answer = await idempotent(c, { asRole }, body, async (client) => ({ status: 201, body: await startByName(client, name, body) }));
    if (!answer.replayed) ready(answer.body.instance_id, c.var.log);
    return c.json(answer.body, answer.status, startHeaders(answer.body.instance_id, answer.replayed));
  });

  app.delete('/v1/workflows/:name', async (c) => {
    const name = nameParam(c);
    const removed = await asRole(c, async (client) => {
      const { rows } = await client.query<{ n: number }>('SELECT df.drop_workflow($1) AS n', [name]);
      return rows[0]!.n;
    });
    return c.json({ removed });
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
