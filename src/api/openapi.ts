/**
 * The OpenAPI 3.1 document served at /v1/openapi.json. Paths are written out here; request and response
 * schemas are generated from the zod schemas the routes validate with (schemas.ts), so they cannot drift.
 */
import { hookOpenApi } from './hooks-openapi.ts';
import { authErrors, error, internal, json, schema } from './openapi-kit.ts';
import * as s from './schemas.ts';
import { resumeOpenApi } from './resume-openapi.ts';
import { scheduleOpenApi } from './schedules-openapi.ts';

const idParam = { name: 'instance_id', in: 'path', required: true, description: 'Instance id (8 hex characters)', schema: { type: 'string', pattern: '^[0-9a-f]{8}$' } };
const nameParam = { name: 'name', in: 'path', required: true, description: 'Workflow name', schema: schema(s.WorkflowName, 'input') };
const workflowNotFound = { 404: error('No such workflow (or version), or it belongs to another role (`not_found`)') };
const notFound = { 404: error('No such instance, or it belongs to another role (`not_found`)') };

let cached: Record<string, unknown> | undefined;

export function openApiDocument(): Record<string, unknown> {
  cached ??= build();
  return cached;
}

function build(): Record<string, unknown> {
  const listQuery = s.ListQuery.shape;
  const schedules = scheduleOpenApi();
  const hooks = hookOpenApi();
  const resume = resumeOpenApi(idParam);
  return {
    openapi: '3.1.0',
    info: {
      title: 'pgflare API',
      version: '0.1.0',
      description:
        'Durable SQL workflows in PostgreSQL. Every /v1 route except this document needs `Authorization: Bearer <token>`; ' +
        'the token acts as a database role (row-level security: a role sees only its own instances). ' +
        'Errors are `{"error":{"code","message"}}`.',
    },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from df.create_api_token() or PGFLARE_API_TOKENS' } },
      schemas: {
        Error: schema(s.ErrorResponse),
        StartRequest: schema(s.StartBody, 'input'),
        Started: schema(s.Started),
        InstanceSummary: schema(s.InstanceSummary),
        InstanceList: schema(s.InstanceList),
        Instance: schema(s.Instance),
        Node: schema(s.Node),
        Explain: schema(s.Explain),
        Events: schema(s.Events),
        CancelRequest: schema(s.CancelBody, 'input'),
        Message: schema(s.Message),
        Ok: schema(s.Ok),
        Health: schema(s.Health),
        DefineWorkflowRequest: schema(s.DefineWorkflowBody, 'input'),
        StartWorkflowRequest: schema(s.StartWorkflowBody, 'input'),
        WorkflowDefined: schema(s.WorkflowDefined),
        WorkflowList: schema(s.WorkflowList),
        Workflow: schema(s.Workflow),
        WorkflowStarted: schema(s.WorkflowStarted),
        Removed: schema(s.Removed),
        ...schedules.schemas,
        ...hooks.schemas,
      },
    },
    paths: {
      ...schedules.paths,
      '/healthz': {
        get: {
          operationId: 'healthz',
          summary: 'Liveness: the API can reach the database',
          security: [],
          responses: { 200: { description: 'Healthy', content: json('Health') }, 503: error('Database unreachable (`unavailable`)') },
        },
      },
      '/v1/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          security: [],
          responses: { 200: { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/v1/instances': {
        post: {
          operationId: 'startInstance',
          summary: 'Start a workflow from DSL text or graph JSON',
          requestBody: { required: true, content: json('StartRequest') },
          responses: {
            201: { description: 'Started', content: json('Started'), headers: { Location: { schema: { type: 'string' } } } },
            400: error('Body is not JSON (`invalid_json`) or does not match the schema (`invalid_body`)'),
            ...authErrors,
            413: error('Body too large (`payload_too_large`)'),
            422: error('The workflow is not valid DSL or not a valid graph (`invalid_workflow`); the message is the database\'s'),
            ...internal,
          },
        },
        get: {
          operationId: 'listInstances',
          summary: 'List instances, newest first, with cursor pagination',
          parameters: (['status', 'label', 'limit', 'cursor'] as const).map((name) => ({
            name,
            in: 'query',
            required: false,
            schema: schema(listQuery[name], 'input'),
          })),
          responses: {
            200: { description: 'One page; pass next_cursor as cursor for the next (null on the last page)', content: json('InstanceList') },
            400: error('Bad query parameter or cursor (`invalid_query`)'),
            ...authErrors,
            ...internal,
          },
        },
      },
      '/v1/instances/{instance_id}': {
        get: {
          operationId: 'getInstance',
          summary: 'Status, result, output and nodes of one instance',
          parameters: [idParam],
          responses: { 200: { description: 'The instance', content: json('Instance') }, ...authErrors, ...notFound, ...internal },
        },
      },
      '/v1/instances/{instance_id}/explain': {
        get: {
          operationId: 'explainInstance',
          summary: 'The instance graph as text with per-node status markers (df.explain)',
          parameters: [idParam],
          responses: { 200: { description: 'Explain text', content: json('Explain') }, ...authErrors, ...notFound, ...internal },
        },
      },
      '/v1/instances/{instance_id}/events': {
        get: {
          operationId: 'instanceEvents',
          summary: 'History of the instance: claims, attempts, retries, failures (df.instance_events)',
          parameters: [idParam],
          responses: { 200: { description: 'Events, oldest first', content: json('Events') }, ...authErrors, ...notFound, ...internal },
        },
      },
      '/v1/instances/{instance_id}/cancel': {
        post: {
          operationId: 'cancelInstance',
          summary: 'Cancel an instance (idempotent for an already cancelled one)',
          parameters: [idParam],
          requestBody: { required: false, content: json('CancelRequest') },
          responses: {
            200: { description: 'Cancelled', content: json('Message') },
            400: error('Bad body (`invalid_json`, `invalid_body`)'),
            ...authErrors,
            ...notFound,
            409: error('The instance already completed or failed (`instance_finished`)'),
            ...internal,
          },
        },
      },
      '/v1/workflows': {
        post: {
          operationId: 'defineWorkflow',
          summary: 'Define a named workflow, or its next version (running instances keep the version they started with)',
          requestBody: { required: true, content: json('DefineWorkflowRequest') },
          responses: {
            201: { description: 'Defined', content: json('WorkflowDefined'), headers: { Location: { schema: { type: 'string' } } } },
            400: error('Body is not JSON (`invalid_json`) or does not match the schema (`invalid_body`)'),
            ...authErrors,
            413: error('Body too large (`payload_too_large`)'),
            422: error('The workflow is not valid DSL or not a valid graph (`invalid_workflow`)'),
            ...internal,
          },
        },
        get: {
          operationId: 'listWorkflows',
          summary: "The role's named workflows with their latest version",
          responses: { 200: { description: 'Workflows by name', content: json('WorkflowList') }, ...authErrors, ...internal },
        },
      },
      '/v1/workflows/{name}': {
        get: {
          operationId: 'getWorkflow',
          summary: 'The latest version as graph JSON, and every version',
          parameters: [nameParam],
          responses: { 200: { description: 'The workflow', content: json('Workflow') }, ...authErrors, ...workflowNotFound, ...internal },
        },
        delete: {
          operationId: 'dropWorkflow',
          summary: 'Remove every version (running instances are unaffected)',
          parameters: [nameParam],
          responses: { 200: { description: 'Versions removed', content: json('Removed') }, ...authErrors, ...workflowNotFound, ...internal },
        },
      },
      '/v1/workflows/{name}/instances': {
        post: {
          operationId: 'startWorkflow',
          summary: 'Start a named workflow; steps read the input as the named result `input`',
          parameters: [nameParam],
          requestBody: { required: false, content: json('StartWorkflowRequest') },
          responses: {
            201: { description: 'Started', content: json('WorkflowStarted'), headers: { Location: { schema: { type: 'string' } } } },
            400: error('Bad body (`invalid_json`, `invalid_body`)'),
            ...authErrors,
            ...workflowNotFound,
            ...internal,
          },
        },
      },
      '/v1/instances/{instance_id}/signals/{name}': {
        post: {
          operationId: 'signalInstance',
          summary: 'Send a signal; the body (any JSON, {} when empty) is the payload df.wait_for_signal returns',
          parameters: [idParam, { name: 'name', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 200 } }],
          requestBody: { required: false, content: { 'application/json': { schema: {} } } },
          responses: {
            200: { description: 'Recorded', content: json('Ok') },
            400: error('Body is not JSON (`invalid_json`) or bad signal name (`invalid_signal_name`)'),
            ...authErrors,
            ...notFound,
            409: error('The instance is finished (`instance_finished`)'),
            ...internal,
          },
        },
      },
      ...resume.paths,
      ...hooks.paths,
    },
  };
}
