/**
 * The queue vacuum: the engine vacuums df.nodes itself after every `everySteps` steps it ran.
 *
 * Every step takes its row out of nodes_ready_idx (run_at becomes NULL or moves), which leaves a dead
 * entry at the front of the index, where every claim starts its scan. Entries are killed by scans only
 * once no snapshot can see the old row, and removed only by VACUUM; autovacuum looks at a database at
 * most once per autovacuum_naptime (a minute by default, a server setting that managed PostgreSQL rarely
 * lets users change), whatever the table's thresholds. Meanwhile a busy queue's claims walk thousands of
 * dead entries and slow down (bench/ W2 sustained; docs/ARCHITECTURE.md, "The queue vacuum").
 *
 * A vacuum runs in the background on a pooled session, never on a step's path, one at a time per
 * engine, and at most 5 % of the time: the next may start only 19 times its last duration after it ended
 * (a large df.nodes costs more per vacuum and is vacuumed less often). VACUUM needs the table's owner (the
 * role that ran `pgflare migrate`); a worker that is not the owner never tries.
 */
import type { Db } from './db.ts';
import type { Logger } from '../log.ts';

/** Steps between two vacuums in the Node worker (PGFLARE_QUEUE_VACUUM_STEPS) and in bench W2. */
export const DEFAULT_QUEUE_VACUUM_STEPS = 2000;

export interface QueueVacuumOptions {
  /** Steps this engine runs between two vacuums; 0 disables. */
  everySteps: number;
}

export interface QueueVacuum {
  /** Counts one step; starts a vacuum in the background when one is due. */
  stepDone(): void;
  /** Resolves when the vacuum under way (if any) has finished. */
  settled(): Promise<void>;
  /** Vacuums run, and whether they are off (disabled, or this role does not own df.nodes). */
  stats(): { vacuums: number; off: boolean };
}

/** How a vacuum is sent: autocommit on its own session; never waits for a lock, keeps the file's length. */
const QUEUE_VACUUM_SQL = 'VACUUM (SKIP_LOCKED, TRUNCATE false) df.nodes';

/** At most this share of wall time spent vacuuming: the pause after a vacuum is (1/share − 1) × its length. */
const DUTY = 0.05;
/** And never sooner than this after the last one ended (ms). */
const MIN_INTERVAL_MS = 1000;

export function createQueueVacuum(db: Db, log: Logger, opts: QueueVacuumOptions): QueueVacuum {
  const every = Math.max(0, Math.floor(opts.everySteps));
  let off = every === 0;
  let owner: boolean | undefined;
  let since = 0;
  let notBefore = 0;
  let running: Promise<void> | null = null;
  let vacuums = 0;

  async function vacuum(): Promise<void> {
    const t0 = Date.now();
    try {
      await db.withClient(async (c) => {
        if (owner === undefined) {
          const { rows } = await c.query<{ owns: boolean }>(
            `SELECT pg_has_role(current_user, c.relowner, 'USAGE') AS owns FROM pg_class c WHERE c.oid = 'df.nodes'::regclass`,
          );
          owner = rows[0]?.owns === true;
          if (!owner) {
            off = true;
            log.info('queue vacuum off: this role does not own df.nodes; autovacuum alone keeps the ready index clean');
            return;
          }
        }
        await c.query(QUEUE_VACUUM_SQL);
        vacuums++;
        log.debug('queue vacuumed', { ms: Date.now() - t0 });
      });
    } catch (err) {
      // A failed vacuum loses nothing; the next is tried after the usual pause.
      log.warn('queue vacuum failed', { error: err });
    } finally {
      const ms = Date.now() - t0;
      notBefore = Date.now() + Math.max(MIN_INTERVAL_MS, Math.ceil(ms * (1 / DUTY - 1)));
      running = null;
    }
  }

  return {
    stepDone() {
      if (off || ++since < every || running || Date.now() < notBefore) return;
      since = 0;
      running = vacuum();
    },
    settled: () => running ?? Promise.resolve(),
    stats: () => ({ vacuums, off }),
  };
}
