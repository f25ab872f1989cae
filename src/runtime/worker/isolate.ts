/**
 * What a Workers isolate keeps between invocations: the parsed settings and the engine's caches (the
 * worker's role, instance graphs, the engine's copy of instances' rows). Plain data only: I/O objects
 * (a database session, a WebSocket) belong to the request that made them and cannot be used by another
 * ("Cannot perform I/O on behalf of a different request"), so every invocation still opens its own
 * session. Kept per connection string: the role and the rows are that database's.
 */
import { z } from 'zod';
import { loadConfig, type RuntimeConfig } from '../../config.ts';
import { createEngineCaches } from '../../engine/context.ts';
import type { EngineCaches } from '../../engine/types.ts';

const bool = z
  .string()
  .transform((v) => v.trim().toLowerCase())
  .pipe(z.enum(['on', 'off', 'true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => ['on', 'true', '1', 'yes'].includes(v));

/** The Worker's own settings (docs/deploying-to-workers.md, "Settings"); the engine's are config.ts's. */
export const WorkerEnv = z.object({
  PGFLARE_SWEEP_LIMIT: z.coerce.number().int().min(1).max(10_000).default(1000),
  PGFLARE_PRUNE_BATCH: z.coerce.number().int().min(0).max(10_000).default(500),
  /** Cron schedules fired per sweep (one transaction each); 0 disables firing on this deployment. */
  PGFLARE_SCHEDULE_LIMIT: z.coerce.number().int().min(0).max(1000).default(100),
  PGFLARE_AUTO_MIGRATE: z
    .string()
    .transform((v) => ['on', 'true', '1', 'yes'].includes(v.trim().toLowerCase()))
    .optional(),
  /** Messages of one queue batch run at once, each on its own session (1: the batch runs on one session). */
  PGFLARE_QUEUE_CONCURRENCY: z.coerce.number().int().min(1).max(3).default(1),
  /** Steps one invocation runs along a chain (the single ready successor, no message for it); 1: one step per invocation. */
  PGFLARE_CHAIN_STEPS: z.coerce.number().int().min(1).max(10_000).default(1),
  /** No chain continuation starts after an invocation has run this long (ms). */
  PGFLARE_CHAIN_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
  /** Run the first step of work an API request made ready in that request's waitUntil (off: a queue message). */
  PGFLARE_API_RUN_STEP: bool.default(true),
});
export type WorkerSettings = z.infer<typeof WorkerEnv>;

export interface IsolateState {
  cfg: RuntimeConfig;
  settings: WorkerSettings;
  caches: EngineCaches;
}

const states = new Map<string, IsolateState>();

/** The isolate's state for this env (parsed once per distinct set of settings); throws naming a bad setting. */
export function isolateState(env: { DATABASE_URL: string } & Record<string, unknown>): IsolateState {
  const picked = pickSettings(env);
  const key = `${env.DATABASE_URL}\u0000${JSON.stringify(picked)}`;
  let s = states.get(key);
  if (!s) {
    const parsed = WorkerEnv.safeParse(picked);
    if (!parsed.success) {
      const msgs = parsed.error.issues.map((i) => `${i.path.join('.')}=${JSON.stringify(picked[String(i.path[0])])}: ${i.message}`);
      throw new Error(`invalid configuration: ${msgs.join('; ')}`);
    }
    // One cache per database, shared by every settings variant of it.
    const sameDb = [...states.entries()].find(([k]) => k.startsWith(`${env.DATABASE_URL}\u0000`));
    s = { cfg: loadConfig(picked), settings: parsed.data, caches: sameDb?.[1].caches ?? createEngineCaches() };
    // Bounded: a Worker has one env; tests and embedders may make a few.
    if (states.size >= 16) states.delete(states.keys().next().value!);
    states.set(key, s);
  }
  return s;
}

function pickSettings(env: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('PGFLARE_') && typeof v === 'string' && v !== '') out[k] = v;
  return out;
}
