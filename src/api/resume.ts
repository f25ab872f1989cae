/**
 * Resuming and restarting an instance (df.resume, df.restart; migrations/*_resume.sql):
 * POST /v1/instances/{instance_id}/resume runs a failed instance again from what failed (its completed
 * steps are not run again); POST /v1/instances/{instance_id}/restart starts a new instance of the same
 * graph. Only the instance's owner: another role's instance is a 404, like an unknown id.
 */
import { mapDbError, type ErrorStatus } from './errors.ts';
import type { ApiApp, RouteKit } from './kit.ts';
import * as r from './resume-openapi.ts';
import type { STATUSES } from './schemas.ts';

type Status = (typeof STATUSES)[number];

/** df.resume's refusals: not failed (PF020), its root row held by a worker for a moment (55P03). */
export const RESUME_ERRORS: Record<string, [ErrorStatus, string]> = {
  PF020: [409, 'not_failed'],
  '55P03': [409, 'busy'],
};

export function resumeRoutes(app: ApiApp, kit: RouteKit): void {
  app.openapi(r.resumeInstance, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const status = await kit.asRole(c, async (client) => {
      try {
        await client.query('SELECT df.resume($1)', [id]);
      } catch (err) {
        throw mapDbError(err, RESUME_ERRORS) ?? err;
      }
      return (await client.query<{ s: Status }>('SELECT df.status($1) AS s', [id])).rows[0]!.s;
    });
    kit.ready(id);
    return c.json({ instance_id: id, status }, 200);
  });

  app.openapi(r.restartInstance, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const started = await kit.asRole(c, async (client) => {
      const { rows } = await client.query<{ id: string; status: Status }>(
        'WITH r AS MATERIALIZED (SELECT df.restart($1) AS id) SELECT r.id, df.status(r.id) AS status FROM r',
        [id],
      );
      return rows[0]!;
    });
    kit.ready(started.id);
    return c.json({ instance_id: started.id, status: started.status }, 201, { Location: `/v1/instances/${started.id}` });
  });
}
