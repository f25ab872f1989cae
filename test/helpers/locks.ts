import type pg from 'pg';
import { serverUntil } from './until.ts';

/**
 * Waits until a session tagged `applicationName` is blocked on a lock, as seen in pg_stat_activity
 * (absurd's lock-order tests do the same). The wait is on the server, bounded, and fails loudly.
 */
export async function waitUntilBlocked(observer: pg.Pool, applicationName: string, maxChecks = 500): Promise<void> {
  await serverUntil(
    async (text) => (await observer.query(text)).rows,
    `EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '${applicationName.replaceAll("'", "''")}' AND wait_event_type = 'Lock')`,
    maxChecks,
  );
}

/** A crash-point handler that parks the engine at `point` until released. */
export function gate(point: string) {
  let release!: () => void;
  let reached!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const arrived = new Promise<void>((r) => (reached = r));
  let armed = true;
  const handler = async (p: string) => {
    if (p === point && armed) {
      armed = false;
      reached();
      await released;
    }
  };
  return { handler, arrived, release };
}
