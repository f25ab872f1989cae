/**
 * What the state machine (advance.ts) reads and writes: node and scope states as loaded from df.nodes and
 * df.scopes, the row changes a checkpoint records (written by df._apply), an attempt's Outcome, and
 * MissingData, thrown when the machine needs a row it was not given.
 */
import type { NodeStatus } from './schema.ts';

export type Outcome = { kind: 'ok'; text: string } | { kind: 'fail'; error: string } | { kind: 'break'; text: string };

export type ScopeStatus = 'running' | 'completed' | 'failed' | 'broke' | 'cancelled';

export interface ScopeState {
  id: string;
  parent: string | null;
  root: string;
  generation: number;
  /** result_name → result text (in-memory form, column order kept). */
  named: Record<string, string>;
  status: ScopeStatus;
  /** The outcome text once finished: the result, the error, or the break value. */
  result: string | null;
}

export interface NodeState {
  id: string;
  status: NodeStatus;
  stamp: string | null;
  state: Record<string, unknown> | null;
}

export interface NodeChange {
  status?: NodeStatus;
  /** The JSON text to store in `result`, or null for SQL NULL. */
  result?: string | null;
  stamp?: string;
  run_at?: string | null;
  state?: Record<string, unknown> | null;
  attempts?: number;
  locked_until?: string | null;
  /** Record the instance's newest signal id in state.after_signal_id (SIGNAL subscription). */
  signal_floor?: boolean;
}

export interface InstanceChange {
  status?: 'running' | 'completed' | 'failed';
  /** null: cleared (a resumed instance). */
  output?: string | null;
  generation?: number;
}

export interface Changes {
  nodes: Map<string, NodeChange>;
  scopes: Map<string, ScopeState>;
  scopeDeletes: Set<string>;
  /** Scopes whose queued rows are withdrawn and whose scope rows (and nested ones) are deleted. */
  cancelScopes: string[];
  instance: InstanceChange | null;
  /** Leaves made ready, with when they are due (ISO). */
  ready: { id: string; runAt: string }[];
}

export class MissingData extends Error {
  constructor(
    readonly nodes: string[],
    readonly scopes: string[],
  ) {
    super(`checkpoint needs nodes [${nodes.join(', ')}] and scopes [${scopes.join(', ')}]`);
  }
}
