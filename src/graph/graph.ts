/**
 * An instance's static graph: its node rows (df.nodes) as a tree of GraphNodes with parent links, built
 * once per instance and cached by the engine (the rows never change after df.start). Also which rows a
 * checkpoint of a leaf will most likely read, so the engine can load them in one round trip.
 */
import type { NodeType } from './schema.ts';
import { scopeChainOfStamp } from './scope-ids.ts';

export interface GraphNode {
  id: string;
  type: NodeType;
  query: string | null;
  resultName: string | null;
  left: string | null;
  right: string | null;
  /** IF/LOOP condition node id (from the row's query JSON). */
  condition: string | null;
  /** JOIN extra branch ids (from the row's query JSON). */
  extras: string[];
  parent: string | null;
}

export interface Graph {
  instanceId: string;
  root: string;
  nodes: Map<string, GraphNode>;
}

export interface GraphRow {
  id: string;
  node_type: string;
  query: string | null;
  result_name: string | null;
  left_node: string | null;
  right_node: string | null;
}

/** Builds the static graph (immutable for an instance's life, so the engine caches it). */
export function buildGraph(instanceId: string, root: string, rows: readonly GraphRow[]): Graph {
  const nodes = new Map<string, GraphNode>();
  for (const r of rows) {
    let condition: string | null = null;
    let extras: string[] = [];
    if (r.query && (r.node_type === 'IF' || r.node_type === 'LOOP' || r.node_type === 'JOIN')) {
      const q = safeJson(r.query);
      if (q && typeof q === 'object') {
        const o = q as Record<string, unknown>;
        if (typeof o.condition_node === 'string') condition = o.condition_node;
        if (Array.isArray(o.extra_nodes)) extras = o.extra_nodes.filter((x): x is string => typeof x === 'string');
      }
    }
    nodes.set(r.id, {
      id: r.id,
      type: r.node_type as NodeType,
      query: r.query,
      resultName: r.result_name,
      left: r.left_node,
      right: r.right_node,
      condition,
      extras,
      parent: null,
    });
  }
  for (const n of nodes.values()) {
    for (const c of childrenOf(n)) {
      const child = nodes.get(c);
      if (child) child.parent = n.id;
    }
  }
  if (!nodes.has(root)) throw new Error(`instance ${instanceId}: root node ${root} is missing`);
  return { instanceId, root, nodes };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function childrenOf(n: GraphNode): string[] {
  const out: (string | null)[] =
    n.type === 'IF' ? [n.condition, n.left, n.right] : n.type === 'LOOP' ? [n.left, n.condition] : [n.left, n.right, ...n.extras];
  return out.filter((x): x is string => x !== null);
}

/** How many branches a JOIN or RACE has (without building the list: a JOIN may have thousands). */
export function branchCount(n: GraphNode): number {
  return (n.left === null ? 0 : 1) + (n.right === null ? 0 : 1) + n.extras.length;
}

export function branchesOf(n: GraphNode): string[] {
  return [n.left, n.right, ...n.extras].filter((x): x is string => x !== null);
}

/** Ancestors of a node, nearest first. */
export function ancestorsOf(g: Graph, id: string): string[] {
  const out: string[] = [];
  for (let p = g.nodes.get(id)?.parent ?? null; p !== null; p = g.nodes.get(p)?.parent ?? null) out.push(p);
  return out;
}

/** The node rows and scope rows a checkpoint for `leafId` (stamped `stamp`) will most likely read. */
export function checkpointReadSet(g: Graph, leafId: string, stamp: string | null): { nodes: string[]; scopes: string[] } {
  const nodes = [leafId];
  for (const a of ancestorsOf(g, leafId)) {
    const t = g.nodes.get(a)!.type;
    if (t === 'LOOP' || t === 'JOIN' || t === 'RACE') nodes.push(a);
  }
  return { nodes, scopes: stamp ? scopeChainOfStamp(stamp) : [] };
}
