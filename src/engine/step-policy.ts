/**
 * The rules that decide how a claimed row runs, as pure functions of the row and the engine's defaults:
 * the substitution context its text is filled from, whether its instance may run at all (the superuser
 * gate, a vanished owner), its statement_timeout, and what a finished attempt becomes (complete, or a
 * retry after a backoff). Also the one conversion from a step's outcome to the state machine's.
 * No I/O: see step-policy.test.ts.
 */
import type { Checkpoint } from '../graph/advance.ts';
import type { Outcome } from '../graph/changes.ts';
import type { SubstitutionContext } from '../graph/substitute.ts';
import type { ClaimedRow } from './queries/claim.ts';
import type { StepOutcome } from './executors/outcome.ts';
import { backoffMs, type RetryPolicy } from './retry.ts';

/** The engine-wide defaults a row's own options (df.retry, df.timeout) override. */
export interface StepDefaults {
  /** statement_timeout for a step's SQL (ms; 0 = none). */
  readonly stepTimeoutMs: number;
  readonly retry: RetryPolicy;
  /** The superuser gate's override; undefined: the database setting the claim read. */
  readonly enableSuperuserInstances: boolean | undefined;
}

/** Instance statuses in which a node may still run. */
export const ACTIVE: ReadonlySet<string> = new Set(['pending', 'running']);

export function substitutionContext(row: ClaimedRow): SubstitutionContext {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(row.vars ?? {})) if (v !== null) vars[k] = v;
  // A workflow's start input is the named result `input`; a node named `input` shadows it.
  const results = row.input === null ? (row.named ?? {}) : { input: row.input, ...row.named };
  return { instanceId: row.instance_id, label: row.label, vars, results };
}

/** The superuser gate and a vanished owner, checked when an instance is first loaded (pg_durable's identity rules). */
export function ownerBlock(d: StepDefaults, row: ClaimedRow): string | null {
  if (!row.owner_exists) return `Instance ${row.instance_id}: submitted_by role no longer exists in pg_roles`;
  const gateOn = d.enableSuperuserInstances ?? ['on', 'true', '1', 'yes'].includes(row.superuser_gate.toLowerCase());
  if (row.owner_is_superuser && !gateOn) {
    return `pg_durable blocked instance ${row.instance_id}: submitted_by role "${row.owner}" is a superuser, but pg_durable.enable_superuser_instances is off`;
  }
  return null;
}

/** The node's own df.retry policy, else the engine default. */
export function policyFor(d: StepDefaults, row: ClaimedRow): RetryPolicy {
  const r = row.options?.retry;
  if (!r) return d.retry;
  return { maxAttempts: r.max_attempts, baseMs: r.backoff_seconds * 1000, maxMs: r.max_backoff_seconds * 1000, jitter: 1 };
}

/** statement_timeout for a SQL step: the node's df.timeout, else the engine default. */
export function timeoutFor(d: StepDefaults, row: ClaimedRow): number {
  const t = row.options?.timeout_seconds;
  return typeof t === 'number' && t > 0 ? Math.round(t * 1000) : d.stepTimeoutMs;
}

/** The node's own statement_timeout when it differs from the default the claim set, else null. */
export function ownTimeout(d: StepDefaults, row: ClaimedRow): number | null {
  const timeout = timeoutFor(d, row);
  return timeout === d.stepTimeoutMs ? null : timeout;
}

/** A step's outcome as the state machine's. */
export function toOutcome(out: StepOutcome): Outcome {
  return out.ok ? { kind: 'ok', text: out.resultText } : { kind: 'fail', error: out.error };
}

/**
 * Turns a finished attempt into the checkpoint event: complete, or retry per policy. Pushes the audit
 * entries (`attempt_failed` for a retry, `failed` for a final failure) onto `events`.
 */
export function leafEvent(d: StepDefaults, row: ClaimedRow, outcome: Outcome, now: Date, attempt: number, events: unknown[]): (cp: Checkpoint) => void {
  const policy = policyFor(d, row);
  if (outcome.kind === 'fail' && attempt < policy.maxAttempts) {
    const at = new Date(now.getTime() + backoffMs(policy, attempt));
    events.push({ node_id: row.id, kind: 'attempt_failed', attempt, detail: outcome.error });
    return (cp: Checkpoint) => cp.retry(row.id, at);
  }
  if (outcome.kind === 'fail') events.push({ node_id: row.id, kind: 'failed', attempt, detail: outcome.error });
  return (cp: Checkpoint) => cp.complete(row.id, row.stamp!, outcome);
}

/** Whether a leaf event's entries schedule a retry (the run is reported as kind 'retry'). */
export function isRetry(events: readonly unknown[]): boolean {
  return events.some((e) => (e as { kind: string }).kind === 'attempt_failed');
}
