/**
 * REST routes for cron schedules (/v1/schedules): create, list, read (with recent fires), change, pause,
 * resume, drop. Each route is one transaction as the token's role and calls the SQL functions of
 * migrations/0012_schedules.sql, so validation (cron, time zone, policies) and RLS are the database's.
 */
import type { DbClient } from '../engine/db.ts';
import type { ApiApp, RouteKit } from './kit.ts';
import { ApiError, mapDbError, type ErrorStatus } from './errors.ts';
import { decodeCursor, pageOf } from './paging.ts';
import * as r from './schedules-openapi.ts';

/** SQLSTATE → API error for schedule writes: bad cron/zone/policy is the caller's schedule. */
const SCHEDULE_ERRORS: Record<string, [ErrorStatus, string]> = {
  '22023': [422, 'invalid_schedule'],
  '22004': [422, 'invalid_schedule'],
};

export function scheduleRoutes(app: ApiApp, { asRole }: RouteKit): void {
  const run = async <T>(fn: () => Promise<T>, overrides: Record<string, [ErrorStatus, string]> = SCHEDULE_ERRORS): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw mapDbError(err, overrides) ?? err;
    }
  };

  app.openapi(r.createSchedule, async (c) => {
    const b = c.req.valid('json');
    const schedule = await asRole(c, (client) =>
      run(async () => {
        await client.query('SELECT df.create_schedule($1, $2, $3, $4, $5::jsonb, $6, $7)', [
          b.name,
          b.workflow,
          b.cron,
          b.timezone ?? 'UTC',
          b.input === undefined ? null : JSON.stringify(b.input),
          b.missed ?? 'skip',
          b.overlap ?? 'skip',
        ]);
        return read(client, b.name);
      }, { ...SCHEDULE_ERRORS, P0002: [422, 'unknown_workflow'] }),
    );
    return c.json(schedule as never, 201, { Location: `/v1/schedules/${b.name}` });
  });

  // Keyset on the name (unique among a role's schedules), in byte order as the cursor compares it.
  app.openapi(r.listSchedules, async (c) => {
    const q = c.req.valid('query');
    const after = decodeCursor('schedules', q.cursor, 1)?.[0] ?? null;
    const page = await asRole(c, async (client) => {
      const { rows } = await client.query<{ list: { name: string }[] }>(
        `SELECT coalesce(json_agg(to_json(s) ORDER BY s.name COLLATE "C"), '[]'::json) AS list
           FROM (SELECT * FROM df.list_schedules() AS x WHERE $1::text IS NULL OR x.name COLLATE "C" > $1
                  ORDER BY x.name COLLATE "C" LIMIT $2) AS s`,
        [after, q.limit + 1],
      );
      return pageOf(rows[0]!.list, q.limit, 'schedules', (s) => [s.name]);
    });
    return c.json({ schedules: page.rows, next_cursor: page.next_cursor } as never, 200);
  });

  app.openapi(r.getSchedule, async (c) => {
    const { name } = c.req.valid('param');
    const schedule = await asRole(c, async (client) => {
      const s = await read(client, name);
      const { rows } = await client.query<{ fires: unknown[] }>(
        `SELECT coalesce(json_agg(to_json(h) ORDER BY h.fire_at DESC), '[]'::json) AS fires FROM df.schedule_history($1, 20) h`,
        [name],
      );
      return { ...s, fires: rows[0]!.fires };
    });
    return c.json(schedule as never, 200);
  });

  app.openapi(r.alterSchedule, async (c) => {
    const { name } = c.req.valid('param');
    const b = c.req.valid('json');
    const schedule = await asRole(c, (client) =>
      run(async () => {
        await client.query('SELECT df.alter_schedule($1, $2, $3, $4::jsonb, $5, $6, $7)', [
          name,
          b.cron ?? null,
          b.timezone ?? null,
          // JSON null clears the input (df.alter_schedule reads 'null'::jsonb that way).
          b.input === undefined ? null : JSON.stringify(b.input),
          b.missed ?? null,
          b.overlap ?? null,
          b.workflow ?? null,
        ]);
        return read(client, name);
      }, { ...SCHEDULE_ERRORS, P0002: [404, 'not_found'] }),
    );
    return c.json(schedule as never, 200);
  });

  for (const [action, route] of [['pause', r.pauseSchedule], ['resume', r.resumeSchedule]] as const) {
    app.openapi(route, async (c) => {
      const { name } = c.req.valid('param');
      const schedule = await asRole(c, (client) =>
        run(async () => {
          await client.query(`SELECT df.${action}_schedule($1)`, [name]);
          return read(client, name);
        }),
      );
      return c.json(schedule as never, 200);
    });
  }

  app.openapi(r.dropSchedule, async (c) => {
    const { name } = c.req.valid('param');
    await asRole(c, (client) => run(() => client.query('SELECT df.drop_schedule($1)', [name])));
    return c.json({ ok: true as const }, 200);
  });
}

async function read(client: DbClient, name: string): Promise<Record<string, unknown>> {
  const { rows } = await client.query<{ s: Record<string, unknown> }>('SELECT to_json(s) AS s FROM df.list_schedules() s WHERE s.name = $1', [name]);
  if (!rows[0]) throw new ApiError(404, 'not_found', `schedule "${name}" not found`);
  return rows[0].s;
}
