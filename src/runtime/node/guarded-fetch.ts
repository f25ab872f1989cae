/**
 * A `fetch` for Node whose connections check the address they actually dial (closes DNS rebinding).
 *
 * The egress check (src/engine/executors/http/egress.ts) resolves the host and refuses restricted
 * addresses, but a plain `fetch` resolves the name again when it connects, and a hostile DNS server can
 * answer a public address the first time and 127.0.0.1 the second. Here undici's `fetch` runs on an
 * `Agent` whose `connect.lookup` is the check: the name is resolved once more at connect time, every
 * address must pass, and the socket dials exactly the addresses that passed (or is never opened).
 * Sockets are kept alive only in this module's agents, so a reused socket was checked when it was opened.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AddressCheck, Resolver } from '../../engine/executors/http/egress.ts';
import { BLOCKED_CODE } from '../../engine/executors/http/transport.ts';

export type { AddressCheck } from '../../engine/executors/http/egress.ts';
export { BLOCKED_CODE } from '../../engine/executors/http/transport.ts';

const defaultResolve: Resolver = async (host) => (await dnsLookup(host, { all: true })).map((a) => a.address);

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** `net.connect`'s `lookup`: resolve, apply the check, answer only with the addresses checked. */
function guardedLookup(check: AddressCheck, resolve: Resolver) {
  return (hostname: string, options: LookupOptions | number | undefined, callback: LookupCallback): void => {
    resolve(hostname).then(
      (addresses) => {
        const refused = check(hostname, addresses);
        if (refused) {
          const err: NodeJS.ErrnoException = new Error(refused);
          err.code = BLOCKED_CODE;
          callback(err, '');
          return;
        }
        const list = addresses.map((address) => ({ address, family: isIP(address) || 4 }));
        if (typeof options === 'object' && options?.all) callback(null, list);
        else callback(null, list[0]!.address, list[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}

/**
 * One agent (and so one pool of kept-alive sockets) per (check, resolver): a socket is reused only by
 * requests that would have passed the same check on the same resolver. The worker always passes the
 * same pair, so it has one pool.
 */
const agents = new WeakMap<AddressCheck, WeakMap<Resolver, Agent>>();
function agentFor(check: AddressCheck, resolve: Resolver): Agent {
  let byResolver = agents.get(check);
  if (!byResolver) agents.set(check, (byResolver = new WeakMap()));
  let agent = byResolver.get(resolve);
  if (!agent) {
    // No header or body timeout of its own: the step's deadline (its AbortSignal) covers the whole exchange.
    agent = new Agent({ connect: { lookup: guardedLookup(check, resolve) }, headersTimeout: 0, bodyTimeout: 0 });
    byResolver.set(resolve, agent);
  }
  return agent;
}

/**
 * `check` is applied to every connection; `resolve` (tests inject one) defaults to
 * `dns.lookup(host, { all: true })`. Redirects are whatever the caller asks (the executor: `manual`).
 */
export function createGuardedFetch(check: AddressCheck, resolve: Resolver = defaultResolve): typeof fetch {
  const dispatcher = agentFor(check, resolve);
  const guarded = (input: Parameters<typeof undiciFetch>[0], init: Parameters<typeof undiciFetch>[1] = {}) =>
    undiciFetch(input, { ...init, dispatcher });
  return guarded as unknown as typeof fetch;
}
