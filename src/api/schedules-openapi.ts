/** OpenAPI entries for cron schedules (merged into openapi.ts), generated from the zod shapes in schedules.ts. */
import { authErrors, error, internal, json, schema } from './openapi-kit.ts';
import { AlterScheduleBody, CreateScheduleBody, Schedule, ScheduleList, ScheduleName, ScheduleWithFires } from './schedules.ts';

/** OpenAPI paths and component schemas for these routes (merged into openapi.ts). */
export function scheduleOpenApi(): { paths: Record<string, unknown>; schemas: Record<string, unknown> } {
  const nameParam = { name: 'name', in: 'path', required: true, description: 'Schedule name', schema: schema(ScheduleName, 'input') };
  const notFound = { 404: error('No such schedule, or it belongs to another role (`not_found`)') };
  const badBody = { 400: error('Body is not JSON (`invalid_json`) or does not match the schema (`invalid_body`)') };
  const bad = { ...badBody, 422: error('Bad cron, time zone or policy (`invalid_schedule`)') };
  const one = (description: string) => ({ description, content: json('Schedule') });
  return {
    schemas: {
      CreateScheduleRequest: schema(CreateScheduleBody, 'input'),
      AlterScheduleRequest: schema(AlterScheduleBody, 'input'),
      Schedule: schema(Schedule),
      ScheduleWithFires: schema(ScheduleWithFires),
      ScheduleList: schema(ScheduleList),
    },
    paths: {
      '/v1/schedules': {
        post: {
          operationId: 'createSchedule',
          summary: 'Create a cron schedule that starts a named workflow',
          requestBody: { required: true, content: json('CreateScheduleRequest') },
          responses: {
            201: { ...one('Created'), headers: { Location: { schema: { type: 'string' } } } },
            ...badBody,
            ...authErrors,
            409: error('The role already has a schedule of that name (`conflict`)'),
            422: error('Bad cron, time zone or policy (`invalid_schedule`), or no such workflow (`unknown_workflow`)'),
            ...internal,
          },
        },
        get: {
          operationId: 'listSchedules',
          summary: "The role's schedules with next and last fire times",
          responses: { 200: { description: 'Schedules by name', content: json('ScheduleList') }, ...authErrors, ...internal },
        },
      },
      '/v1/schedules/{name}': {
        get: {
          operationId: 'getSchedule',
          summary: 'A schedule and its newest 20 fires',
          parameters: [nameParam],
          responses: { 200: { description: 'The schedule', content: json('ScheduleWithFires') }, ...authErrors, ...notFound, ...internal },
        },
        patch: {
          operationId: 'alterSchedule',
          summary: 'Change workflow, cron, time zone, input or policies; a new cron or zone recomputes the next fire',
          parameters: [nameParam],
          requestBody: { required: true, content: json('AlterScheduleRequest') },
          responses: { 200: one('Changed'), ...bad, ...authErrors, ...notFound, ...internal },
        },
        delete: {
          operationId: 'dropSchedule',
          summary: 'Remove a schedule and its fire history (instances it started are unaffected)',
          parameters: [nameParam],
          responses: { 200: { description: 'Removed', content: json('Ok') }, ...authErrors, ...notFound, ...internal },
        },
      },
      '/v1/schedules/{name}/pause': {
        post: {
          operationId: 'pauseSchedule',
          summary: 'Stop firing until resumed',
          parameters: [nameParam],
          responses: { 200: one('Paused'), ...authErrors, ...notFound, ...internal },
        },
      },
      '/v1/schedules/{name}/resume': {
        post: {
          operationId: 'resumeSchedule',
          summary: 'Fire again from the next due time after now (fires skipped while paused are not caught up)',
          parameters: [nameParam],
          responses: { 200: one('Resumed'), ...authErrors, ...notFound, ...internal },
        },
      },
    },
  };
}
