/**
 * `pgflare/worker`: pgflare inside your own Cloudflare Worker. `createPgflareWorker()` returns the
 * three handlers (REST API, step queue, sweep cron); mount the API under a path prefix of your choice
 * beside your own routes, and map your bindings to pgflare's if they are named differently.
 *
 *   const pgflare = createPgflareWorker<MyEnv>({ prefix: '/pgflare' });
 *   export default {
 *     fetch: async (req, env, ctx) => (await pgflare.route(req, env, ctx)) ?? myApp(req, env, ctx),
 *     queue: pgflare.queue,
 *     scheduled: pgflare.scheduled,
 *   };
 *
 * The default export is the Worker this repository deploys (wrangler.toml `main`), for
 * `export { default } from 'pgflare/worker'` in a Worker that is only pgflare.
 */
import type { ExecutionContext, MessageBatch, ScheduledController } from '@cloudflare/workers-types/index.ts';
import { handleFetch, handleQueue, handleScheduled, type Env, type SweepReport } from './handlers.ts';

export type { Env, SweepReport } from './handlers.ts';
export type { StepMessage } from './dispatch.ts';
export { default } from './index.ts';

export interface PgflareWorkerOptions<E> {
  /** Path prefix of pgflare's REST API and webhooks, e.g. `/pgflare` (then `/pgflare/v1/instances`). Default: none. */
  prefix?: string;
  /**
   * pgflare's environment from yours: `DATABASE_URL` or the `HYPERDRIVE` binding, the `QUEUE` producer binding and the optional
   * `PGFLARE_*` variables. Default: your env as is (bindings named as in pgflare's wrangler.toml).
   */
  env?: (env: E) => Env;
}

export interface PgflareWorker<E> {
  /** pgflare's response when the request's path is under the prefix, else null (the request is yours). */
  route(request: Request, env: E, ctx: ExecutionContext): Promise<Response | null>;
  /** The REST API; paths outside the prefix get a 404. */
  fetch(request: Request, env: E, ctx: ExecutionContext): Promise<Response>;
  /** The step queue's consumer (one message per ready step). If your Worker consumes other queues too, call it for pgflare's only. */
  queue(batch: MessageBatch<unknown>, env: E, ctx: ExecutionContext): Promise<void>;
  /** The sweep, for a cron trigger (every minute). If you have other crons, call it for pgflare's only (`controller.cron`). */
  scheduled(controller: ScheduledController, env: E, ctx: ExecutionContext): Promise<void>;
}

function normalisePrefix(prefix = ''): string {
  const p = prefix.replace(/\/+$/, '');
  if (p && !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(p)) throw new Error(`pgflare: prefix "${prefix}" must be a path starting with "/"`);
  return p;
}

export function createPgflareWorker<E = Env>(options: PgflareWorkerOptions<E> = {}): PgflareWorker<E> {
  const prefix = normalisePrefix(options.prefix);
  const envOf = options.env ?? ((env: E) => env as unknown as Env);

  async function route(request: Request, env: E, ctx: ExecutionContext): Promise<Response | null> {
    const url = new URL(request.url);
    if (prefix && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return null;
    if (prefix) {
      url.pathname = url.pathname.slice(prefix.length) || '/';
      request = new Request(url, request);
    }
    return handleFetch(request, envOf(env), ctx);
  }

  return {
    route,
    async fetch(request, env, ctx) {
      return (await route(request, env, ctx)) ?? Response.json({ error: { code: 'not_found', message: 'not found' } }, { status: 404 });
    },
    queue: (batch, env, ctx) => handleQueue(batch, envOf(env), ctx),
    scheduled: async (controller, env, ctx) => {
      await handleScheduled(controller, envOf(env), ctx);
    },
  };
}
