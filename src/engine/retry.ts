/**
 * Retry policy for failed step attempts: exponential backoff with full jitter, capped. The default
 * keeps pg_durable's behaviour: one attempt, a failure fails the node.
 */
export interface RetryPolicy {
  /** Attempts in all, including the first (1 = no retry). */
  maxAttempts: number;
  /** Backoff before the second attempt (ms); doubles each attempt. */
  baseMs: number;
  /** Upper bound of one backoff (ms). */
  maxMs: number;
  /** 0 = exact backoff; 1 = full jitter (uniform in [0, backoff]). */
  jitter: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 1, baseMs: 1000, maxMs: 300_000, jitter: 1 };

/** Delay before attempt `attempt + 1`, after `attempt` failed attempts (1-based). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  const j = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(exp * (1 - j) + exp * j * random());
}
