/**
 * The checkpoint: lock the instance, run one event on the state machine (graph/advance.ts), write its
 * changes, commit, and report what became ready. A checkpoint costs one round trip for the read (with
 * whatever the transaction owed in front of it) and rides its write on the COMMIT; computed from the
 * engine's own copy of the rows (snapshot.ts) it skips the read, and df._apply checks the copy
 * (PFS01: done again from a fresh read). With Tx.ahead the COMMIT's round trip also opens the next claim.
 */
import type { DbClient } from './db.ts';
import { Checkpoint } from '../graph/advance.ts';
import { MissingData, type Changes } from '../graph/changes.ts';
import { checkpointReadSet } from '../graph/graph.ts';
import { claimedRows, type ClaimedRow } from './queries/claim.ts';
import { applySql, CHECKPOINT_SAVEPOINT, claimNextSql, commitSql, lockAndLoadSql } from './queries/checkpoint.ts';
import { lastRows } from './sql-text.ts';
import { forget, graphOf, LEAF_ROOT, type EngineContext } from './context.ts';
import {
  activationSnapshot,
  advanceSnapshot,
  expectation,
  fromSnapshot,
  mergeChanges,
  othersRunning,
  overlay,
  partialSnapshot,
  serialize,
  checkpointOver,
  type Loaded,
} from './snapshot.ts';
import { ACTIVE } from './step-policy.ts';
import { branchChanges, branchExpectation, branchWrite } from './fan-out.ts';
import { sqlState, STALE_COPY } from './errors.ts';
import type { Tx, Written } from './tx.ts';
import type { ReadyNode, RunKind, RunResult } from './types.ts';

export interface CheckpointExtra {
  /** Audit entries written with the changes (df.events). */
  events?: unknown[];
  /** Columns of the leaf's own row written with the changes (its attempts, its lease cleared). */
  leafChange?: Record<string, unknown>;
  /** A scope that must still be running (the leaf's): else the step is abandoned. */
  requireScope?: string;
  /** An activation computed from the claimed row alone (nothing read). */
  fromClaim?: boolean;
  /** Read the rows even if the snapshot knows them (done again after PFS01). */
  fresh?: boolean;
  /** The rows must not be read here (the session is not ready for it): a read is a bug. */
  noRead?: boolean;
}

/**
 * Locks the instance, runs `event` on the state machine, records its write in `tx.write` (sent with
 * COMMIT by commitTx, or gathered by a batch). Returns null when the instance or the node's scope is
 * gone (cancelled, or a RACE loser): the caller abandons the step.
 *
 * When this engine's own last checkpoint of the instance left it a copy of the rows the state machine
 * needs (a Snapshot), it computes from that copy without reading, and the write carries the rows it
 * assumed: df._apply checks them under the instance lock and raises PFS01 if any changed, and commitTx
 * then checkpoints again from a fresh read (`fresh`). One round trip less per step (bench/ W1, W2).
 */
export async function checkpoint(
  ctx: EngineContext,
  client: DbClient,
  tx: Tx,
  row: ClaimedRow,
  now: Date,
  event: (cp: Checkpoint) => void,
  extra: CheckpointExtra = {},
): Promise<Changes | null> {
  const graph = await graphOf(ctx, client, row);
  const read = checkpointReadSet(graph, row.id, row.stamp);
  if (extra.requireScope && !read.scopes.includes(extra.requireScope)) read.scopes.push(extra.requireScope);
  const carry = tx.carry;
  let fresh = extra.fresh ?? false;
  // Each MissingData round must add a row to the read set (a deep nest of JOINs failing upwards needs a
  // round per level); one that adds nothing would repeat forever.
  for (let round = 0; round < 1000; round++) {
    let pre: Loaded;
    let assumed = false;
    let branch = false;
    if (extra.fromClaim && round === 0) {
      // An activation: before it, every node is pending and no scope exists, and the claim read the
      // instance. If the state machine asks for a row anyway (MissingData), the next round reads it.
      pre = { instance: { status: row.instance_status, generation: row.generation }, nodes: [], scopes: [] };
      tx.activated = { instanceId: row.instance_id, snap: activationSnapshot(pre.instance!) };
    } else {
      const snap = ownCopy(tx, row.instance_id) ?? ctx.snapshots.get(row.instance_id);
      let cached = fresh ? null : fromSnapshot(snap, read, row.id);
      // Other leaves running (a JOIN's branches): the copy serves only a write of this branch's own rows.
      if (!cached && !fresh && !carry && othersRunning(snap, row.id)) {
        cached = fromSnapshot(snap, read, row.id, true);
        branch = cached !== null;
      }
      if (cached) {
        pre = cached;
        assumed = true;
      } else {
        if (extra.noRead) throw new Error(`checkpoint of ${row.instance_id}/${row.id} needed to read rows (unexpected here)`);
        // One round trip: whatever the transaction still owes (savepoint release, session restore), then
        // lock the instance and read the rows the state machine needs.
        const res = await client.query(lockAndLoadSql(tx.owes.take(), row.instance_id, read));
        pre = lastRows<{ s: Loaded }>(res)[0].s;
      }
    }
    const s = carry ? overlay(pre, carry) : pre;
    if (
      !s.instance ||
      !ACTIVE.has(s.instance.status) ||
      (extra.requireScope && !s.scopes.some((x) => x.id === extra.requireScope && x.status === 'running'))
    ) {
      if (!assumed) return null;
      // Only the copy says the instance or the scope is gone: make sure from the rows themselves.
      ctx.snapshots.delete(row.instance_id);
      tx.activated = undefined;
      continue;
    }
    const cp = checkpointOver(graph, now, s, s.instance.generation, new Date(row.run_at));
    try {
      event(cp);
    } catch (e) {
      if (!(e instanceof MissingData)) throw e;
      const before = read.nodes.length + read.scopes.length;
      for (const n of e.nodes) if (!read.nodes.includes(n)) read.nodes.push(n);
      for (const sc of e.scopes) if (!read.scopes.includes(sc)) read.scopes.push(sc);
      // The copy lacks a row the state machine expects to exist: it is out of date, read the rows.
      if (assumed) fresh = true;
      else if (read.nodes.length + read.scopes.length === before) break;
      continue;
    }
    const own = cp.changes;
    if (extra.leafChange) own.nodes.set(row.id, { ...extra.leafChange, ...own.nodes.get(row.id) });
    // A copy with siblings running is good only for a write of this branch's own rows (fan-out.ts).
    const bw = branch ? branchWrite(graph, row.id, pre.nodes, own) : null;
    if (branch && !bw) {
      fresh = true;
      continue;
    }
    // The activation this step continues (activate.ts) is written with this checkpoint.
    const ch = carry ? mergeChanges(carry, own) : own;
    tx.carry = undefined;
    // Serialized when commitTx sends it: an activation whose first step continues in this transaction is
    // never sent on its own (activateAndContinue drops it), so it is not serialized either.
    const changes = bw ? () => branchChanges(serialize(ch, extra.events ?? []), bw) : () => serialize(ch, extra.events ?? []);
    if (assumed) ctx.counts.assumed++;
    if (bw) ctx.counts.branches++;
    // Written together with COMMIT (see commitTx): one round trip for the checkpoint's write.
    if (assumed) {
      const expect = bw ? branchExpectation(expectation(pre, read), bw) : expectation(pre, read);
      tx.write = { instanceId: row.instance_id, before: tx.keepsOwed ? '' : tx.owes.take(), changes, expect, branch: bw !== null };
      tx.redo = () => {
        tx.carry = carry;
        return checkpoint(ctx, client, tx, row, now, event, { ...extra, fresh: true, fromClaim: false });
      };
    } else {
      tx.write = { instanceId: row.instance_id, before: '', changes, expect: null };
      tx.redo = undefined;
    }
    tx.written = { instanceId: row.instance_id, copy: ownCopy(tx, row.instance_id), pre, read, ch };
    if (ch.instance?.status === 'completed' || ch.instance?.status === 'failed') forget(ctx, row.instance_id);
    return ch;
  }
  throw new Error(`checkpoint of ${row.instance_id}/${row.id} kept needing more rows`);
}

/**
 * The crash point before commit, then the checkpoint's write and COMMIT in one round trip; with
 * `tx.ahead`, the same round trip opens the next claim transaction and claims (tx.next). Returns the
 * changes committed: `ch`, or those of a checkpoint done again because its copy was stale (null: the
 * instance or the step's scope is gone after all; the transaction is still open, nothing written).
 */
export async function commitTx(ctx: EngineContext, client: DbClient, tx: Tx, row: ClaimedRow, ch: Changes | null): Promise<{ ch: Changes | null } | null> {
  await ctx.hit('before-commit', { instanceId: row.instance_id, nodeId: row.id });
  const apply = tx.write ? applySql(tx.write) : null;
  const next = tx.ahead?.(1);
  let res: unknown;
  try {
    res = await client.query(commitSql(apply, next ? claimNextSql(next, ctx.stepTimeoutMs) : null));
  } catch (err) {
    const redo = tx.redo;
    if (!redo || sqlState(err) !== STALE_COPY) throw err;
    ctx.counts.stale++;
    // A branch write refused: usually only the copy's count of finished branches was behind (the last
    // branch), and the fresh read of the redo brings the rows it reads up to date; the rest stays good.
    if (!tx.write?.branch) {
      ctx.snapshots.delete(row.instance_id);
      tx.activated = undefined;
    }
    tx.redo = undefined;
    tx.written = undefined;
    await client.query(`ROLLBACK TO SAVEPOINT ${CHECKPOINT_SAVEPOINT}`);
    const again = await redo();
    if (!again) return null;
    return commitTx(ctx, client, tx, row, again);
  }
  tx.write = null;
  tx.redo = undefined;
  if (tx.written) remember(ctx, tx.written);
  tx.written = undefined;
  if (next) {
    const results = res as { rows: ClaimedRow[] }[];
    // The claim's result comes just before the savepoint's.
    tx.next = claimedRows(results[results.length - 2]);
  }
  return { ch };
}

/** After a commit: the instance's rows as this engine now knows them (snapshot.ts). */
export function remember(ctx: EngineContext, w: Written): void {
  const graph = ctx.graphs.get(w.instanceId);
  if (!graph) {
    ctx.snapshots.delete(w.instanceId);
    return;
  }
  const snap = w.copy ?? ctx.snapshots.get(w.instanceId) ?? partialSnapshot();
  if (!advanceSnapshot(snap, w.pre, w.read, w.ch, (id) => LEAF_ROOT.has(graph.nodes.get(id)?.type ?? ''))) {
    ctx.snapshots.delete(w.instanceId);
    return;
  }
  ctx.snapshots.set(w.instanceId, snap);
}

/** The copy this transaction's own activation of `instanceId` made (not yet committed), if any. */
const ownCopy = (tx: Tx, instanceId: string) => (tx.activated?.instanceId === instanceId ? tx.activated.snap : undefined);

function readyOf(instanceId: string, ch: Changes | null): ReadyNode[] {
  return (ch?.ready ?? []).map((r) => ({ instanceId, nodeId: r.id, runAt: new Date(r.runAt) }));
}

/** After a commit: the crash point, then the newly ready nodes handed to the dispatcher. */
export async function afterCommit(ctx: EngineContext, row: ClaimedRow, kind: RunKind, ch: Changes | null): Promise<RunResult> {
  await ctx.hit('after-commit', { instanceId: row.instance_id, nodeId: row.id });
  const ready = readyOf(row.instance_id, ch);
  if (ready.length && ctx.options.dispatch) {
    try {
      await ctx.options.dispatch(ready);
    } catch (err) {
      // The rows are ready whatever happens here; the sweep finds any that lost their message.
      ctx.log.warn('dispatch failed', { instance_id: row.instance_id, node_id: row.id, error: err });
    }
  }
  return { kind, instanceId: row.instance_id, nodeId: row.id, ready, nodeType: row.node_type, runAt: row.run_at, failed: ch?.nodes.get(row.id)?.status === 'failed' };
}

/** A run that did nothing but take its row out of the queue. */
export function withdrawn(row: ClaimedRow): RunResult {
  return { kind: 'withdrawn', instanceId: row.instance_id, nodeId: row.id, ready: [], nodeType: row.node_type, runAt: row.run_at };
}
