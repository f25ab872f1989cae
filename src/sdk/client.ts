/**
 * The typed REST client: instances, named workflows, schedules and webhooks of a pgflare API, over
 * `fetch` only (Workers, Node, browsers). Shapes are the server's own zod schemas (api-types.ts).
 *
 *   const pf = createClient({ baseUrl: 'https://flows.example.com', token });
 *   const { id } = await pf.instances.start(seq(sql('SELECT 1').as('a'), 'SELECT $a'));
 *   const done = await pf.instances.wait(id, { timeout: '2 minutes' });
 */
import { isStep, Step, type Closed, type GraphNode } from './builder.ts';
import { toSeconds, type Duration } from './duration.ts';
import type * as T from './api-types.ts';
import { streamInstance, type StreamOptions } from './stream.ts';
import { createFetcher, createTransport, PgflareTimeoutError, seg, type ClientOptions, type Fetcher, type Transport } from './transport.ts';

/** DSL text, a builder step, or envelope JSON. */
export type WorkflowInput = string | Step<any, any> | GraphNode;
/** A builder step must not read a `$name` nothing in it binds (`Given` names are bound by the API, e.g. `input`). */
export type Checked<W, Given extends string = never> = W extends Step<any, any> ? Closed<W, Given> : W;

export interface StartOptions {
  /** The instance label; defaults to the step's `.label(…)`. */
  label?: string;
  /**
   * Sent as `Idempotency-Key`: for 24 hours a repeat of the same start with this key returns the first
   * answer instead of starting another instance (the same key with another body is a 422).
   */
  idempotencyKey?: string;
}

export interface WaitOptions {
  /** Give up after this long (seconds or text like '2 minutes'); default 60 s. Throws PgflareTimeoutError. */
  timeout?: Duration;
  /**
   * Each request long-polls (`GET /v1/instances/{id}?wait=`, up to 30 s, the server may cap it lower).
   * Only when an answer comes back early unfinished (a server without long-poll) does the client pause:
   * first for `interval` (default 0.1 s), growing by half each time up to `maxInterval` (default 5 s).
   */
  interval?: Duration;
  maxInterval?: Duration;
  signal?: AbortSignal;
}

const FINISHED: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);
/** Longest `?wait=` one request asks for (the server caps it too). */
const LONG_POLL_SECONDS = 30;

const keyHeader = (key: string | undefined): Record<string, string> | undefined => (key === undefined ? undefined : { 'idempotency-key': key });

/** Pages of instances: `for await (const i of list)` walks every instance; `.pages()` yields whole pages. */
export interface InstancePages extends AsyncIterable<T.InstanceSummary> {
  pages(): AsyncIterable<T.InstanceList>;
}

export function createClient(opts: ClientOptions) {
  const fetcher = createFetcher(opts);
  const call = createTransport(opts, fetcher);
  return {
    /** GET /healthz: the API is up, reaches its database, and when a worker was last seen (docs/monitoring.md). */
    health: () =>
      call<{ ok: true; database: 'ok'; worker: { seen: boolean; last_seen_at: string | null; age_s: number | null; max_age_s: number | null } }>('GET', '/healthz'),
    instances: instances(call, fetcher),
    workflows: workflows(call),
    schedules: schedules(call),
    hooks: hooks(call),
  };
}

export type PgflareClient = ReturnType<typeof createClient>;

function workflowBody(workflow: WorkflowInput): { workflow: string } | { graph: Record<string, unknown> } {
  if (typeof workflow === 'string') return { workflow };
  if (isStep(workflow)) return { graph: workflow.toGraph() as unknown as Record<string, unknown> };
  return { graph: workflow as unknown as Record<string, unknown> };
}

function instances(call: Transport, fetcher: Fetcher) {
  const get = (id: string) => call<T.Instance>('GET', `/v1/instances/${seg(id)}`);

  const wait = async (id: string, o: WaitOptions = {}): Promise<T.Instance> => {
    const timeout = toSeconds(o.timeout ?? 60, 'timeout');
    const maxInterval = toSeconds(o.maxInterval ?? 5, 'maxInterval') * 1000;
    let interval = toSeconds(o.interval ?? 0.1, 'interval') * 1000;
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const wait = Math.min(LONG_POLL_SECONDS, Math.floor((deadline - Date.now()) / 100) / 10);
      const asked = Date.now();
      const inst = await call<T.Instance>('GET', `/v1/instances/${seg(id)}`, { query: { wait: wait > 0 ? wait : undefined }, signal: o.signal });
      if (FINISHED.has(inst.status)) return inst;
      const left = deadline - Date.now();
      if (left <= 0) throw new PgflareTimeoutError(id, inst.status, timeout);
      if (Date.now() - asked < wait * 1000 - 50 || wait <= 0) {
        await pause(Math.min(interval, left), o.signal);
        interval = Math.min(maxInterval, interval * 1.5);
      }
    }
  };

  const start = <W extends WorkflowInput>(workflow: W & Checked<W>, o: StartOptions = {}): Promise<T.Started> => {
    const label = o.label ?? (isStep(workflow) ? workflow.startLabel : undefined);
    return call<T.Started>('POST', '/v1/instances', { body: { ...workflowBody(workflow), label }, headers: keyHeader(o.idempotencyKey) });
  };

  return {
    /** POST /v1/instances: starts DSL text, a builder step or envelope JSON. */
    start,
    /** Starts, then waits for the instance to finish (see wait). */
    run: async <W extends WorkflowInput>(workflow: W & Checked<W>, o: StartOptions & WaitOptions = {}): Promise<T.Instance> => {
      const { instance_id } = await start(workflow as never, o);
      return wait(instance_id, o);
    },
    /** GET /v1/instances/:id: the instance with its nodes and result. */
    get,
    /** Long-polls (`?wait=`) until the instance is completed, failed or cancelled; returns its final state. */
    wait,
    /** GET /v1/instances, every page: `for await (const i of client.instances.list({ status: 'failed' }))`. */
    list(q: T.ListQuery = {}): InstancePages {
      const pages = async function* (): AsyncGenerator<T.InstanceList> {
        let cursor: string | undefined;
        do {
          const page: T.InstanceList = await call('GET', '/v1/instances', { query: { ...q, cursor } });
          yield page;
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
      };
      return {
        pages,
        async *[Symbol.asyncIterator]() {
          for await (const page of pages()) yield* page.instances;
        },
      };
    },
    /** One page of GET /v1/instances (pass the previous page's next_cursor as cursor). */
    page: (q: T.ListQuery & { cursor?: string } = {}) => call<T.InstanceList>('GET', '/v1/instances', { query: { ...q } }),
    /** POST /v1/instances/:id/cancel. A finished instance is a 409 `instance_finished`. */
    cancel: (id: string, reason?: string) => call<{ message: string }>('POST', `/v1/instances/${seg(id)}/cancel`, { body: reason === undefined ? {} : { reason } }),
    /** POST /v1/instances/:id/signals/:name with `data` (any JSON, default {}). */
    signal: (id: string, name: string, data: unknown = {}) => call<{ ok: true }>('POST', `/v1/instances/${seg(id)}/signals/${seg(name)}`, { body: data }),
    /** GET /v1/instances/:id/explain: the instance as a text tree with each node's status. */
    explain: async (id: string) => (await call<{ text: string }>('GET', `/v1/instances/${seg(id)}/explain`)).text,
    /** GET /v1/instances/:id/events: what happened to the instance, oldest first. */
    events: (id: string) => every<T.InstanceEvent>(call, `/v1/instances/${seg(id)}/events`, 'events'),
    /**
     * GET /v1/instances/:id/events/stream as it happens: `for await (const x of pf.instances.stream(id))`
     * yields the instance (first and on each status change), each event, then `end`; reconnects with
     * Last-Event-ID when the connection ends early. Breaking out of the loop closes the stream.
     */
    stream: (id: string, o: StreamOptions = {}) => streamInstance(fetcher, id, o),
  };
}

function workflows(call: Transport) {
  return {
    /** POST /v1/workflows: a new version of the named workflow (steps read the start input as `$input`). */
    define<W extends WorkflowInput>(name: string, workflow: W & Checked<W, 'input'>, o: { description?: string } = {}) {
      return call<T.WorkflowDefined>('POST', '/v1/workflows', { body: { name, ...workflowBody(workflow), description: o.description } });
    },
    /** GET /v1/workflows, every page. */
    list: () => every<T.WorkflowSummary>(call, '/v1/workflows', 'workflows'),
    get: (name: string) => call<T.Workflow>('GET', `/v1/workflows/${seg(name)}`),
    /** POST /v1/workflows/:name/instances: starts the latest (or a given) version with `input`. */
    start: (name: string, body: T.StartWorkflowBody = {}, o: { idempotencyKey?: string } = {}) =>
      call<T.WorkflowStarted>('POST', `/v1/workflows/${seg(name)}/instances`, { body, headers: keyHeader(o.idempotencyKey) }),
    /** DELETE /v1/workflows/:name: every version; returns how many were removed. */
    drop: async (name: string) => (await call<{ removed: number }>('DELETE', `/v1/workflows/${seg(name)}`)).removed,
  };
}

function schedules(call: Transport) {
  const path = (name: string) => `/v1/schedules/${seg(name)}`;
  return {
    create: (body: T.CreateScheduleBody) => call<T.Schedule>('POST', '/v1/schedules', { body }),
    /** GET /v1/schedules, every page. */
    list: () => every<T.Schedule>(call, '/v1/schedules', 'schedules'),
    /** The schedule with its newest 20 fires. */
    get: (name: string) => call<T.ScheduleWithFires>('GET', path(name)),
    update: (name: string, changes: T.AlterScheduleBody) => call<T.Schedule>('PATCH', path(name), { body: changes }),
    pause: (name: string) => call<T.Schedule>('POST', `${path(name)}/pause`),
    resume: (name: string) => call<T.Schedule>('POST', `${path(name)}/resume`),
    drop: async (name: string) => {
      await call<{ ok: true }>('DELETE', path(name));
    },
  };
}

function hooks(call: Transport) {
  const path = (name: string) => `/v1/hooks/${seg(name)}`;
  return {
    /** The answer holds the signing secret, shown this once. */
    create: (body: T.CreateHookBody) => call<T.HookCreated>('POST', '/v1/hooks', { body }),
    /** GET /v1/hooks, every page. */
    list: () => every<T.Hook>(call, '/v1/hooks', 'hooks'),
    get: (name: string) => call<T.HookDetail>('GET', path(name)),
    /** GET /v1/hooks/:name/deliveries, every page, newest first. */
    deliveries: (name: string) => every<T.HookDelivery>(call, `${path(name)}/deliveries`, 'deliveries'),
    /** A new secret (generated unless given); the old one stops working at once. */
    rotate: (name: string, secret?: string) => call<T.HookSecret>('POST', `${path(name)}/rotate`, { body: secret === undefined ? {} : { secret } }),
    drop: async (name: string) => {
      await call<{ ok: true }>('DELETE', path(name));
    },
  };
}

/** Every row of a paged list route, following next_cursor, 1000 rows a request. */
async function every<R>(call: Transport, path: string, key: string): Promise<R[]> {
  const out: R[] = [];
  let cursor: string | undefined;
  do {
    const page: Record<string, unknown> = await call('GET', path, { query: { limit: 1000, cursor } });
    out.push(...(page[key] as R[]));
    cursor = (page.next_cursor as string | null) ?? undefined;
  } while (cursor);
  return out;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
