/** The named-workflow routes' definitions (createRoute), implemented by workflows.ts. */
import { createRoute } from '@hono/zod-openapi';
import { IdempotencyHeaders, keyErrors, startHeaders } from './instances-openapi.ts';
import { badBody, badPage, body, error, json, locationHeader, notFound, ok, routeErrors, tooLarge } from './openapi-kit.ts';
import * as s from './schemas.ts';

const workflowNotFound = notFound('workflow (or version)');

export const defineWorkflow = createRoute({
  method: 'post',
  path: '/v1/workflows',
  operationId: 'defineWorkflow',
  summary: 'Define a named workflow, or its next version (running instances keep the version they started with)',
  request: { body: body(s.DefineWorkflowBody) },
  responses: {
    201: { description: 'Defined', content: json(s.WorkflowDefined), headers: locationHeader },
    422: error('The workflow is not valid DSL or not a valid graph (`invalid_workflow`)'),
    ...routeErrors(badBody, tooLarge),
  },
});

export const listWorkflows = createRoute({
  method: 'get',
  path: '/v1/workflows',
  operationId: 'listWorkflows',
  summary: "The role's named workflows with their latest version, by name, a page at a time",
  request: { query: s.PageQuery },
  responses: {
    200: ok(s.WorkflowList, 'One page of workflows by name; pass next_cursor as cursor for the next (null on the last page)'),
    ...routeErrors(badPage),
  },
});

export const getWorkflow = createRoute({
  method: 'get',
  path: '/v1/workflows/{name}',
  operationId: 'getWorkflow',
  summary: 'The latest version as graph JSON, and every version',
  request: { params: s.WorkflowParams },
  responses: { 200: ok(s.Workflow, 'The workflow'), ...routeErrors(workflowNotFound) },
});

export const dropWorkflow = createRoute({
  method: 'delete',
  path: '/v1/workflows/{name}',
  operationId: 'dropWorkflow',
  summary: 'Remove every version (running instances are unaffected)',
  request: { params: s.WorkflowParams },
  responses: { 200: ok(s.Removed, 'Versions removed'), ...routeErrors(workflowNotFound) },
});

export const startWorkflow = createRoute({
  method: 'post',
  path: '/v1/workflows/{name}/instances',
  operationId: 'startWorkflow',
  summary: 'Start a named workflow; steps read the input as the named result `input`',
  request: { params: s.WorkflowParams, headers: IdempotencyHeaders, body: body(s.StartWorkflowBody, false) },
  responses: {
    201: { description: 'Started (or the stored answer replayed)', content: json(s.WorkflowStarted), headers: startHeaders },
    400: error('Bad body (`invalid_json`, `invalid_body`) or Idempotency-Key (`invalid_idempotency_key`)'),
    ...routeErrors(workflowNotFound, keyErrors),
  },
});
