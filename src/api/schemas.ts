/**
 * Request and response shapes of the REST API (zod, extended with `.openapi()`): the routes
 * (createRoute) validate with them and the OpenAPI document is generated from the same objects.
 * `.openapi('Name')` makes a shape a named component of the document.
 */
import { z } from '@hono/zod-openapi';

export const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export const MAX_LABEL = 256;
/** DSL text is tokenized in SQL before it runs (df._eval_dsl); 256 KiB keeps that well under a second. */
export const MAX_WORKFLOW = 262_144;

const label = z.string().min(1).max(MAX_LABEL);

export const StartBody = z
  .strictObject({
    workflow: z
      .string()
      .min(1)
      .max(MAX_WORKFLOW)
      .optional()
      .describe("A DSL expression, e.g. \"'SELECT 1' ~> 'SELECT 2'\". Only DSL is accepted: string literals, numbers, NULL, the operators ~> |=> & | ?> !> @>, parentheses and df.* DSL functions."),
    graph: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('A workflow graph as envelope JSON (the output of the DSL functions).'),
    label: label.optional(),
  })
  .refine((b) => (b.workflow === undefined) !== (b.graph === undefined), {
    message: 'exactly one of "workflow" or "graph" is required',
  })
  .openapi('StartRequest');
export type StartBody = z.infer<typeof StartBody>;

/** Every list's paging: `limit` rows per page and the opaque `cursor` of the previous page's next_cursor. */
export const Limit = z.coerce.number().int().min(1).max(1000).default(100).describe('Rows per page (1-1000, default 100)');
export const Cursor = z
  .string()
  .regex(/^[0-9a-f]{2,512}$/, 'not a cursor returned by this API')
  .optional()
  .describe("The previous page's next_cursor (opaque)");
export const NextCursor = z.string().nullable().describe('Pass as cursor for the next page; null on the last page');
export const PageQuery = z.strictObject({ limit: Limit, cursor: Cursor });

export const ListQuery = z.strictObject({
  status: z.enum(STATUSES).optional(),
  label: label.optional(),
  limit: Limit,
  cursor: Cursor,
});

export const WaitQuery = z.strictObject({
  wait: z.coerce
    .number()
    .min(0)
    .max(3600)
    .optional()
    .describe('Seconds to wait for the instance to finish before answering (long-poll; capped by the server, 60 s by default).'),
});

export const CancelBody = z
  .strictObject({
    reason: z.string().min(1).max(1000).optional(),
  })
  .openapi('CancelRequest');

export const InstanceId = z.string().regex(/^[0-9a-f]{8}$/);
export const SignalName = z.string().min(1).max(200);

/** Path parameters. A malformed one is a 404 like an unknown one (kit.ts defaultHook), except a signal name. */
export const InstanceParams = z.object({
  instance_id: InstanceId.openapi({ param: { name: 'instance_id', in: 'path' }, description: 'Instance id (8 hex characters)' }),
});
export const SignalParams = InstanceParams.extend({
  name: SignalName.openapi({ param: { name: 'name', in: 'path' }, description: 'Signal name' }),
});

// ---- responses (validated by no one at run time: the document and the SDK's types) ----

export const ErrorResponse = z
  .object({
    error: z.object({ code: z.string().describe('Stable, for programs'), message: z.string().describe('For people') }),
  })
  .openapi('Error');

export const Started = z.object({ instance_id: z.string(), status: z.enum(STATUSES) }).openapi('Started');

export const InstanceError = z
  .object({
    code: z.string().describe("The failing step's SQLSTATE (e.g. 22012), else a pgflare code: step_failed (a non-SQL step, e.g. HTTP), workflow_failed (no step failed: the graph itself)"),
    message: z.string(),
    detail: z.string().nullable().describe("PostgreSQL's DETAIL, if any"),
    hint: z.string().nullable().describe("PostgreSQL's HINT, if any"),
    node_id: z.string().nullable().describe('The node whose step failed'),
    attempt: z.number().int().nullable().describe('The attempt that failed last (1-based)'),
  })
  .describe('Why a failed instance failed; null unless status is failed')
  .openapi('InstanceError');

/** What every instance answer shares: result and error as JSON, and the timestamps. */
const InstanceOutcome = {
  result: z.unknown().describe('The root node result (JSON) once the instance completed, else null'),
  error: InstanceError.nullable(),
  output: z.string().nullable().describe("pg_durable's output text (df.status/df.result); prefer result and error"),
  created_at: z.string(),
  started_at: z.string().nullable().describe("When a worker first claimed one of its steps (recorded then); null until one was"),
  finished_at: z.string().nullable().describe('When it completed, failed or was cancelled (recorded then); null while it runs'),
  completed_at: z.string().nullable().describe('When it completed (null if it failed or was cancelled)'),
};

export const InstanceSummary = z
  .object({
    instance_id: z.string(),
    label: z.string().nullable(),
    status: z.enum(STATUSES),
    execution_count: z.number().int(),
    ...InstanceOutcome,
  })
  .openapi('InstanceSummary');

export const InstanceList = z.object({ instances: z.array(InstanceSummary), next_cursor: NextCursor }).openapi('InstanceList');

export const Node = z
  .object({
    node_id: z.string(),
    node_type: z.string(),
    query: z.string().nullable(),
    result_name: z.string().nullable(),
    left_node: z.string().nullable(),
    right_node: z.string().nullable(),
    status: z.string(),
    result: z.unknown().describe('The node result (JSON), null until it finished'),
    status_details: z.unknown(),
    inferred_status: z.string(),
    inferred_status_from_ancestor_id: z.string().nullable(),
    updated_at: z.string(),
  })
  .openapi('Node');

export const Instance = z
  .object({
    instance_id: z.string(),
    label: z.string().nullable(),
    status: z.enum(STATUSES),
    ...InstanceOutcome,
    nodes: z.array(Node),
  })
  .openapi('Instance');

export const Explain = z.object({ text: z.string() }).openapi('Explain');

export const Event = z
  .object({
    event_id: z.number().int(),
    node_id: z.string().nullable(),
    kind: z.string(),
    attempt: z.number().int().nullable(),
    detail: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Event');
export const Events = z.object({ events: z.array(Event), next_cursor: NextCursor }).openapi('Events');

export const Message = z.object({ message: z.string() }).openapi('Message');
export const Ok = z.object({ ok: z.literal(true) }).openapi('Ok');
export const Health = z
  .object({
    ok: z.boolean(),
    database: z.literal('ok'),
    worker: z.object({ seen: z.boolean(), last_seen_at: z.string().nullable(), age_s: z.number().nullable(), max_age_s: z.number().nullable() }),
  })
  .openapi('Health');

// ---- named workflows ----

export const WorkflowName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'a name is 1-128 characters: letters, digits, and _ . : - (not first)');
export const WorkflowParams = z.object({ name: WorkflowName.openapi({ param: { name: 'name', in: 'path' }, description: 'Workflow name' }) });

export const DefineWorkflowBody = z
  .strictObject({
    name: WorkflowName,
    workflow: StartBody.shape.workflow,
    graph: StartBody.shape.graph,
    description: z.string().max(10_000).optional(),
  })
  .refine((b) => (b.workflow === undefined) !== (b.graph === undefined), {
    message: 'exactly one of "workflow" or "graph" is required',
  })
  .openapi('DefineWorkflowRequest');

export const StartWorkflowBody = z
  .strictObject({
    input: z.unknown().optional().describe('Any JSON; every step reads it as the named result `input` ($input, $input.field).'),
    label: label.optional().describe('Defaults to the workflow name.'),
    version: z.number().int().min(1).optional().describe('Defaults to the latest version.'),
  })
  .openapi('StartWorkflowRequest');

export const WorkflowDefined = z.object({ name: z.string(), version: z.number().int() }).openapi('WorkflowDefined');
export const WorkflowVersion = z.object({ version: z.number().int(), description: z.string().nullable(), created_at: z.string() });
export const WorkflowSummary = z
  .object({
    name: z.string(),
    latest_version: z.number().int(),
    description: z.string().nullable(),
    created_at: z.string().describe('When the latest version was defined'),
  })
  .openapi('WorkflowSummary');
export const WorkflowList = z.object({ workflows: z.array(WorkflowSummary), next_cursor: NextCursor }).openapi('WorkflowList');
export const Workflow = z
  .object({
    name: z.string(),
    latest_version: z.number().int(),
    graph: z.unknown().describe('The latest version as graph JSON'),
    versions: z.array(WorkflowVersion),
  })
  .openapi('Workflow');
export const WorkflowStarted = z.object({ instance_id: z.string(), status: z.enum(STATUSES), version: z.number().int() }).openapi('WorkflowStarted');
export const Removed = z.object({ removed: z.number().int() }).openapi('Removed');
