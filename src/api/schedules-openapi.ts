/**
 * The cron-schedule routes' shapes (zod) and definitions (createRoute), implemented by schedules.ts:
 * one definition validates requests and makes the OpenAPI document.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { badBody, badPage, body, error, json, locationHeader, notFound, ok, routeErrors } from './openapi-kit.ts';
import { NextCursor, Ok, PageQuery } from './schemas.ts';

export const ScheduleName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'a name is 1-128 characters: letters, digits, and _ . : - (not first)');
const Missed = z.enum(['skip', 'catch_up_once']).describe("A due time seen more than 5 minutes late: 'skip' records it as missed; 'catch_up_once' starts one instance for it");
const Overlap = z.enum(['skip', 'allow']).describe("'skip': no new instance while the previous one is pending or running; 'allow': start anyway");
const Cron = z.string().min(1).max(1000).describe('Standard 5-field cron (minute hour day-of-month month day-of-week) or @daily & co.');
const TimeZone = z.string().min(1).max(100).describe('IANA time zone name; the cron fields are wall-clock time there');

export const CreateScheduleBody = z
  .strictObject({
    name: ScheduleName,
    workflow: z.string().min(1).max(128).describe('A named workflow (POST /v1/workflows)'),
    cron: Cron,
    timezone: TimeZone.optional().describe('Default UTC'),
    input: z.unknown().optional().describe('JSON input of every instance the schedule starts'),
    missed: Missed.optional(),
    overlap: Overlap.optional(),
  })
  .openapi('CreateScheduleRequest');

export const AlterScheduleBody = z
  .strictObject({
    workflow: z.string().min(1).max(128).optional(),
    cron: Cron.optional(),
    timezone: TimeZone.optional(),
    input: z.unknown().optional().describe('null clears the input'),
    missed: Missed.optional(),
    overlap: Overlap.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' })
  .openapi('AlterScheduleRequest');

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
}).openapi('Schedule');
export const ScheduleFire = z.object({
  fire_at: z.string(),
  outcome: z.enum(['started', 'skipped_overlap', 'missed', 'failed']),
  instance_id: z.string().nullable(),
  instance_status: z.string().nullable(),
  error: z.string().nullable(),
  fired_at: z.string(),
});
export const ScheduleWithFires = Schedule.extend({ fires: z.array(ScheduleFire).describe('The newest 20 fires') }).openapi('ScheduleWithFires');
export const ScheduleList = z.object({ schedules: z.array(Schedule), next_cursor: NextCursor }).openapi('ScheduleList');


const Params = z.object({ name: ScheduleName.openapi({ param: { name: 'name', in: 'path' }, description: 'Schedule name' }) });
const scheduleNotFound = notFound('schedule');
const invalid = { 422: error('Bad cron, time zone or policy (`invalid_schedule`)') };
const one = (description: string) => ok(Schedule, description);

export const createSchedule = createRoute({
  method: 'post',
  path: '/v1/schedules',
  operationId: 'createSchedule',
  summary: 'Create a cron schedule that starts a named workflow',
  request: { body: body(CreateScheduleBody) },
  responses: {
    201: { description: 'Created', content: json(Schedule), headers: locationHeader },
    409: error('The role already has a schedule of that name (`conflict`)'),
    422: error('Bad cron, time zone or policy (`invalid_schedule`), or no such workflow (`unknown_workflow`)'),
    ...routeErrors(badBody),
  },
});

export const listSchedules = createRoute({
  method: 'get',
  path: '/v1/schedules',
  operationId: 'listSchedules',
  summary: "The role's schedules with next and last fire times, by name, a page at a time",
  request: { query: PageQuery },
  responses: {
    200: ok(ScheduleList, 'One page of schedules by name; pass next_cursor as cursor for the next (null on the last page)'),
    ...routeErrors(badPage),
  },
});

export const getSchedule = createRoute({
  method: 'get',
  path: '/v1/schedules/{name}',
  operationId: 'getSchedule',
  summary: 'A schedule and its newest 20 fires',
  request: { params: Params },
  responses: { 200: ok(ScheduleWithFires, 'The schedule'), ...routeErrors(scheduleNotFound) },
});

export const alterSchedule = createRoute({
  method: 'patch',
  path: '/v1/schedules/{name}',
  operationId: 'alterSchedule',
  summary: 'Change workflow, cron, time zone, input or policies; a new cron or zone recomputes the next fire',
  request: { params: Params, body: body(AlterScheduleBody) },
  responses: { 200: one('Changed'), ...routeErrors(badBody, invalid, scheduleNotFound) },
});

export const dropSchedule = createRoute({
  method: 'delete',
  path: '/v1/schedules/{name}',
  operationId: 'dropSchedule',
  summary: 'Remove a schedule and its fire history (instances it started are unaffected)',
  request: { params: Params },
  responses: { 200: ok(Ok, 'Removed'), ...routeErrors(scheduleNotFound) },
});

export const pauseSchedule = createRoute({
  method: 'post',
  path: '/v1/schedules/{name}/pause',
  operationId: 'pauseSchedule',
  summary: 'Stop firing until resumed',
  request: { params: Params },
  responses: { 200: one('Paused'), ...routeErrors(scheduleNotFound) },
});

export const resumeSchedule = createRoute({
  method: 'post',
  path: '/v1/schedules/{name}/resume',
  operationId: 'resumeSchedule',
  summary: 'Fire again from the next due time after now (fires skipped while paused are not caught up)',
  request: { params: Params },
  responses: { 200: one('Resumed'), ...routeErrors(scheduleNotFound) },
});
