/**
 * REST routes for cron schedules (/v1/schedules): create, list, read (with recent fires), change, pause,
 * resume, drop. Each route is one transaction as the token's role and calls the SQL functions of
 * migrations/0012_schedules.sql, so validation (cron, time zone, policies) and RLS are the database's.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { DbClient } from '../engine/db.ts';
import type { ApiEnv, RouteKit } from './kit.ts';
import { ApiError, mapDbError, type ErrorStatus } from './errors.ts';

export const ScheduleName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'a name is 1-128 characters: letters, digits, and _ . : - (not first)');
const Missed = z.enum(['skip', 'catch_up_once']).describe("A due time seen more than 5 minutes late: 'skip' records it as missed; 'catch_up_once' starts one instance for it");
const Overlap = z.enum(['skip', 'allow']).describe("'skip': no new instance while the previous one is pending or running; 'allow': start anyway");
const Cron = z.string().min(1).max(1000).describe('Standard 5-field cron (minute hour day-of-month month day-of-week) or @daily & co.');
const TimeZone = z.string().min(1).max(100).describe('IANA time zone name; the cron fields are wall-clock time there');

export const CreateScheduleBody = z.strictObject({
  name: ScheduleName,
  workflow: z.string().min(1).max(128).describe('A named workflow (POST /v1/workflows)'),
  cron: Cron,
  timezone: TimeZone.optional().describe('Default UTC'),
  input: z.unknown().optional().describe('JSON input of every instance the schedule starts'),
  missed: Missed.optional(),
  overlap: Overlap.optional(),
});

export const AlterScheduleBody = z
  .strictObject({
    workflow: z.string().min(1).max(128).optional(),
    cron: Cron.optional(),
    timezone: TimeZone.optional(),
    input: z.unknown().optional().describe('null clears the input'),
    missed: Missed.optional(),
    overlap: Overlap.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' });

export const Schedule = z.object({
  name: z.string(),
  workflow: z.string(),
  cron: z.string(),
  timezone: z.string(),
  input: z.unknown(),
  missed: Missed,
  overlap: Overlap,
  paused: z.boolean(),
  next_fire_at: z.string().nullable().describe('Null when the cron never fires again'),
  last_fire_at: z.string().nullable().describe('Due time of the last fire that started an instance'),
  last_instance_id: z.string().nullable(),
  last_instance_status: z.string().nullable(),
  last_error: z.string().nullable(),
  last_error_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const ScheduleFire = z.object({
  fire_at: z.string(),
  outcome: z.enum(['started', 'skipped_overlap', 'missed', 'failed']),
  instance_id: z.string().nullable(),
  instance_status: z.string().nullable(),
  error: z.string().nullable(),
  fired_at: z.string(),
});
export const ScheduleWithFires = Schedule.extend({ fires: z.array(ScheduleFire).describe('The newest 20 fires') });
export const ScheduleList = z.object({ schedules: z.array(Schedule) });

/** SQLSTATE → API error for schedule writes: bad cron/zone/policy is the caller's schedule. */
const SCHEDULE_ERRORS: Record<string, [ErrorStatus, string]> = {
  '22023': [422, 'invalid_schedule'],
  '22004': [422, 'invalid_schedule'],
};

export function scheduleRoutes(app: Hono<ApiEnv>, { asRole, parse, jsonBody }: RouteKit): void {
  const nameParam = (c: Context<ApiEnv>) => {
    const name = c.req.param('name') ?? '';
    if (!ScheduleName.safeParse(name).success) throw new ApiError(404, 'not_found', `schedule "${name}" not found`);
    return name;
  };
  const run = async <T>(fn: () => Promise<T>, overrides: Record<string, [ErrorStatus, string]> = SCHEDULE_ERRORS): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw mapDbError(err, overrides) ?? err;
    }
  };

  app.post('/v1/schedules', async (c) => {
    const b = parse(CreateScheduleBody, await jsonBody(c), 'body');
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
    return c.json(schedule, 201, { Location: `/v1/schedules/${b.name}` });
  });

  app.get('/v1/schedules', async (c) => {
    const schedules = await asRole(c, async (client) => {
      const { rows } = await client.query<{ list: unknown[] }>(
        `SELECT coalesce(json_agg(to_json(s) ORDER BY s.name), '[]'::json) AS list FROM df.list_schedules() s`,
      );
      return rows[0]!.list;
    });
    return c.json({ schedules });
  });

  app.get('/v1/schedules/:name', async (c) => {
    const name = nameParam(c);
    const schedule = await asRole(c, async (client) => {
      const s = await read(client, name);
      const { rows } = await client.query<{ fires: unknown[] }>(
        `SELECT coalesce(json_agg(to_json(h) ORDER BY h.fire_at DESC), '[]'::json) AS fires FROM df.schedule_history($1, 20) h`,
        [name],
      );
      return { ...s, fires: rows[0]!.fires };
    });
    return c.json(schedule);
  });

  app.patch('/v1/schedules/:name', async (c) => {
    const name = nameParam(c);
    const b = parse(AlterScheduleBody, await jsonBody(c), 'body');
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
    return c.json(schedule);
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/v1/schedules/:name/${action}`, async (c) => {
      const name = nameParam(c);
      const schedule = await asRole(c, (client) =>
        run(async () => {
          await client.query(`SELECT df.${action}_schedule($1)`, [name]);
          return read(client, name);
        }),
      );
      return c.json(schedule);
    });
  }

  app.delete('/v1/schedules/:name', async (c) => {
    const name = nameParam(c);
    await asRole(c, (client) => run(() => client.query('SELECT df.drop_schedule($1)', [name])));
    return c.json({ ok: true as const });
  });
}

async function read(client: DbClient, name: string): Promise<Record<string, unknown>> {
  const { rows } = await client.query<{ s: Record<string, unknown> }>('SELECT to_json(s) AS s FROM df.list_schedules() s WHERE s.name = $1', [name]);
  if (!rows[0]) throw new ApiError(404, 'not_found', `schedule "${name}" not found`);
  return rows[0].s;
}
