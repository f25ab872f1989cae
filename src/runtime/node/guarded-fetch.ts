/**
 * A `fetch` for Node whose connections check the address they actually dial (closes DNS rebinding).
 *
 * The egress check (src/engine/executors/http/egress.ts) resolves the host and refuses restricted addresses, but the
 * global `fetch` resolves the name again when it connects, and a hostile DNS server can answer a public
 * address the first time and 127.0.0.1 the second. Here the connection's own `lookup` runs the check:
 * every address the name resolves to at connect time must pass, or the socket is never opened. Sockets
 * are kept alive only in this module's agents, so a reused socket was checked when it was opened.
 *
 * Only what executeHttpStep uses is implemented: method, headers, a byte body, `signal`, manual
 * redirects (never followed), and a streamed body decompressed like undici's fetch (gzip, deflate, br).
 */
import http from 'node:http';
import https from 'node:https';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Readable, pipeline, type Duplex } from 'node:stream';
import zlib from 'node:zlib';
import type { Resolver } from '../../engine/executors/http/egress.ts';

/** Returns the refusal text for `host` resolving to `addresses`, or null when they may be dialled. */
export type AddressCheck = (host: string, addresses: readonly string[]) => string | null;

/** Error code of a connection refused by the check; the executor reports its message verbatim. */
export const BLOCKED_CODE = 'EPGFLARE_BLOCKED';

const defaultResolve: Resolver = async (host) => (await dnsLookup(host, { all: true })).map((a) => a.address);

interface Agents {
  'http:': http.Agent;
  'https:': https.Agent;
}
/**
 * Kept-alive sockets per (check, resolver): a socket is reused only by requests that would have passed
 * the same check on the same resolver. The worker always passes the same pair, so it has one pool.
 */
const pools = new WeakMap<AddressCheck, WeakMap<Resolver, Agents>>();
function agentsFor(check: AddressCheck, resolve: Resolver): Agents {
  let byResolver = pools.get(check);
  if (!byResolver) pools.set(check, (byResolver = new WeakMap()));
  let a = byResolver.get(resolve);
  if (!a) byResolver.set(resolve, (a = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) }));
  return a;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | Array<{ address: string; family: number }>, family?: number) => void;

function guardedLookup(check: AddressCheck, resolve: Resolver) {
  return (hostname: string, options: { all?: boolean } | number | undefined, callback: LookupCallback) => {
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

function decoders(contentEncoding: string | undefined): Duplex[] {
  // Codings are listed in the order they were applied; undo them in reverse. Unknown ones are left as is.
  const codings = (contentEncoding ?? '').toLowerCase().split(',').map((c) => c.trim()).filter((c) => c && c !== 'identity');
  const out: Duplex[] = [];
  for (const c of codings.reverse()) {
    if (c === 'gzip' || c === 'x-gzip') out.push(zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH }));
    else if (c === 'deflate') out.push(zlib.createInflate({ finishFlush: zlib.constants.Z_SYNC_FLUSH }));
    else if (c === 'br') out.push(zlib.createBrotliDecompress());
    else return [];
  }
  return out;
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/**
 * `check` is applied to every connection; `resolve` (tests inject one) defaults to
 * `dns.lookup(host, { all: true })`.
 */
export function createGuardedFetch(check: AddressCheck, resolve: Resolver = defaultResolve): typeof fetch {
  const lookup = guardedLookup(check, resolve);
  const agents = agentsFor(check, resolve);
  const guarded = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`unsupported protocol ${url.protocol}`);
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    headers['accept-encoding'] ??= 'gzip, deflate, br';
    const body = init.body == null ? undefined : init.body;
    if (body !== undefined && !(body instanceof Uint8Array)) throw new TypeError('guarded fetch sends byte bodies only');
    if (body !== undefined) headers['content-length'] = String(body.length);
    else if (method === 'POST' || method === 'PUT' || method === 'PATCH') headers['content-length'] = '0';
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();

    return new Promise<Response>((resolveResponse, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(
        {
          protocol: url.protocol,
          hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
          port: url.port || undefined,
          path: `${url.pathname}${url.search}`,
          method,
          headers,
          agent: agents[url.protocol as 'http:' | 'https:'],
          lookup: lookup as never,
          signal,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const h = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            try {
              h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
            } catch {
              // a value Headers refuses is dropped, as undici drops it
            }
          }
          let stream: Readable = res;
          const chain = decoders(res.headers['content-encoding']);
          if (chain.length > 0) stream = pipeline([res, ...chain], () => undefined) as unknown as Readable;
          const noBody = NULL_BODY_STATUS.has(status) || method === 'HEAD';
          try {
            if (noBody) res.resume();
            resolveResponse(new Response(noBody ? null : (Readable.toWeb(stream) as ReadableStream), { status, statusText: res.statusMessage, headers: h }));
          } catch (e) {
            res.destroy();
            reject(new TypeError(`invalid response status ${status}`, { cause: e }));
          }
        },
      );
      req.on('error', (err) => reject(new TypeError('fetch failed', { cause: err })));
      req.end(body);
    });
  };
  return guarded as typeof fetch;
}
