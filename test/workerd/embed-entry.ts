/**
 * A user's own Worker with pgflare embedded (as examples/worker-embed does, from the source instead of
 * the package): own routes, pgflare's API under /pgflare, bindings under other names mapped to pgflare's,
 * and only one of two crons routed to pgflare's sweep.
 */
import type { ExportedHandler, Queue } from '@cloudflare/workers-types/index.ts';
import { createPgflareWorker } from '../../src/runtime/worker/embed.ts';

interface MyEnv {
  PG_URL: string;
  STEPS: Queue;
  WS_PROXY?: string;
}

const pgflare = createPgflareWorker<MyEnv>({
  prefix: '/pgflare/',
  env: (env) => ({ DATABASE_URL: env.PG_URL, QUEUE: env.STEPS, WS_PROXY: env.WS_PROXY, PGFLARE_LOG_LEVEL: 'error' }),
});

export default {
  async fetch(request, env, ctx) {
    const handled = await pgflare.route(request as never, env, ctx);
    if (handled) return handled as never;
    const { pathname } = new URL(request.url);
    if (pathname === '/hello') return Response.json({ hello: 'from my app' }) as never;
    return new Response(`my app: ${pathname}`) as never;
  },
  queue: (batch, env, ctx) => pgflare.queue(batch, env, ctx),
  async scheduled(controller, env, ctx) {
    if (controller.cron === '* * * * *') await pgflare.scheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<MyEnv>;
