/**
 * The client's one way to the API: `fetch`, a bearer token, JSON in and out, and the API's error body
 * (`{"error":{"code","message"}}`, src/api/errors.ts) turned into a typed PgflareError.
 */

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Where the API is, including any prefix it is mounted under (e.g. `https://flows.example.com/pgflare`). */
  baseUrl: string;
  /** An API token (PGFLARE_API_TOKENS or df.create_api_token). */
  token?: string;
  /** Defaults to the global fetch; pass a service binding's fetch in a Worker, or a test double. */
  fetch?: FetchLike;
  /** Sent with every request (e.g. a tracing header). */
  headers?: Record<string, string>;
}

/** A request the API refused or could not answer: HTTP status, the API's stable error code, its message. */
export class PgflareError extends Error {
  override name = 'PgflareError';
  constructor(
    readonly status: number,
    /** Stable: `not_found`, `invalid_body`, `invalid_workflow`, `instance_finished`, `unauthorized`, … */
    readonly code: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/** `instances.wait` gave up before the instance finished; `instance` is its last state seen. */
export class PgflareTimeoutError extends Error {
  override name = 'PgflareTimeoutError';
  constructor(
    readonly instanceId: string,
    readonly lastStatus: string,
    readonly timeoutSeconds: number,
  ) {
    super(`instance ${instanceId} is still ${lastStatus} after ${timeoutSeconds} s`);
  }
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export type Transport = <T>(method: string, path: string, opts?: RequestOptions) => Promise<T>;

/** The raw Response of one request (headers and token set, query encoded); `call` and `stream` build on it. */
export type Fetcher = (method: string, path: string, opts?: RequestOptions) => Promise<Response>;

export function createFetcher(opts: ClientOptions): Fetcher {
  const base = opts.baseUrl.replace(/\/+$/, '');
  // Called through a closure: Workers throw "Illegal invocation" for a detached global fetch.
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  return (method, path, ro = {}) => {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers, ...ro.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (ro.body !== undefined) {
      body = JSON.stringify(ro.body);
      headers['content-type'] = 'application/json';
    }
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(ro.query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return doFetch(`${base}${path}${qs ? `?${qs}` : ''}`, { method, headers, body, signal: ro.signal });
  };
}

/** The error of a refused request, from the API's error body when it is one. */
export function refused(status: number, json: unknown, text: string, method: string, path: string): PgflareError {
  const err = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') return new PgflareError(status, err.code, err.message, method, path);
  // Not the API's own error body (a proxy, a gateway): keep the status and the start of the text.
  return new PgflareError(status, 'http_error', `${method} ${path}: HTTP ${status} ${text.slice(0, 200)}`.trim(), method, path);
}

export const parseJson = (text: string): unknown => {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
};

export function createTransport(opts: ClientOptions, fetcher: Fetcher = createFetcher(opts)): Transport {
  return async <T>(method: string, path: string, ro: RequestOptions = {}): Promise<T> => {
    const res = await fetcher(method, path, ro);
    const text = await res.text();
    const json = parseJson(text);
    if (!res.ok) throw refused(res.status, json, text, method, path);
    if (json === undefined) throw new PgflareError(res.status, 'invalid_response', `${method} ${path}: the response is not JSON`, method, path);
    return json as T;
  };
}

/** A path segment, escaped. */
export const seg = (s: string) => encodeURIComponent(s);
