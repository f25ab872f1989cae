import { lookup } from 'node:dns/promises';
import type { HttpRunner } from '../../engine/engine.ts';
import { createHttpRunner } from '../../engine/executors/http-runner.ts';
import type { EgressMode, Resolver } from '../../engine/executors/http/egress.ts';
import { createGuardedFetch } from './guarded-fetch.ts';

const resolve: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/**
 * Node's HTTP steps: DNS answers for the resolved-address egress check, and a fetch whose connections
 * check the address they dial again (DNS rebinding); the global fetch only in mode `all`.
 */
export function createNodeHttpRunner(opts: { databaseUrl?: string; policy?: EgressMode; allowedHosts?: string[]; maxResponseBytes?: number }): HttpRunner {
  return createHttpRunner({
    policy: opts.policy,
    allowedHosts: opts.allowedHosts,
    maxResponseBytes: opts.maxResponseBytes,
    resolve,
    guardedFetch: (check) => createGuardedFetch(check, resolve),
  });
}
