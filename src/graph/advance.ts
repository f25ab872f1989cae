/**
 * Graph semantics (SPEC §3) as a pure state machine: given an instance's static graph, the dynamic state
 * of the rows it needs and one event (start, a leaf's outcome, a loop's paced resume), it records the
 * row changes, the newly ready leaves and the instance's new status. No I/O and no clock: `now` is an
 * argument. The engine loads what a checkpoint needs, runs this, and writes `changes` in the same
 * transaction (DESIGN 6).
 *
 * Scopes. A scope is one durable execution context: the instance root, a JOIN/RACE branch, or a loop
 * that is not already the root of its scope (ids and stamps: scope-ids.ts). Loops bump their scope's
 * generation per iteration. The graph is built in graph.ts; what the machine reads and writes is in
 * changes.ts (re-exported here); the state it works on and how changes are recorded, in
 * checkpoint-state.ts (the base class).
 *
 * When the machine needs a row it was not given, it throws MissingData naming it; the engine loads it
 * and runs the event again from scratch (the machine is deterministic, so a re-run is safe).
 */
import { nextFireAfter } from './cron.ts';
import { NodeConfigError, parseNodeConfig, type NodeType } from './schema.ts';
import { evaluateIfRows, isConditionTrue } from './truthy.ts';
import { branchCount, branchesOf, type GraphNode } from './graph.ts';
import { childScopeId, scopeOfStamp, stampOf } from './scope-ids.ts';
import type { NodeChange, Outcome, ScopeState } from './changes.ts';
import { CheckpointState } from './checkpoint-state.ts';
import { breakValueText, storedResult } from './result-text.ts';
import { replayOf } from './replay.ts';

export * from './graph.ts';
export * from './scope-ids.ts';
export * from './changes.ts';
export * from './result-text.ts';

export const BREAK_OUTSIDE_LOOP =
  'df.break() was called outside of a loop. df.break() may only be used inside df.loop().';
export const LOOP_ITERATION_CAP = 100_000;
export const LOOP_MIN_ITERATION_MS = 1000;
const LOSER_LOOP = 'Loop branch cancelled after losing RACE';
const STORES_NAME: ReadonlySet<NodeType> = new Set(['SQL', 'THEN', 'IF', 'JOIN', 'RACE', 'LOOP', 'SIGNAL', 'HTTP', 'HTTP_MULTIPART']);

export type { CheckpointInput } from './checkpoint-state.ts';

/** The events and the rules; state access and change recording are inherited from CheckpointState. */
export class Checkpoint extends CheckpointState {
  // ----- events -------------------------------------------------------------------------------

  /** The instance's first claim: create the root scope and activate the root node. */
  start(): void {
    const scope: ScopeState = {
      id: this.g.instanceId,
      parent: null,
      root: this.g.root,
      generation: this.instanceGeneration,
      named: {},
      status: 'running',
      result: null,
    };
    this.putScope(scope);
    this.setInstance({ status: 'running' });
    this.activate(this.g.root, scope);
  }

  /**
   * df.resume (migrations/*_resume.sql): the root activated again in the instance's generation. A leaf that
   * completed in the activation it gets again (the same stamp) finishes at once with its recorded result
   * (`done`: id → result text) instead of running; every other leaf is activated afresh (attempts 0).
   * Scopes reopen in the generation their rows were stamped with (a loop resumes in its iteration). The
   * old scopes are replaced; leaves still queued from the failed run and not activated again are withdrawn.
   */
  resume(done: ReadonlyMap<string, string>): void {
    const before = [...this.nodeStates.values()];
    this.replay = replayOf(before, done);
    for (const id of this.scopeStates.keys()) if (id !== this.g.instanceId) this.deleteScope(id);
    // Cleared first: a resume that fails again at once (a replayed df.break() outside a loop) sets it anew.
    this.setInstance({ output: null });
    this.start();
    this.replay = null;
    for (const n of before) if (n.status === 'running' && !this.changes.nodes.has(n.id)) this.setNode(n.id, { run_at: null, locked_until: null });
  }

  /** A leaf finished in the scope named by its stamp. */
  complete(leafId: string, stamp: string, outcome: Outcome): void {
    this.finish(leafId, this.scope(scopeOfStamp(stamp)), outcome);
  }

  /** A leaf's attempt failed and is retried later: keep it running, due at `runAt`. */
  retry(leafId: string, runAt: Date): void {
    this.setNode(leafId, { run_at: runAt.toISOString(), locked_until: null });
    this.changes.ready.push({ id: leafId, runAt: runAt.toISOString() });
  }

  /** A loop whose next iteration was held back by the 1 s pacing rule is due. */
  resumeLoop(loopId: string, stamp: string): void {
    const scope = this.scope(scopeOfStamp(stamp));
    const st = this.node(loopId).state ?? {};
    this.setNode(loopId, { run_at: null, state: { ...st, resume: false } });
    this.activate(this.g.nodes.get(loopId)!.left!, scope);
  }

  // ----- activation ---------------------------------------------------------------------------

  private activate(id: string, scope: ScopeState): void {
    const n = this.gnode(id);
    if (n.type === 'LOOP' && scope.root !== id) {
      this.activateIn(id, this.openScope(scope, id));
      return;
    }
    this.activateIn(id, scope);
  }

  private activateIn(id: string, scope: ScopeState): void {
    const n = this.gnode(id);
    const stamp = stampOf(scope);
    const replayed = this.replay?.take(id, stamp);
    if (replayed !== undefined) return this.finish(id, scope, { kind: 'ok', text: replayed });
    const running: NodeChange = { status: 'running', result: null, stamp, run_at: null, state: null, attempts: 0, locked_until: null };
    const nowIso = this.now.toISOString();
    switch (n.type) {
      case 'THEN':
        this.setNode(id, running);
        this.activate(n.left!, scope);
        return;
      case 'IF': {
        this.setNode(id, running);
        let cfg;
        try {
          cfg = parseNodeConfig({ node_type: 'IF', query: n.query });
        } catch (e) {
          this.finish(id, scope, { kind: 'fail', error: errorText(e) });
          return;
        }
        if (cfg.node_type !== 'IF') return;
        if (cfg.condition.kind === 'node') {
          this.activate(cfg.condition.nodeId, scope);
          return;
        }
        const r = evaluateIfRows(cfg.condition.resultName, scope.named);
        if (!r.ok) this.finish(id, scope, { kind: 'fail', error: r.error });
        else this.activate(r.value ? n.left! : n.right!, scope);
        return;
      }
      case 'LOOP':
        this.setNode(id, { ...running, state: { iter_started_at: nowIso } });
        this.activate(n.left!, scope);
        return;
      case 'JOIN':
      case 'RACE':
        this.setNode(id, { ...running, state: n.type === 'JOIN' ? { done: 0 } : null });
        for (const b of branchesOf(n)) {
          // A branch that ends while starting (a BREAK, an if_rows error) decides a RACE at once: the
          // loser is not started (a loser LOOP keeps the `failed` stamp raceBranchDone gave it, §3.5).
          if (n.type === 'RACE' && this.node(id).status !== 'running') break;
          this.activate(b, this.openScope(scope, b));
        }
        return;
      case 'BREAK': {
        this.setNode(id, running);
        let value: string;
        try {
          const cfg = parseNodeConfig({ node_type: 'BREAK', query: n.query });
          value = cfg.node_type === 'BREAK' ? breakValueText(cfg.config.break_value) : 'null';
        } catch (e) {
          this.finish(id, scope, { kind: 'fail', error: errorText(e) });
          return;
        }
        this.finish(id, scope, { kind: 'break', text: value });
        return;
      }
      case 'SQL':
      case 'HTTP':
      case 'HTTP_MULTIPART':
        this.makeReady(id, { ...running, run_at: this.readyAt }, this.readyAt);
        return;
      case 'SLEEP':
      case 'WAIT_SCHEDULE':
      case 'SIGNAL': {
        let due: Date | null;
        let extra: NodeChange = {};
        try {
          const cfg = parseNodeConfig({ node_type: n.type, query: n.query });
          if (cfg.node_type === 'SLEEP') due = new Date(this.now.getTime() + cfg.seconds * 1000);
          else if (cfg.node_type === 'WAIT_SCHEDULE') {
            due = nextFireAfter(cfg.config.cron_expr, this.now);
            if (!due) throw new NodeConfigError(`Invalid cron expression '${cfg.config.cron_expr}': it never fires`);
          } else if (cfg.node_type === 'SIGNAL') {
            const t = cfg.config.timeout_seconds;
            due = t == null ? null : new Date(this.now.getTime() + t * 1000);
            extra = { signal_floor: true, state: { subscribed_at: nowIso, deadline: due?.toISOString() ?? null } };
          } else due = this.now;
        } catch (e) {
          this.setNode(id, running);
          this.finish(id, scope, { kind: 'fail', error: errorText(e) });
          return;
        }
        if (due) this.makeReady(id, { ...running, ...extra, run_at: due.toISOString() }, due.toISOString());
        else this.setNode(id, { ...running, ...extra });
        return;
      }
    }
  }

  // ----- completion and propagation -----------------------------------------------------------

  private finish(id: string, scope: ScopeState, outcome: Outcome): void {
    const n = this.gnode(id);
    const prior = this.nodeStates.get(id)?.state ?? null;
    if (outcome.kind === 'ok') {
      this.setNode(id, { status: 'completed', result: storedResult(outcome.text), run_at: null, locked_until: null });
      if (n.resultName && STORES_NAME.has(n.type)) {
        scope.named[n.resultName] = outcome.text;
        this.putScope(scope);
      }
    } else if (outcome.kind === 'fail') {
      this.setNode(id, { status: 'failed', result: JSON.stringify(outcome.error), run_at: null, locked_until: null });
    } else {
      this.setNode(id, { status: 'completed', result: storedResult(outcome.text), run_at: null, locked_until: null, state: { ...prior, broke: true } });
    }
    this.propagate(id, scope, outcome);
  }

  private propagate(id: string, scope: ScopeState, outcome: Outcome): void {
    if (id === scope.root) {
      this.scopeFinished(scope, outcome);
      return;
    }
    const n = this.gnode(id);
    const p = this.gnode(n.parent!);
    switch (p.type) {
      case 'THEN':
        if (id === p.left && outcome.kind === 'ok') this.activate(p.right!, scope);
        else this.finish(p.id, scope, outcome);
        return;
      case 'IF':
        if (id === p.condition && outcome.kind === 'ok') this.activate(isConditionTrue(outcome.text) ? p.left! : p.right!, scope);
        else this.finish(p.id, scope, outcome);
        return;
      case 'LOOP':
        this.loopChildDone(p, id, scope, outcome);
        return;
      default:
        throw new Error(`node ${id} under ${p.type} ${p.id} is not a scope root`);
    }
  }

  private loopChildDone(loop: GraphNode, childId: string, scope: ScopeState, outcome: Outcome): void {
    if (outcome.kind === 'fail') return this.finish(loop.id, scope, outcome);
    if (outcome.kind === 'break') return this.finish(loop.id, scope, { kind: 'ok', text: outcome.text });
    if (childId === loop.left && loop.condition) {
      const st = this.node(loop.id).state ?? {};
      this.setNode(loop.id, { state: { ...st, body_result: outcome.text } });
      this.activate(loop.condition, scope);
      return;
    }
    if (childId === loop.condition && !isConditionTrue(outcome.text)) {
      const body = (this.node(loop.id).state ?? {}).body_result;
      return this.finish(loop.id, scope, { kind: 'ok', text: typeof body === 'string' ? body : 'null' });
    }
    this.iterate(loop, scope);
  }

  private iterate(loop: GraphNode, scope: ScopeState): void {
    const next = scope.generation + 1;
    if (next >= LOOP_ITERATION_CAP) {
      return this.finish(loop.id, scope, {
        kind: 'fail',
        error: `Loop exceeded maximum iteration count of ${LOOP_ITERATION_CAP}. Use df.break() to exit the loop or restructure the workflow.`,
      });
    }
    const started = Date.parse(String((this.node(loop.id).state ?? {}).iter_started_at ?? this.now.toISOString()));
    const due = new Date(Math.max(this.now.getTime(), started + LOOP_MIN_ITERATION_MS));
    scope.generation = next;
    if (scope.parent === null) {
      // The instance-root loop starts every iteration with no named results (SPEC §3.6).
      scope.named = {};
      this.instanceGeneration = next;
      this.setInstance({ generation: next });
    }
    this.putScope(scope);
    const stamp = stampOf(scope);
    if (due.getTime() > this.now.getTime()) {
      this.makeReady(loop.id, { status: 'running', result: null, stamp, run_at: due.toISOString(), state: { iter_started_at: due.toISOString(), resume: true } }, due.toISOString());
      return;
    }
    this.setNode(loop.id, { status: 'running', result: null, stamp, run_at: null, state: { iter_started_at: this.now.toISOString() } });
    this.activate(loop.left!, scope);
  }

  private scopeFinished(scope: ScopeState, outcome: Outcome): void {
    scope.status = outcome.kind === 'ok' ? 'completed' : outcome.kind === 'fail' ? 'failed' : 'broke';
    scope.result = outcome.kind === 'fail' ? outcome.error : outcome.text;
    this.putScope(scope);
    if (scope.parent === null) {
      if (outcome.kind === 'ok') this.setInstance({ status: 'completed', output: outcome.text });
      else this.setInstance({ status: 'failed', output: outcome.kind === 'fail' ? outcome.error : BREAK_OUTSIDE_LOOP });
      return;
    }
    const parentScope = this.scope(scope.parent);
    const root = this.gnode(scope.root);
    const p = root.parent ? this.gnode(root.parent) : null;
    if (p && p.type === 'JOIN') return this.joinBranchDone(p, parentScope);
    if (p && p.type === 'RACE') return this.raceBranchDone(p, parentScope, scope, outcome);
    // A non-root loop's scope: its names flow back to the parent, then the parent goes on.
    Object.assign(parentScope.named, scope.named);
    this.putScope(parentScope);
    this.deleteScope(scope.id);
    this.propagate(scope.root, parentScope, outcome);
  }

  private joinBranchDone(join: GraphNode, scope: ScopeState): void {
    const st = this.node(join.id).state ?? {};
    const done = Number(st.done ?? 0) + 1;
    this.setNode(join.id, { state: { ...st, done } });
    if (done < branchCount(join)) return;
    const branches = branchesOf(join);
    const scopes = this.scopes(branches.map((b) => childScopeId(scope, b)));
    // Walk the branches in order (pg_durable's execute_join_node): a failed branch fails the JOIN
    // before its names are merged; a branch's names are merged, then its break (if any) is re-raised.
    // Branches after the deciding one contribute nothing.
    let outcome: Outcome | null = null;
    for (const [i, s] of scopes.entries()) {
      if (s.status === 'failed') {
        outcome = { kind: 'fail', error: `JOIN branch ${i + 1} failed: ${s.result}` };
        break;
      }
      Object.assign(scope.named, s.named);
      if (s.status === 'broke') {
        outcome = { kind: 'break', text: s.result ?? 'null' };
        break;
      }
    }
    for (const s of scopes) this.deleteScope(s.id);
    this.putScope(scope);
    this.finish(join.id, scope, outcome ?? { kind: 'ok', text: `[${scopes.map((s) => s.result ?? 'null').join(',')}]` });
  }

  private raceBranchDone(race: GraphNode, scope: ScopeState, branch: ScopeState, outcome: Outcome): void {
    const r = this.node(race.id);
    if (r.status !== 'running' || r.stamp !== stampOf(scope)) {
      this.deleteScope(branch.id); // the race was decided already; a late finisher changes nothing
      return;
    }
    const side = branch.root === race.left ? 'left' : 'right';
    const loserRoot = side === 'left' ? race.right! : race.left!;
    const loserScope = childScopeId(scope, loserRoot);
    this.changes.cancelScopes.push(loserScope);
    if (this.gnode(loserRoot).type === 'LOOP') {
      this.setNode(loserRoot, { status: 'failed', result: JSON.stringify(LOSER_LOOP), stamp: `${loserScope}::1`, run_at: null });
    }
    this.deleteScope(branch.id);
    if (outcome.kind === 'fail') {
      this.finish(race.id, scope, { kind: 'fail', error: `RACE ${side} branch failed: ${outcome.error}` });
      return;
    }
    // The winner's names are merged whether it completed or broke (pg_durable merges the branch
    // envelope's results before re-raising its break).
    Object.assign(scope.named, branch.named);
    this.putScope(scope);
    this.finish(race.id, scope, outcome);
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

