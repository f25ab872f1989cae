/**
 * Runtime configuration from environment variables (Node process env or Workers bindings), parsed with
 * zod so a bad value fails at start-up with a message that names the variable. Settings that pg_durable
 * keeps as GUCs are also read from the database (`pg_durable.<name>`); an env var wins (SPEC §9).
 */
import { z } from 'zod';
import type { RetryPolicy } from './engine/retry.ts';
import { DEFAULT_QUEUE_VACUUM_STEPS } from './engine/queue-vacuum.ts';
import { DEFAULT_BATCH_SIZE } from './engine/batch.ts';

/** Above the Workers cron's one heartbeat a minute, with room for a late or failed run. */
export const DEFAULT_WORKER_MAX_AGE_S = 180;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .string()
  .transform((v) => v.trim().toLowerCase())
  .pipe(z.enum(['on', 'off', 'true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => ['on', 'true', '1', 'yes'].includes(v));

const EnvSchema = z.object({
  PGFLARE_CONCURRENCY: int(1, 256).default(4),
  PGFLARE_POLL_INTERVAL_MS: int(10, 600_000).default(1000),
  PGFLARE_STEP_TIMEOUT_MS: int(0, 86_400_000).default(0),
  PGFLARE_LEASE_MS: int(1000, 86_400_000).default(1_800_000),
  PGFLARE_RETRY_MAX_ATTEMPTS: int(1, 1000).default(1),
  PGFLARE_RETRY_BASE_MS: int(0, 86_400_000).default(1000),
  PGFLARE_RETRY_MAX_MS: int(0, 86_400_000).default(300_000),
  PGFLARE_RETENTION_DAYS: int(0, 36_500).optional(),
  PGFLARE_ENABLE_SUPERUSER_INSTANCES: bool.optional(),
  PGFLARE_HTTP_POLICY: z.enum(['disabled', 'azure', 'azure+test', 'allowlist', 'all']).optional(),
  PGFLARE_HTTP_ALLOWED_HOSTS: z.string().optional(),
  PGFLARE_MAX_RESULT_BYTES: int(1024, 1024 * 1024 * 1024).optional(),
  PGFLARE_MAX_RESPONSE_BYTES: int(1024, 1024 * 1024 * 1024).optional(),
  PGFLARE_QUEUE_VACUUM_STEPS: int(0, 100_000_000).default(DEFAULT_QUEUE_VACUUM_STEPS),
  PGFLARE_BATCH_SIZE: int(1, 1000).default(DEFAULT_BATCH_SIZE),
  PGFLARE_LOG_FORMAT: z
    .string()
    .transform((v) => v.trim().toLowerCase())
    .pipe(z.enum(['json', 'text']))
    .optional(),
  PGFLARE_METRICS_PORT: int(0, 65535).optional(),
  PGFLARE_METRICS_HOST: z.string().optional(),
  PGFLARE_HEALTH_WORKER_MAX_AGE_S: int(0, 86_400).default(DEFAULT_WORKER_MAX_AGE_S),
  PGFLARE_POOLED: bool.optional(),
  PGFLARE_DIRECT_URL: z.string().optional(),
  PGFLARE_STREAM_POLL_MS: int(50, 60_000).default(500),
});

export interface RuntimeConfig {
  concurrency: number;
  pollIntervalMs: number;
  stepTimeoutMs: number;
  leaseMs: number;
  retry: RetryPolicy;
  /** undefined: the database's pg_durable.retention_days (default 30). */
  retentionDays?: number;
  enableSuperuserInstances?: boolean;
  httpPolicy?: 'disabled' | 'azure' | 'azure+test' | 'allowlist' | 'all';
  httpAllowedHosts?: string[];
  /** Step result cap in bytes (undefined: src/engine/limits.ts default, 16 MiB). */
  maxResultBytes?: number;
  /** HTTP response body cap in bytes (undefined: the executor's default, 10 MiB). */
  maxResponseBytes?: number;
  /** Steps between the Node worker's own vacuums of df.nodes; 0 leaves it to autovacuum (src/engine/queue-vacuum.ts). */
  queueVacuumSteps: number;
  /** Largest batch of one-step instances per transaction; 1 runs one per transaction (src/engine/batch.ts). */
  batchSize: number;
  /** Log line format (src/log.ts); undefined: the runtime's default (json on Workers, text on Node). */
  logFormat?: 'json' | 'text';
  /** Prometheus endpoint port of the Node worker (GET /metrics); undefined: not served. */
  metricsPort?: number;
  /** Its address (default 127.0.0.1: set 0.0.0.0 for a scraper on another host). */
  metricsHost?: string;
  /** /healthz answers 503 when no worker heartbeat is newer than this (seconds; 0: reported, never a 503). */
  healthWorkerMaxAgeS: number;
  /** DATABASE_URL goes through a transaction-mode pooler (undefined: judged from the URL; src/engine/pooled.ts). */
  pooled?: boolean;
  /** A direct (unpooled) connection string for LISTEN and non-transactional steps when DATABASE_URL is pooled. */
  directUrl?: string;
  /** How often an open event stream of the API reads the database (ms; src/api/stream.ts). */
  streamPollMs: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined>): RuntimeConfig {
  const picked = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith('PGFLARE_') && v !== undefined && v !== ''));
  const r = EnvSchema.safeParse(picked);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.join('.')}=${JSON.stringify(picked[String(i.path[0])])}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${msgs.join('; ')}`);
  }
  const c = r.data;
  return {
    concurrency: c.PGFLARE_CONCURRENCY,
    pollIntervalMs: c.PGFLARE_POLL_INTERVAL_MS,
    stepTimeoutMs: c.PGFLARE_STEP_TIMEOUT_MS,
    leaseMs: c.PGFLARE_LEASE_MS,
    retry: { maxAttempts: c.PGFLARE_RETRY_MAX_ATTEMPTS, baseMs: c.PGFLARE_RETRY_BASE_MS, maxMs: c.PGFLARE_RETRY_MAX_MS, jitter: 1 },
    retentionDays: c.PGFLARE_RETENTION_DAYS,
    enableSuperuserInstances: c.PGFLARE_ENABLE_SUPERUSER_INSTANCES,
    httpPolicy: c.PGFLARE_HTTP_POLICY,
    httpAllowedHosts: c.PGFLARE_HTTP_ALLOWED_HOSTS?.split(',').map((h) => h.trim()).filter(Boolean),
    maxResultBytes: c.PGFLARE_MAX_RESULT_BYTES,
    maxResponseBytes: c.PGFLARE_MAX_RESPONSE_BYTES,
    queueVacuumSteps: c.PGFLARE_QUEUE_VACUUM_STEPS,
    batchSize: c.PGFLARE_BATCH_SIZE,
    logFormat: c.PGFLARE_LOG_FORMAT,
    metricsPort: c.PGFLARE_METRICS_PORT,
    metricsHost: c.PGFLARE_METRICS_HOST,
    healthWorkerMaxAgeS: c.PGFLARE_HEALTH_WORKER_MAX_AGE_S,
    pooled: c.PGFLARE_POOLED,
    directUrl: c.PGFLARE_DIRECT_URL,
    streamPollMs: c.PGFLARE_STREAM_POLL_MS,
  };
}
