/**
 * The lease path (DESIGN 5): HTTP steps and statements that cannot run in a transaction block. The claim
 * transaction commits a lease (attempts + 1, run_at = the lease's end, so an expired lease is simply
 * claimable again); the step runs outside any transaction; then a new transaction checkpoints if the
 * lease is still this run's. At-least-once: HTTP carries a stable Idempotency-Key.
 */
import type { DbClient } from './db.ts';
import type { Outcome } from '../graph/changes.ts';
import { parseNodeConfig } from '../graph/schema.ts';
import { scopeOfStamp } from '../graph/scope-ids.ts';
import { substitute } from '../graph/substitute.ts';
import { relockLeased, type ClaimedRow } from './queries/claim.ts';
import { leaseRow, readHttpAccess, withdraw } from './queries/steps.ts';
import { runSqlStep } from './executors/sql.ts';
import { nonTransactionalForeignError } from './executors/runner.ts';
import { forgetMark, otherDatabase, runInOtherDatabase } from './executors/other-database.ts';
import type { StepOutcome } from './executors/outcome.ts';
import { capStepResult } from './limits.ts';
import { afterCommit, checkpoint, commitTx, withdrawn } from './checkpoint.ts';
import { roleOf, type EngineContext } from './context.ts';
import { isLockNotAvailable } from './errors.ts';
import { leafEvent, substitutionContext, timeoutFor, toOutcome } from './step-policy.ts';
import { DIRECT_URL_NEEDED, sessionDb } from './pooled.ts';
import { Owed, type Tx } from './tx.ts';
import type { RunResult } from './types.ts';

/** Default lease of a non-transactional statement (EngineOptions.leaseMs). */
export const DEFAULT_LEASE_MS = 30 * 60_000;

/** Commits a lease on the claimed row (its claim transaction ends here); the caller then runs it (runLeased). */
export async function takeLease(client: DbClient, row: ClaimedRow, now: Date, leaseMs: number): Promise<{ lease: ClaimedRow }> {
  await leaseRow(client, row, new Date(now.getTime() + leaseMs));
  await client.query('COMMIT');
  return { lease: row };
}

/** An HTTP step's own timeout (its config's timeout_seconds, default 30 s); throws on a bad config. */
export function httpTimeoutSeconds(nodeType: 'HTTP' | 'HTTP_MULTIPART', query: string | null): number {
  const cfg = parseNodeConfig({ node_type: nodeType, query });
  return cfg.node_type === 'HTTP' || cfg.node_type === 'HTTP_MULTIPART' ? Number(cfg.config.timeout_seconds ?? 30) : 30;
}

/** Reads what an HTTP step may do (kept for runLeased), then leases it for its timeout and 30 s more. */
export async function leaseHttp(ctx: EngineContext, client: DbClient, row: ClaimedRow, now: Date, timeoutSeconds: number): Promise<{ lease: ClaimedRow }> {
  const fn = row.node_type === 'HTTP' ? 'df.http(text,text,text,jsonb,integer)' : 'df.http_multipart(text,text,jsonb,jsonb,integer)';
  const access = await readHttpAccess(client, row.owner, fn);
  ctx.httpAccess.set(row, { policy: { mode: access.mode, allowedHosts: access.hosts }, canUseHttp: access.can });
  return takeLease(client, row, now, timeoutSeconds * 1000 + 30_000);
}

/** Runs a leased step outside any transaction, then checkpoints if the lease is still ours. */
export async function runLeased(ctx: EngineContext, row: ClaimedRow, now: Date): Promise<RunResult> {
  await ctx.hit('after-lease', { instanceId: row.instance_id, nodeId: row.id });
  const stepCtx = substitutionContext(row);
  let out: StepOutcome;
  if (row.node_type === 'SQL') {
    const sub = substitute(row.query ?? '', stepCtx, 'sql');
    if (!sub.ok) out = { ok: false, error: sub.error };
    else if (otherDatabase(row)) {
      out = await runInOtherDatabase(ctx.options.databases, row, sub.text, { statementTimeoutMs: timeoutFor(ctx, row), maxResultBytes: ctx.maxResultBytes });
    } else {
      const db = sessionDb(ctx.options);
      out = !db
        ? { ok: false, error: DIRECT_URL_NEEDED }
        : await db.withClient(async (c) => {
            const role = await roleOf(ctx, c);
            if (role !== row.owner) return { ok: false as const, error: nonTransactionalForeignError(row.owner, role) };
            return runSqlStep(c, sub.text, { statementTimeoutMs: timeoutFor(ctx, row), inTransaction: false });
          });
    }
  } else if (!ctx.options.http) {
    out = { ok: false, error: 'HTTP steps are not available in this runtime' };
  } else {
    const access = ctx.httpAccess.get(row) ?? { policy: { mode: 'disabled', allowedHosts: null }, canUseHttp: false };
    out = await ctx.options.http({ row, ctx: stepCtx, idempotencyKey: `${row.instance_id}:${row.id}:${row.stamp}`, ...access }).catch((e: unknown) => ({
      ok: false as const,
      error: `HTTP request failed: ${(e as Error).message}`,
    }));
  }
  await ctx.hit('after-effect', { instanceId: row.instance_id, nodeId: row.id });
  const outcome = toOutcome(capStepResult(out, ctx.maxResultBytes));
  // The effect has happened: keep trying to record it rather than let the lease expire and repeat it.
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await checkpointLeased(ctx, row, now, outcome);
      if (row.node_type === 'SQL' && otherDatabase(row) && result.kind === 'lease') await forgetMark(ctx.options.databases, row);
      return result;
    } catch (err) {
      if (!isLockNotAvailable(err) || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, Math.min(200, 5 * attempt)));
    }
  }
}

/** The leased step's checkpoint, in a transaction of its own; withdrawn when the lease is no longer ours. */
async function checkpointLeased(ctx: EngineContext, row: ClaimedRow, now: Date, outcome: Outcome): Promise<RunResult> {
  const attempt = row.attempts + 1;
  return ctx.db.withClient(async (client) => {
    await client.query('BEGIN');
    try {
      const cur = await relockLeased(client, row.instance_id, row.id);
      // Someone re-claimed an expired lease, or the step moved on: this result is stale.
      if (!cur || cur.attempts !== attempt || cur.stamp !== row.stamp || cur.status !== 'running') {
        await client.query('ROLLBACK');
        return withdrawn(row);
      }
      const events: unknown[] = [];
      const tx: Tx = { owes: new Owed(), write: null };
      const ch = await checkpoint(ctx, client, tx, row, now, leafEvent(ctx, row, outcome, now, attempt, events), {
        events,
        leafChange: { locked_until: null },
        requireScope: scopeOfStamp(row.stamp!),
      });
      const done = ch ? await commitTx(ctx, client, tx, row, ch) : null;
      if (!done) {
        await withdraw(client, row);
        await client.query('COMMIT');
        return withdrawn(row);
      }
      return afterCommit(ctx, row, 'lease', done.ch);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
