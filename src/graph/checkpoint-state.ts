/**
 * The checkpoint's working state (advance.ts's base class): the static graph, the node and scope states
 * it was given, and the row changes it records. Reads of a row it was not given throw MissingData; every
 * write goes through here so the in-memory state and `changes` stay in step.
 */
import type { NodeStatus } from './schema.ts';
import { childScopeId } from './scope-ids.ts';
import type { Graph, GraphNode } from './graph.ts';
import { MissingData, type Changes, type InstanceChange, type NodeChange, type NodeState, type ScopeState } from './changes.ts';
import type { Replay } from './replay.ts';

export interface CheckpointInput {
  graph: Graph;
  now: Date;
  nodes: readonly NodeState[];
  scopes: readonly ScopeState[];
  instanceGeneration: number;
  /**
   * When successors made ready at once are due: the claimed row's own run_at. They inherit their
   * predecessor's place in the queue, so an instance runs depth-first instead of queueing each step
   * behind all work that arrived meanwhile (bench/ W2: one-step instances otherwise cost two claims
   * each, all starts first). Defaults to `now`.
   */
  readyAt?: Date;
}

export class CheckpointState {
  readonly changes: Changes = {
    nodes: new Map(),
    scopes: new Map(),
    scopeDeletes: new Set(),
    cancelScopes: [],
    instance: null,
    ready: [],
  };
  protected readonly g: Graph;
  protected readonly now: Date;
  protected readonly readyAt: string;
  protected readonly nodeStates = new Map<string, NodeState>();
  protected readonly scopeStates = new Map<string, ScopeState>();
  protected instanceGeneration: number;
  /** While resume() activates: completed leaves' result texts to replay, and scopes' generations to reopen. */
  protected replay: Replay | null = null;

  constructor(input: CheckpointInput) {
    this.g = input.graph;
    this.now = input.now;
    this.readyAt = (input.readyAt && input.readyAt < input.now ? input.readyAt : input.now).toISOString();
    for (const n of input.nodes) this.nodeStates.set(n.id, { ...n, state: n.state ? { ...n.state } : null });
    for (const s of input.scopes) this.scopeStates.set(s.id, { ...s, named: { ...s.named } });
    this.instanceGeneration = input.instanceGeneration;
  }

  protected makeReady(id: string, change: NodeChange, runAt: string): void {
    this.setNode(id, change);
    this.changes.ready.push({ id, runAt });
  }

  // ----- state access -------------------------------------------------------------------------

  protected gnode(id: string): GraphNode {
    const n = this.g.nodes.get(id);
    if (!n) throw new Error(`instance ${this.g.instanceId}: node ${id} is not in the graph`);
    return n;
  }

  protected node(id: string): NodeState {
    const n = this.nodeStates.get(id);
    if (!n) throw new MissingData([id], []);
    return n;
  }

  protected scope(id: string): ScopeState {
    const s = this.scopeStates.get(id);
    if (!s || this.changes.scopeDeletes.has(id)) throw new MissingData([], [id]);
    return s;
  }

  protected scopes(ids: string[]): ScopeState[] {
    const missing = ids.filter((id) => !this.scopeStates.has(id));
    if (missing.length) throw new MissingData([], missing);
    return ids.map((id) => this.scopeStates.get(id)!);
  }

  protected openScope(parent: ScopeState, rootId: string): ScopeState {
    const s: ScopeState = {
      id: childScopeId(parent, rootId),
      parent: parent.id,
      root: rootId,
      generation: this.replay?.generation(childScopeId(parent, rootId)) ?? 1,
      named: { ...parent.named },
      status: 'running',
      result: null,
    };
    this.putScope(s);
    return s;
  }

  protected putScope(s: ScopeState): void {
    this.scopeStates.set(s.id, s);
    this.changes.scopeDeletes.delete(s.id);
    this.changes.scopes.set(s.id, s);
  }

  protected deleteScope(id: string): void {
    this.changes.scopes.delete(id);
    this.changes.scopeDeletes.add(id);
  }

  protected setNode(id: string, change: NodeChange): void {
    const merged = { ...this.changes.nodes.get(id), ...change };
    this.changes.nodes.set(id, merged);
    const cur = this.nodeStates.get(id) ?? { id, status: 'pending' as NodeStatus, stamp: null, state: null };
    this.nodeStates.set(id, {
      id,
      status: change.status ?? cur.status,
      stamp: change.stamp ?? cur.stamp,
      state: 'state' in change ? (change.state ?? null) : cur.state,
    });
  }

  protected setInstance(change: InstanceChange): void {
    this.changes.instance = { ...this.changes.instance, ...change };
  }
}
