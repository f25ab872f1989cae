/** `pgflare/graph`: the graph envelope's schema and types (what df.start stores and the builder emits). */
export {
  NODE_TYPES,
  NODE_STATUSES,
  IDENTIFIER_RE,
  NODE_ID_RE,
  NodeTypeSchema,
  NodeStatusSchema,
  EnvelopeSchema,
  parseEnvelope,
  stringifyEnvelope,
  countEnvelopeNodes,
  type Envelope,
  type NodeType,
  type NodeStatus,
} from './schema.ts';
