/**
 * Resuming and restarting an instance (df.resume, df.restart; migrations/*_resume.sql):
 * POST /v1/instances/{instance_id}/resume runs a failed instance again from what failed (its completed
 * steps are not run again); POST /v1/instances/{instance_id}/restart starts a new instance of the same
 * graph. Only the instance's owner: another role's instance is a 404, like an unknown id.
 */
import type { Context, Hono } from 'hono';
import { ApiError, mapDbError, type ErrorStatus } from './errors.ts';
import type { ApiEnv, RouteKit } from './kit.ts';
import { InstanceId } from './schemas.ts';

/** df.resume's refusals: not failed (PF020), its root row held by a worker for a moment (55P03). */
export const RESUME_ERRORS: Record<string, [ErrorStatus, string]> = {
  PF020: [409, 'not_failed'],
  '55P03': [409, 'busy'],
};

export function resumeRoutes(app: Hono<ApiEnv>, kit: RouteKit): void {
  const idOf = (c: Context<ApiEnv>) => {
    const id = c.req.param('instance_id') ?? '';
    if (!InstanceId.safeParse(id).success) throw new ApiError(404, 'not_found', `instance ${id} not found`);
    return id;
  };

  app.post('/v1/instances/:instance_id/resume', async (c) => {
    const id = idOf(c);
    const status = await kit.asRole(c, async (client) => {
      try {
        await client.query('SELECT df.resume($1)', [id]);
      } catch (err) {
        throw mapDbError(err, RESUME_ERRORS) ?? err;
      }
      return (await client.query<{ s: string }>('SELECT df.status($1) AS s', [id])).rows[0]!.s;
    });
    kit.ready(id);
    return c.json({ instance_id: id, status });
  });

  app.post('/v1/instances/:instance_id/restart', async (c) => {
    const id = idOf(c);
    const started = await kit.asRole(c, async (client) => {
      const { rows } = await client.query<{ id: string; status: string }>(
        'WITH r AS MATERIALIZED (SELECT df.restart($1) AS id) SELECT r.id, df.status(r.id) AS status FROM r',
        [id],
      );
      return rows[0]!;
    });
    kit.ready(started.id);
    return c.json({ instance_id: started.id, status: started.status }, 201, { Location: `/v1/instances/${started.id}` });
  });
}
