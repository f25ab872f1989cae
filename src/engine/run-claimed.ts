/**
 * One claimed row, run inside its open claim transaction and committed: a withdrawn or blocked row, an
 * instance's activation (and the first step it continues with), a loop's paced resume, or a leaf: SQL
 * (the transactional path), a timer, a signal wait, or a row handed to the lease path (HTTP and
 * non-transactional SQL). Every leaf's attempt ends in one checkpoint (checkpoint.ts).
 */
import type { DbClient } from './db.ts';
import type { Changes, Outcome } from '../graph/changes.ts';
import { scopeOfStamp } from '../graph/scope-ids.ts';
import { substitute } from '../graph/substitute.ts';
import type { ClaimedRow } from './queries/claim.ts';
import { failInstance, rereadJoined, withdraw } from './queries/steps.ts';
import { isNonTransactional, runBatchedStep, runSqlStep } from './executors/sql.ts';
import { foreignOwnerProblem, nonTransactionalForeignError, runSqlStepAsOwner } from './executors/runner.ts';
import type { StepOutcome } from './executors/outcome.ts';
import { otherDatabase } from './executors/other-database.ts';
import { signalOutcome } from './executors/signal.ts';
import { timerOutcome } from './executors/timer.ts';
import { capStepResult } from './limits.ts';
import { isSimpleStatement } from './batch.ts';
import { activateAndContinue, oneStepText } from './activate.ts';
import { isResume, resumeInstance } from './resume.ts';
import { afterCommit, checkpoint, commitTx, withdrawn } from './checkpoint.ts';
import { roleOf, type EngineContext } from './context.ts';
import { DEFAULT_LEASE_MS, httpTimeoutSeconds, leaseHttp, takeLease } from './lease.ts';
import { ACTIVE, isRetry, leafEvent, ownerBlock, ownTimeout, substitutionContext, toOutcome } from './step-policy.ts';
import { STEP_SAVEPOINT_NAME, type Tx } from './tx.ts';
import type { RunKind, RunResult } from './types.ts';

/** Runs a claimed row inside the open claim transaction and commits (or returns the row to run on a lease). */
export async function runClaimed(
  ctx: EngineContext,
  client: DbClient,
  tx: Tx,
  row: ClaimedRow,
  now: Date,
  /** A SQL step's outcome when its statement already ran (a one-step instance's early step, below). */
  ran?: StepOutcome,
): Promise<RunResult | { lease: ClaimedRow }> {
  // Before withdrawing a row for what the claim read of its instance or scope, read them again: the claim
  // may have locked a newer version of the row than its snapshot shows them for (rereadJoined).
  if (looksWithdrawn(row)) row = await rereadJoined(client, row);
  if (!ACTIVE.has(row.instance_status)) {
    await withdraw(client, row);
    return commit(ctx, client, tx, row, 'withdrawn', null);
  }
  // The instance's first claim: df.start only made its root claimable.
  if (row.id === row.root_node && row.stamp === null) {
    // Another role's instance runs only if its SQL steps can run as that role (its step runner).
    const worker = await roleOf(ctx, client);
    const blocked = ownerBlock(ctx, row) ?? (worker !== row.owner ? await foreignOwnerProblem(client, row.owner) : null);
    if (blocked) {
      await withdraw(client, row);
      await failInstance(client, row.instance_id, blocked);
      ctx.log.warn('instance blocked', { instance_id: row.instance_id, node_id: row.id, reason: blocked });
      return commit(ctx, client, tx, row, 'withdrawn', null);
    }
    const early = worker === row.owner && tx.owes.pending ? oneStepText(ctx, row) : null;
    if (early !== null) return runOneStep(ctx, client, tx, row, now, early);
    // The first step runs under the claim's savepoint, still open (activate.ts).
    const { ch, next } = await activateAndContinue(ctx, client, tx, row, now, { needsStepSavepoint: true });
    if (!ch) return abandon(client, row);
    if (next) {
      await ctx.hit('after-claim', { instanceId: next.instance_id, nodeId: next.id });
      return runClaimed(ctx, client, tx, next, now);
    }
    return commit(ctx, client, tx, row, 'start', ch);
  }
  // df.resume made a failed instance's root claimable again (resume.ts).
  if (isResume(row)) {
    const ch = await resumeInstance(ctx, client, tx, row, now);
    return ch ? commit(ctx, client, tx, row, 'resume', ch) : abandon(client, row);
  }
  // Only a leaf the engine activated itself runs: status running, in a live scope. Anything else
  // (a run_at set by hand, a stale row) is withdrawn.
  if (row.scope_status !== 'running' || row.stamp === null || row.status !== 'running') return abandon(client, row);
  if (row.state && row.state.resume === true) {
    const ch = await checkpoint(ctx, client, tx, row, now, (cp) => cp.resumeLoop(row.id, row.stamp!));
    return ch ? commit(ctx, client, tx, row, 'resume', ch) : abandon(client, row);
  }

  switch (row.node_type) {
    case 'SQL': {
      if (ran) {
        tx.owes.releaseSavepoint(STEP_SAVEPOINT_NAME).restoreSession();
        return finishLeaf(ctx, client, tx, row, now, 'step', toOutcome(ran));
      }
      const sub = substitute(row.query ?? '', substitutionContext(row), 'sql');
      if (!sub.ok) return finishLeaf(ctx, client, tx, row, now, 'step', { kind: 'fail', error: sub.error });
      // Another database's step can't commit with its checkpoint here: the lease path (other-database.ts).
      if (otherDatabase(row)) return takeLease(client, row, now, ctx.options.leaseMs ?? DEFAULT_LEASE_MS);
      const role = await roleOf(ctx, client);
      if (isNonTransactional(sub.text)) {
        if (role !== row.owner) return finishLeaf(ctx, client, tx, row, now, 'step', { kind: 'fail', error: nonTransactionalForeignError(row.owner, role) });
        return takeLease(client, row, now, ctx.options.leaseMs ?? DEFAULT_LEASE_MS);
      }
      const stepTimeout = ownTimeout(ctx, row);
      let out =
        role === row.owner
          ? await runSqlStep(client, sub.text, { inTransaction: true, statementTimeoutMs: stepTimeout, maxResultBytes: ctx.maxResultBytes })
          : await runSqlStepAsOwner(client, row.owner, sub.text, { statementTimeoutMs: stepTimeout });
      if (role !== row.owner && out.ok) {
        // Same result cap as the direct path; over it, undo what the statement did.
        out = capStepResult(out, ctx.maxResultBytes);
        if (!out.ok) await client.query(`ROLLBACK TO SAVEPOINT ${STEP_SAVEPOINT_NAME}`);
      }
      // The step may have changed the session: restore it before the checkpoint runs on it.
      tx.owes.releaseSavepoint(STEP_SAVEPOINT_NAME).restoreSession();
      return finishLeaf(ctx, client, tx, row, now, 'step', toOutcome(out));
    }
    case 'SLEEP':
    case 'WAIT_SCHEDULE':
      return finishLeaf(ctx, client, tx, row, now, 'timer', timerOutcome(row));
    case 'SIGNAL': {
      const outcome = await signalOutcome(client, row, now);
      return outcome ? finishLeaf(ctx, client, tx, row, now, 'signal', outcome) : commit(ctx, client, tx, row, 'signal', null);
    }
    case 'HTTP':
    case 'HTTP_MULTIPART': {
      let timeout: number;
      try {
        timeout = httpTimeoutSeconds(row.node_type, row.query);
      } catch (e) {
        return finishLeaf(ctx, client, tx, row, now, 'step', { kind: 'fail', error: (e as Error).message });
      }
      return leaseHttp(ctx, client, row, now, timeout);
    }
    default:
      // A composite node with run_at set but no pending resume: nothing to do.
      await withdraw(client, row);
      return commit(ctx, client, tx, row, 'withdrawn', null);
  }
}

/** A row runClaimed would withdraw for its instance's status or its scope's (checked again before it does). */
const looksWithdrawn = (row: ClaimedRow) => !ACTIVE.has(row.instance_status) || (row.stamp !== null && row.scope_status !== 'running');

/** A leaf's attempt ended with `outcome`: its checkpoint (complete, or a retry), then commit. */
async function finishLeaf(ctx: EngineContext, client: DbClient, tx: Tx, row: ClaimedRow, now: Date, kind: RunKind, outcome: Outcome): Promise<RunResult> {
  const attempt = row.attempts + 1;
  const events: unknown[] = [];
  const ch = await checkpoint(ctx, client, tx, row, now, leafEvent(ctx, row, outcome, now, attempt, events), {
    events,
    leafChange: { attempts: attempt },
    requireScope: scopeOfStamp(row.stamp!),
  });
  return ch ? commit(ctx, client, tx, row, outcome.kind === 'fail' && isRetry(events) ? 'retry' : kind, ch) : abandon(client, row);
}

/** Commits the transaction (with its checkpoint's write), or abandons the row if its checkpoint found it gone. */
async function commit(ctx: EngineContext, client: DbClient, tx: Tx, row: ClaimedRow, kind: RunKind, ch: Changes | null): Promise<RunResult> {
  const done = await commitTx(ctx, client, tx, row, ch);
  return done ? afterCommit(ctx, row, kind, done.ch) : abandon(client, row);
}

/** The instance or the row's scope is gone: undo the transaction, and take the row out of the queue. */
async function abandon(client: DbClient, row: ClaimedRow): Promise<RunResult> {
  await client.query('ROLLBACK');
  await client.query('BEGIN');
  await withdraw(client, row);
  await client.query('COMMIT');
  return withdrawn(row);
}

/**
 * A one-step instance's first claim: its statement is sent at once, and the activation is computed
 * only when it has run. The activation reads nothing the statement sees, so it can wait; computing it
 * while the server ran the statement (or before sending it) delayed the step: on a 2-core machine the
 * woken backend was queued behind this busy process (bench/w3-trace.ts, "send → clock_timestamp()").
 * Then as runClaimed's continuation: the step's checkpoint carries the activation.
 */
async function runOneStep(ctx: EngineContext, client: DbClient, tx: Tx, row: ClaimedRow, now: Date, text: string): Promise<RunResult | { lease: ClaimedRow }> {
  await ctx.hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
  const stepTimeout = ownTimeout(ctx, row);
  // One plain statement goes over the simple protocol, as in a batch (isSimpleStatement); anything else
  // over the extended one, which refuses multi-statement text as pg_durable does.
  const out = await (isSimpleStatement(text)
    ? runBatchedStep(client, stepTimeout === null ? '' : `SELECT set_config('statement_timeout', '${stepTimeout}', true); `, text, STEP_SAVEPOINT_NAME, ctx.maxResultBytes)
    : runSqlStep(client, text, { inTransaction: true, statementTimeoutMs: stepTimeout, maxResultBytes: ctx.maxResultBytes }));
  // noRead: the session is as the statement left it until the checkpoint's restore.
  const { next } = await activateAndContinue(ctx, client, tx, row, now, { noRead: true });
  if (!next) throw new Error(`instance ${row.instance_id}: a one-step instance's activation did not continue with its step`);
  return runClaimed(ctx, client, tx, next, now, out);
}
