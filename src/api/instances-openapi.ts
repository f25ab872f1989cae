/**
 * The instance routes' definitions (createRoute): paths, parameters, bodies and answers. instances.ts
 * implements them with app.openapi; the same objects validate requests and make the OpenAPI document.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { badBody, badPage, badParam, body, error, json, locationHeader, notFound, ok, routeErrors, tooLarge } from './openapi-kit.ts';
import * as s from './schemas.ts';

export const IdempotencyHeaders = z.object({
  'Idempotency-Key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/)
    .optional()
    .openapi({
      param: { name: 'Idempotency-Key', in: 'header' },
      description:
        'For 24 hours a repeat of this start with the same key (same role) returns the first answer (header `Idempotent-Replayed: true`) instead of starting again; the same key with a different request is a 422 `idempotency_key_reused`. 1-255 printable ASCII characters.',
    }),
});
export const startHeaders = {
  ...locationHeader,
  'Idempotent-Replayed': { description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key', schema: { type: 'string' as const } },
};
export const keyErrors = {
  422: error("The workflow is not valid (`invalid_workflow`; the message is the database's), or the Idempotency-Key was used for a different request (`idempotency_key_reused`)"),
};
const instanceNotFound = notFound('instance');

export const startInstance = createRoute({
  method: 'post',
  path: '/v1/instances',
  operationId: 'startInstance',
  summary: 'Start a workflow from DSL text or graph JSON',
  request: { headers: IdempotencyHeaders, body: body(s.StartBody) },
  responses: {
    201: { description: 'Started (or the stored answer replayed)', content: json(s.Started), headers: startHeaders },
    400: error('Body is not JSON (`invalid_json`), does not match the schema (`invalid_body`), or a malformed Idempotency-Key (`invalid_idempotency_key`)'),
    415: error('Content-Type is not application/json (`unsupported_media_type`)'),
    ...routeErrors(tooLarge, keyErrors),
  },
});

export const listInstances = createRoute({
  method: 'get',
  path: '/v1/instances',
  operationId: 'listInstances',
  summary: 'List instances, newest first, with cursor pagination',
  request: { query: s.ListQuery },
  responses: {
    200: ok(s.InstanceList, 'One page; pass next_cursor as cursor for the next (null on the last page)'),
    400: error('Bad query parameter or cursor (`invalid_query`)'),
    ...routeErrors(),
  },
});

export const getInstance = createRoute({
  method: 'get',
  path: '/v1/instances/{instance_id}',
  operationId: 'getInstance',
  summary: 'Status, result, error, timestamps and nodes of one instance; `?wait=` long-polls until it finishes',
  request: { params: s.InstanceParams, query: s.WaitQuery },
  responses: {
    200: ok(s.Instance, 'The instance (still unfinished when the wait ran out)'),
    ...routeErrors(badParam, instanceNotFound),
  },
});

export const explainInstance = createRoute({
  method: 'get',
  path: '/v1/instances/{instance_id}/explain',
  operationId: 'explainInstance',
  summary: 'The instance graph as text with per-node status markers (df.explain)',
  request: { params: s.InstanceParams },
  responses: { 200: ok(s.Explain, 'Explain text'), ...routeErrors(instanceNotFound) },
});

export const instanceEvents = createRoute({
  method: 'get',
  path: '/v1/instances/{instance_id}/events',
  operationId: 'instanceEvents',
  summary: 'History of the instance, oldest first, a page at a time: claims, attempts, retries, failures (df.instance_events)',
  request: { params: s.InstanceParams, query: s.PageQuery },
  responses: {
    200: ok(s.Events, 'One page of events, oldest first; pass next_cursor as cursor for the next (null on the last page)'),
    ...routeErrors(badPage, instanceNotFound),
  },
});

export const StreamQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional().describe('Send only events with a larger event_id (the `Last-Event-ID` header does the same)'),
});

export const streamInstance = createRoute({
  method: 'get',
  path: '/v1/instances/{instance_id}/events/stream',
  operationId: 'streamInstance',
  summary: 'Server-sent events: the instance and its events as they happen, until it is completed, failed or cancelled',
  description:
    'A `text/event-stream`. `event: instance` carries the instance (as GET /v1/instances/{instance_id} without nodes) first and ' +
    'whenever its status changes; `event: event` carries each new event of the history (its `id:` is the event_id, so a ' +
    "reconnecting EventSource resumes after the last one it saw); `event: end` closes the stream once it is finished. " +
    'The server reads the database every `PGFLARE_STREAM_POLL_MS` (default 500 ms) while the stream is open.',
  request: { params: s.InstanceParams, query: StreamQuery },
  responses: {
    200: { description: 'The stream', content: { 'text/event-stream': { schema: z.string() } } },
    ...routeErrors(badParam, instanceNotFound),
  },
});

export const cancelInstance = createRoute({
  method: 'post',
  path: '/v1/instances/{instance_id}/cancel',
  operationId: 'cancelInstance',
  summary: 'Cancel an instance (idempotent for an already cancelled one)',
  request: { params: s.InstanceParams, body: body(s.CancelBody, false) },
  responses: {
    200: ok(s.Message, 'Cancelled'),
    409: error('The instance already completed or failed (`instance_finished`)'),
    ...routeErrors(badBody, instanceNotFound),
  },
});

export const signalInstance = createRoute({
  method: 'post',
  path: '/v1/instances/{instance_id}/signals/{name}',
  operationId: 'signalInstance',
  summary: 'Send a signal; the body (any JSON, {} when empty) is the payload df.wait_for_signal returns',
  request: { params: s.SignalParams, body: body(z.unknown(), false) },
  responses: {
    200: ok(s.Ok, 'Recorded'),
    400: error('Body is not JSON (`invalid_json`) or bad signal name (`invalid_signal_name`)'),
    409: error('The instance is finished (`instance_finished`)'),
    ...routeErrors(instanceNotFound),
  },
});
