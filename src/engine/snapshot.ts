/**
 * The engine's copy of an instance's rows, and the pure operations on it and on Changes. After a
 * checkpoint commits, the engine remembers the rows it left (advanceSnapshot) so the next checkpoint of
 * the same instance can be computed without reading them (fromSnapshot); the write then carries what it
 * assumed (expectation) and df._apply refuses it (PFS01) if the rows changed meanwhile. An activation
 * whose first step continues in the same transaction is not written on its own: the step's checkpoint
 * reads through it (overlay) and writes both (mergeChanges). No I/O: see snapshot.test.ts.
 */
import { Checkpoint } from '../graph/advance.ts';
import type { Changes, NodeState, ScopeState } from '../graph/changes.ts';
import type { Graph } from '../graph/graph.ts';

/** The node and scope rows a checkpoint reads (df._lock_and_load's arguments). */
export interface ReadSet {
  nodes: string[];
  scopes: string[];
}

export interface RawNode {
  id: string;
  status: NodeState['status'];
  stamp: string | null;
  state: Record<string, unknown> | null;
}
export interface RawScope {
  id: string;
  parent: string | null;
  root: string;
  generation: number;
  named: Record<string, string>;
  status: ScopeState['status'];
  result: string | null;
}

/** What the database would return if `carry` had been written. */
export function overlay<L extends { nodes: RawNode[]; scopes: RawScope[] }>(s: L, carry: Changes): L {
  const nodes = s.nodes.map((n) => {
    const c = carry.nodes.get(n.id);
    if (!c) return n;
    return { ...n, status: c.status ?? n.status, stamp: c.stamp ?? n.stamp, state: 'state' in c ? (c.state ?? null) : n.state };
  });
  const ids = new Set(s.scopes.map((x) => x.id));
  const scopes = s.scopes
    .filter((x) => !carry.scopeDeletes.has(x.id))
    .map((x) => (carry.scopes.has(x.id) ? { ...carry.scopes.get(x.id)!, named: { ...carry.scopes.get(x.id)!.named } } : x));
  for (const x of carry.scopes.values()) if (!ids.has(x.id)) scopes.push({ ...x, named: { ...x.named } });
  return { ...s, nodes, scopes };
}

/** `a` then `b`, as one set of changes. */
export function mergeChanges(a: Changes, b: Changes): Changes {
  const nodes = new Map(a.nodes);
  for (const [id, c] of b.nodes) nodes.set(id, { ...nodes.get(id), ...c });
  const scopes = new Map(a.scopes);
  const scopeDeletes = new Set(a.scopeDeletes);
  for (const [id, sc] of b.scopes) {
    scopes.set(id, sc);
    scopeDeletes.delete(id);
  }
  for (const id of b.scopeDeletes) {
    scopes.delete(id);
    scopeDeletes.add(id);
  }
  return {
    nodes,
    scopes,
    scopeDeletes,
    cancelScopes: [...a.cancelScopes, ...b.cancelScopes],
    instance: a.instance || b.instance ? { ...a.instance, ...b.instance } : null,
    ready: [...a.ready, ...b.ready],
  };
}

/** Rows as _lock_and_load returns them. */
export type Loaded = { instance: { status: string; generation: number } | null; nodes: RawNode[]; scopes: RawScope[] };

/**
 * An instance's rows as this engine's last committed checkpoint of it left them: a guess that saves the
 * read, never trusted (df._apply checks what a checkpoint assumed). `complete`: made at the activation,
 * so a node not in `nodes` is still pending (no stamp, no state) and a scope not in `scopes` does not
 * exist; otherwise only what is in the maps is known. A null scope is known not to exist.
 */
export interface Snapshot {
  complete: boolean;
  /** Leaves with status running. Another one is a sibling branch whose checkpoint may land first. */
  running: Set<string>;
  instance: { status: string; generation: number };
  nodes: Map<string, RawNode>;
  scopes: Map<string, RawScope | null>;
}

/** The copy made at an instance's activation: nothing is running yet, every row not in it is pending. */
export function activationSnapshot(instance: { status: string; generation: number }): Snapshot {
  return { complete: true, running: new Set(), instance: { ...instance }, nodes: new Map(), scopes: new Map() };
}

/** Whether a leaf other than `leafId` is running in the copy. */
export function othersRunning(snap: Snapshot | undefined, leafId: string): boolean {
  return !!snap && snap.running.size > (snap.running.has(leafId) ? 1 : 0);
}

/** A copy that knows nothing yet (an instance this engine did not activate): only what is added is known. */
export function partialSnapshot(): Snapshot {
  return { complete: false, running: new Set<string>(), instance: { status: '', generation: 0 }, nodes: new Map(), scopes: new Map() };
}

/**
 * The read of `read` answered from the snapshot, or null when it does not know every row. Only a copy
 * made from the activation, and only while no other leaf is running, unless `siblings`: under a JOIN the
 * siblings' checkpoints change the rows this one reads, so such a copy serves only a branch's own write
 * (fan-out.ts), whose check leaves out the JOIN's count.
 */
export function fromSnapshot(snap: Snapshot | undefined, read: ReadSet, leafId: string, siblings = false): Loaded | null {
  if (!snap?.complete) return null;
  if (!siblings && othersRunning(snap, leafId)) return null;
  const nodes: RawNode[] = [];
  for (const id of read.nodes) {
    const n = snap.nodes.get(id) ?? (snap.complete ? { id, status: 'pending' as const, stamp: null, state: null } : undefined);
    if (!n) return null;
    nodes.push({ ...n });
  }
  const scopes: RawScope[] = [];
  for (const id of read.scopes) {
    const sc = snap.scopes.get(id);
    if (sc === undefined && !snap.complete) return null;
    if (sc) scopes.push({ ...sc, named: { ...sc.named } });
  }
  return { instance: { ...snap.instance }, nodes, scopes };
}

/** What df._apply checks before writing a checkpoint computed from `pre` (see 0018); any_state: not the state (0031). */
export type Expectation = {
  instance: Loaded['instance'];
  nodes: Record<string, RawNode & { any_state?: true }>;
  scopes: Record<string, RawScope | null>;
};

export function expectation(pre: Loaded, read: ReadSet): Expectation {
  const nodes: Record<string, RawNode> = {};
  for (const n of pre.nodes) nodes[n.id] = { id: n.id, status: n.status, stamp: n.stamp, state: n.state };
  const scopes: Record<string, RawScope | null> = {};
  for (const id of read.scopes) scopes[id] = null;
  for (const sc of pre.scopes) scopes[sc.id] = sc;
  return { instance: pre.instance, nodes, scopes };
}

/**
 * Moves the snapshot past a committed write: `pre` (the rows read or assumed), then `ch` as df._apply
 * writes it. False when the result is not knowable here (a signal floor is computed by the server).
 */
export function advanceSnapshot(
  snap: Snapshot,
  pre: Loaded,
  read: ReadSet,
  ch: Changes,
  isLeaf: (id: string) => boolean,
): boolean {
  if (!pre.instance) return false;
  const set = (n: RawNode) => {
    snap.nodes.set(n.id, n);
    if (n.status === 'running' && isLeaf(n.id)) snap.running.add(n.id);
    else snap.running.delete(n.id);
  };
  snap.instance = { ...pre.instance };
  for (const n of pre.nodes) set({ ...n });
  for (const id of read.scopes) if (!pre.scopes.some((x) => x.id === id)) snap.scopes.set(id, null);
  for (const sc of pre.scopes) snap.scopes.set(sc.id, { ...sc, named: { ...sc.named } });
  for (const [id, c] of ch.nodes) {
    if (c.signal_floor) return false;
    const cur = snap.nodes.get(id) ?? (snap.complete ? { id, status: 'pending' as const, stamp: null, state: null } : undefined);
    if (!cur) {
      if (c.status !== undefined && c.stamp !== undefined && 'state' in c) set({ id, status: c.status, stamp: c.stamp, state: c.state ?? null });
      continue;
    }
    set({
      id,
      status: c.status ?? cur.status,
      stamp: c.stamp !== undefined ? c.stamp : cur.stamp,
      state: 'state' in c && c.state !== undefined ? c.state : cur.state,
    });
  }
  for (const sc of ch.scopes.values()) {
    // df._apply's upsert: a new row takes every field (with its defaults), an existing one keeps parent/root.
    const old = snap.scopes.get(sc.id);
    snap.scopes.set(sc.id, {
      id: sc.id,
      parent: old ? old.parent : (sc.parent ?? null),
      root: old ? old.root : sc.root,
      generation: sc.generation ?? 1,
      named: { ...(sc.named ?? {}) },
      status: sc.status ?? 'running',
      result: sc.result ?? null,
    });
  }
  for (const id of ch.scopeDeletes) snap.scopes.set(id, null);
  for (const p of ch.cancelScopes) {
    for (const id of snap.scopes.keys()) if (id === p || id.startsWith(`${p}::`)) snap.scopes.set(id, null);
    snap.scopes.set(p, null);
  }
  if (ch.instance?.status) snap.instance.status = ch.instance.status;
  if (ch.instance?.generation !== undefined) snap.instance.generation = ch.instance.generation;
  return true;
}

export const toNodeState = (n: RawNode): NodeState => ({ id: n.id, status: n.status, stamp: n.stamp, state: n.state });
export const toScopeState = (s: RawScope): ScopeState => ({ ...s });

/** The state machine over loaded rows of a live instance (checkpoint.ts, resume.ts). */
export function checkpointOver(graph: Graph, now: Date, s: Pick<Loaded, 'nodes' | 'scopes'>, generation: number, readyAt?: Date): Checkpoint {
  return new Checkpoint({
    graph,
    now,
    nodes: s.nodes.map(toNodeState),
    scopes: s.scopes.map(toScopeState),
    instanceGeneration: generation,
    ...(readyAt ? { readyAt } : {}),
  });
}

export function serialize(ch: Changes, events: unknown[]) {
  return {
    nodes: [...ch.nodes.entries()].map(([id, c]) => ({ id, ...c })),
    scopes: [...ch.scopes.values()],
    scope_deletes: [...ch.scopeDeletes],
    cancel_scopes: ch.cancelScopes,
    ...(ch.instance ? { instance: ch.instance } : {}),
    events,
  };
}
