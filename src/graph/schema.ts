/**
 * The graph contract (DESIGN decision 3): pg_durable's node JSON as zod schemas.
 *
 * - `EnvelopeSchema`: the nested JSON the SQL DSL returns (SPEC §1.3).
 * - `NodeRowSchema`: a `df.nodes` row as stored, children by id (SPEC §1.1, §1.2).
 * - `parseNodeConfig(row)`: the row's `query` decoded per node type, as a discriminated union.
 *
 * Unknown keys are ignored (stripped) everywhere, as pg_durable's serde structs do.
 */
import { z } from 'zod';

export const NODE_TYPES = [
  'SQL',
  'THEN',
  'IF',
  'JOIN',
  'LOOP',
  'BREAK',
  'RACE',
  'SLEEP',
  'WAIT_SCHEDULE',
  'HTTP',
  'HTTP_MULTIPART',
  'SIGNAL',
] as const;
export const NodeTypeSchema = z.enum(NODE_TYPES);
export type NodeType = z.infer<typeof NodeTypeSchema>;

export const NODE_STATUSES = ['pending', 'running', 'completed', 'failed'] as const;
export const NodeStatusSchema = z.enum(NODE_STATUSES);
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

/** `[A-Za-z_][A-Za-z0-9_]*`, the result-name rule of df.as and the df.nodes CHECK. */
export const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Node and instance ids: 8 lowercase hex characters. */
export const NODE_ID_RE = /^[0-9a-f]{8}$/;

// ---------------------------------------------------------------------------------------------
// Envelope (nested, as built by the DSL)
// ---------------------------------------------------------------------------------------------

export interface Envelope {
  node_type: NodeType;
  left_node?: Envelope | null;
  right_node?: Envelope | null;
  condition_node?: Envelope | null;
  extra_nodes?: Envelope[] | null;
  query?: string | null;
  result_name?: string | null;
}

// null is accepted where a key may be absent: serde reads `"left_node":null` as None.
export const EnvelopeSchema: z.ZodType<Envelope> = z.object({
  node_type: NodeTypeSchema,
  get left_node() {
    return EnvelopeSchema.nullish();
  },
  get right_node() {
    return EnvelopeSchema.nullish();
  },
  get condition_node() {
    return EnvelopeSchema.nullish();
  },
  get extra_nodes() {
    return z.array(EnvelopeSchema).nullish();
  },
  query: z.string().nullish(),
  result_name: z.string().nullish(),
});

/** Parses envelope JSON text (or an already-parsed value). Throws a ZodError / SyntaxError. */
export function parseEnvelope(input: string | unknown): Envelope {
  return EnvelopeSchema.parse(typeof input === 'string' ? JSON.parse(input) : input);
}

/**
 * Canonical envelope text, as the DSL writes it: compact, keys in the order node_type, left_node,
 * right_node, condition_node, extra_nodes, query, result_name; absent/null/empty keys omitted.
 * (The DSL embeds user-supplied child text verbatim, so only DSL-built graphs are byte-identical.)
 */
export function stringifyEnvelope(e: Envelope): string {
  const parts = [`"node_type":${JSON.stringify(e.node_type)}`];
  if (e.left_node) parts.push(`"left_node":${stringifyEnvelope(e.left_node)}`);
  if (e.right_node) parts.push(`"right_node":${stringifyEnvelope(e.right_node)}`);
  if (e.condition_node) parts.push(`"condition_node":${stringifyEnvelope(e.condition_node)}`);
  if (e.extra_nodes && e.extra_nodes.length > 0) parts.push(`"extra_nodes":[${e.extra_nodes.map(stringifyEnvelope).join(',')}]`);
  if (e.query != null) parts.push(`"query":${JSON.stringify(e.query)}`);
  if (e.result_name != null) parts.push(`"result_name":${JSON.stringify(e.result_name)}`);
  return `{${parts.join(',')}}`;
}

/** Number of nodes in an envelope tree (= rows df.start writes). */
export function countEnvelopeNodes(e: Envelope): number {
  let n = 0;
  const stack: Envelope[] = [e];
  while (stack.length > 0) {
    const x = stack.pop()!;
    n++;
    if (x.left_node) stack.push(x.left_node);
    if (x.right_node) stack.push(x.right_node);
    if (x.condition_node) stack.push(x.condition_node);
    if (x.extra_nodes) stack.push(...x.extra_nodes);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Config objects carried in `query` (SPEC §1.2; keys in the order the DSL writes them)
// ---------------------------------------------------------------------------------------------

/** IF built by df.if, as stored: the condition node's id. */
export const IfNodeConditionSchema = z.object({ condition_node: z.string() });
/** IF built by df.if_rows (same in envelope and row). */
export const IfRowsConditionSchema = z.object({
  condition_type: z.literal('result_has_rows'),
  result_name: z.string(),
});
export const LoopRowConfigSchema = z.object({ condition_node: z.string() });
export const JoinRowConfigSchema = z.object({ extra_nodes: z.array(z.string()) });

export const BreakConfigSchema = z.object({ break_value: z.string().nullable().default(null) });
export type BreakConfig = z.infer<typeof BreakConfigSchema>;

/** SLEEP: the whole query is the number of seconds as decimal text, e.g. "60". */
export const SleepSecondsSchema = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'SLEEP query must be a non-negative number of seconds')
  .transform(Number);

export const WaitScheduleConfigSchema = z.object({ cron_expr: z.string() });
export type WaitScheduleConfig = z.infer<typeof WaitScheduleConfigSchema>;

export const SignalConfigSchema = z.object({
  signal_name: z.string(),
  timeout_seconds: z.number().int().nullable().default(null),
});
export type SignalConfig = z.infer<typeof SignalConfigSchema>;

// Header values that are not strings are kept here and skipped when sending (SPEC §3.11).
const HeadersSchema = z.record(z.string(), z.unknown()).nullable().default(null);

export const HttpConfigSchema = z.object({
  url: z.string(),
  method: z.string().default('POST'),
  body: z.string().nullable().default(null),
  headers: HeadersSchema,
  timeout_seconds: z.number().int().default(30),
});
export type HttpConfig = z.infer<typeof HttpConfigSchema>;

export const MultipartPartSchema = z.object({
  name: z.string(),
  data_b64: z.string(),
  filename: z.string().nullish(),
  content_type: z.string().nullish(),
});
export type MultipartPart = z.infer<typeof MultipartPartSchema>;

export const HttpMultipartConfigSchema = z.object({
  url: z.string(),
  method: z.string().default('POST'),
  parts: z.array(MultipartPartSchema),
  headers: HeadersSchema,
  timeout_seconds: z.number().int().default(30),
});
export type HttpMultipartConfig = z.infer<typeof HttpMultipartConfigSchema>;

// ---------------------------------------------------------------------------------------------
// df.nodes row
// ---------------------------------------------------------------------------------------------

export const NodeRowSchema = z.object({
  id: z.string().regex(NODE_ID_RE),
  instance_id: z.string().regex(NODE_ID_RE),
  node_type: NodeTypeSchema,
  query: z.string().nullable(),
  result_name: z.string().regex(IDENTIFIER_RE).nullable(),
  left_node: z.string().regex(NODE_ID_RE).nullable(),
  right_node: z.string().regex(NODE_ID_RE).nullable(),
  status: NodeStatusSchema,
  result: z.unknown(),
  status_details: z.unknown(),
}).superRefine(checkRowStructure);
export type NodeRow = z.infer<typeof NodeRowSchema>;

const LEAF_TYPES: ReadonlySet<NodeType> = new Set(['SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL']);

// Mirrors the nodes_structure_check constraint, plus the child ids that IF/LOOP/JOIN keep in `query`.
// Leaf configs are not checked here: a malformed one must still start and fail at run time.
function checkRowStructure(
  row: { node_type: NodeType; query: string | null; left_node: string | null; right_node: string | null },
  ctx: z.RefinementCtx,
) {
  const t = row.node_type;
  const has = (v: unknown) => v !== null;
  const ok = LEAF_TYPES.has(t)
    ? !has(row.left_node) && !has(row.right_node) && has(row.query)
    : t === 'THEN' || t === 'RACE'
      ? has(row.left_node) && has(row.right_node) && !has(row.query)
      : t === 'IF'
        ? has(row.left_node) && has(row.right_node) && has(row.query)
        : t === 'LOOP'
          ? has(row.left_node) && !has(row.right_node)
          : has(row.left_node) && has(row.right_node); // JOIN
  if (!ok) ctx.addIssue({ code: 'custom', message: `${t} row has the wrong children or query` });
  if ((t === 'IF' || t === 'LOOP' || t === 'JOIN') && row.query !== null) {
    let q: unknown;
    try {
      q = JSON.parse(row.query);
    } catch {
      ctx.addIssue({ code: 'custom', path: ['query'], message: `${t} query is not JSON` });
      return;
    }
    const r = (t === 'JOIN' ? JoinIdsSchema : t === 'LOOP' ? LoopIdsSchema : IfIdsSchema).safeParse(q);
    if (!r.success) ctx.addIssue({ code: 'custom', path: ['query'], message: `${t} query: ${r.error.issues[0].message}` });
  }
}

const NodeIdSchema = z.string().regex(NODE_ID_RE);
const JoinIdsSchema = z.looseObject({ extra_nodes: z.array(NodeIdSchema).optional() });
const LoopIdsSchema = z.looseObject({ condition_node: NodeIdSchema.optional() });
const IfIdsSchema = z.union([
  z.looseObject({ condition_node: NodeIdSchema }),
  z.looseObject({ condition_type: z.literal('result_has_rows'), result_name: z.string() }),
]);

// ---------------------------------------------------------------------------------------------
// parseNodeConfig
// ---------------------------------------------------------------------------------------------

export type IfCondition = { kind: 'node'; nodeId: string } | { kind: 'result_has_rows'; resultName: string };

export type NodeConfig =
  | { node_type: 'SQL'; sql: string }
  | { node_type: 'THEN' }
  | { node_type: 'RACE' }
  | { node_type: 'JOIN'; extraNodes: string[] }
  | { node_type: 'IF'; condition: IfCondition }
  | { node_type: 'LOOP'; conditionNode: string | null }
  | { node_type: 'BREAK'; config: BreakConfig }
  | { node_type: 'SLEEP'; seconds: number }
  | { node_type: 'WAIT_SCHEDULE'; config: WaitScheduleConfig }
  | { node_type: 'SIGNAL'; config: SignalConfig }
  | { node_type: 'HTTP'; config: HttpConfig }
  | { node_type: 'HTTP_MULTIPART'; config: HttpMultipartConfig };

/** A row whose `query` does not fit its node type; the message is what the node fails with. */
export class NodeConfigError extends Error {
  override name = 'NodeConfigError';
}

type RowLike = Pick<NodeRow, 'node_type' | 'query'> & Partial<Pick<NodeRow, 'id'>>;

/**
 * Decodes the stored `query` of a row by node type. Throws NodeConfigError with a message suitable
 * as the node's failure text (`Invalid multipart HTTP config: …` for HTTP_MULTIPART, SPEC §3.11;
 * `df.if_rows: missing result_name` / `IF node missing condition_node` as pg_durable words them).
 */
export function parseNodeConfig(row: RowLike): NodeConfig {
  const { node_type: type, query } = row;
  switch (type) {
    case 'SQL':
      return { node_type: 'SQL', sql: requireQuery(row) };
    case 'THEN':
      return { node_type: 'THEN' };
    case 'RACE':
      return { node_type: 'RACE' };
    case 'JOIN': {
      if (query == null) return { node_type: 'JOIN', extraNodes: [] };
      const obj = jsonObject(row, query);
      if (obj.extra_nodes === undefined || obj.extra_nodes === null) return { node_type: 'JOIN', extraNodes: [] };
      return { node_type: 'JOIN', extraNodes: decode(row, JoinRowConfigSchema, obj).extra_nodes };
    }
    case 'IF': {
      const obj = jsonObject(row, requireQuery(row));
      // pg_durable tests condition_type first, then condition_node.
      if (obj.condition_type === 'result_has_rows') {
        if (typeof obj.result_name !== 'string') throw new NodeConfigError('df.if_rows: missing result_name');
        return { node_type: 'IF', condition: { kind: 'result_has_rows', resultName: obj.result_name } };
      }
      if (typeof obj.condition_node !== 'string') throw new NodeConfigError('IF node missing condition_node');
      return { node_type: 'IF', condition: { kind: 'node', nodeId: obj.condition_node } };
    }
    case 'LOOP': {
      if (query == null) return { node_type: 'LOOP', conditionNode: null };
      const obj = jsonObject(row, query);
      if (obj.condition_node === undefined || obj.condition_node === null) return { node_type: 'LOOP', conditionNode: null };
      return { node_type: 'LOOP', conditionNode: decode(row, LoopRowConfigSchema, obj).condition_node };
    }
    case 'BREAK':
      return { node_type: 'BREAK', config: decode(row, BreakConfigSchema, jsonObject(row, requireQuery(row))) };
    case 'SLEEP':
      return { node_type: 'SLEEP', seconds: decode(row, SleepSecondsSchema, requireQuery(row).trim()) };
    case 'WAIT_SCHEDULE':
      return { node_type: 'WAIT_SCHEDULE', config: decode(row, WaitScheduleConfigSchema, jsonObject(row, requireQuery(row))) };
    case 'SIGNAL':
      return { node_type: 'SIGNAL', config: decode(row, SignalConfigSchema, jsonObject(row, requireQuery(row))) };
    case 'HTTP':
      return { node_type: 'HTTP', config: decode(row, HttpConfigSchema, jsonObject(row, requireQuery(row))) };
    case 'HTTP_MULTIPART':
      return {
        node_type: 'HTTP_MULTIPART',
        config: decode(row, HttpMultipartConfigSchema, jsonObject(row, requireQuery(row))),
      };
    default: {
      const never: never = type;
      throw new NodeConfigError(`Unknown node_type '${String(never)}'`);
    }
  }
}

function prefix(type: NodeType): string {
  return type === 'HTTP_MULTIPART' ? 'Invalid multipart HTTP config' : `Invalid ${type} config`;
}

function requireQuery(row: RowLike): string {
  if (row.query == null) throw new NodeConfigError(`${prefix(row.node_type)}: query is NULL`);
  return row.query;
}

function jsonObject(row: RowLike, query: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(query);
  } catch (e) {
    throw new NodeConfigError(`${prefix(row.node_type)}: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new NodeConfigError(`${prefix(row.node_type)}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
}

function decode<S extends z.ZodType>(row: RowLike, schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new NodeConfigError(`${prefix(row.node_type)}: ${where}${issue.message}`);
}
