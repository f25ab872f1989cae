import { lookup } from 'node:dns/promises';
import type { HttpRunner } from '../../engine/engine.ts';
import { createHttpRunner } from '../../engine/executors/http-runner.ts';
import type { EgressMode } from '../../engine/egress.ts';

/** Node's HTTP steps: global fetch, and DNS answers for the resolved-address egress check. */
export function createNodeHttpRunner(opts: { databaseUrl?: string; policy?: EgressMode; allowedHosts?: string[]; maxResponseBytes?: number }): HttpRunner {
  return createHttpRunner({
    policy: opts.policy,
    allowedHosts: opts.allowedHosts,
    maxResponseBytes: opts.maxResponseBytes,
    resolve: async (host) => (await lookup(host, { all: true })).map((a) => a.address),
  });
}
