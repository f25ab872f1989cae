import type { HttpRunner } from '../engine.ts';
import { EGRESS_MODES, parseAllowedHosts, type AddressCheck, type EgressMode, type Resolver } from './http/egress.ts';
import { parseNodeConfig } from '../../graph/schema.ts';
import { executeHttpStep } from './http/index.ts';

export interface HttpRunnerOptions {
  /** DNS port for the resolved-address check (Node: dns.lookup; Workers: none). */
  resolve?: Resolver;
  fetch?: typeof fetch;
  /** Node: a fetch that checks the addresses its connections dial (see HttpStepInput.guardedFetch). */
  guardedFetch?: (check: AddressCheck) => typeof fetch;
  /** PGFLARE_HTTP_POLICY / PGFLARE_HTTP_ALLOWED_HOSTS: win over the database settings. */
  policy?: EgressMode;
  allowedHosts?: string[];
  maxResponseBytes?: number;
}

/** Adapts the runtime-agnostic HTTP executor to the engine's lease path. */
export function createHttpRunner(opts: HttpRunnerOptions = {}): HttpRunner {
  return async ({ row, ctx, idempotencyKey, policy, canUseHttp }) => {
    const mode = opts.policy ?? (EGRESS_MODES.includes(policy.mode as EgressMode) ? (policy.mode as EgressMode) : 'disabled');
    // One normalisation for both sources (lower case, `*.x` → `.x`), so an env entry matches like a setting.
    const allowedHosts = opts.allowedHosts ? parseAllowedHosts(opts.allowedHosts.join(',')) : parseAllowedHosts(policy.allowedHosts);
    const cfg = parseNodeConfig({ node_type: row.node_type as 'HTTP', query: row.query });
    const common = {
      nodeId: row.id,
      named: ctx.results,
      vars: ctx.vars,
      instanceId: row.instance_id,
      label: row.label,
      idempotencyKey,
      policy: { mode, allowedHosts },
      canUseHttp,
      ownerRole: row.owner,
      resolve: opts.resolve,
      fetch: opts.fetch,
      guardedFetch: opts.guardedFetch,
      maxResponseBytes: opts.maxResponseBytes,
    };
    if (cfg.node_type === 'HTTP') return executeHttpStep({ ...common, nodeType: 'HTTP', config: cfg.config });
    if (cfg.node_type === 'HTTP_MULTIPART') return executeHttpStep({ ...common, nodeType: 'HTTP_MULTIPART', config: cfg.config });
    return { ok: false, error: `node ${row.id} is not an HTTP node` };
  };
}
