/**
 * A Worker of your own with pgflare in it: `/` and `/hello` are yours; `/pgflare/*` is pgflare's REST
 * API (e.g. POST /pgflare/v1/instances); the queue runs workflow steps and the every-minute cron sweeps.
 */
import { createPgflareWorker } from 'pgflare/worker';

interface MyEnv {
  /** Secret: your PostgreSQL (the direct, unpooled connection string). */
  PG_URL: string;
  /** pgflare's step queue (wrangler.toml). */
  STEPS: Queue;
  PGFLARE_API_TOKENS?: string;
}

const SWEEP_CRON = '* * * * *';

const pgflare = createPgflareWorker<MyEnv>({
  prefix: '/pgflare',
  env: (env) => ({ DATABASE_URL: env.PG_URL, QUEUE: env.STEPS, PGFLARE_API_TOKENS: env.PGFLARE_API_TOKENS }),
});

export default {
  async fetch(request, env, ctx) {
    const handled = await pgflare.route(request, env, ctx);
    if (handled) return handled;
    const { pathname } = new URL(request.url);
    if (pathname === '/hello') return Response.json({ hello: 'from my app' });
    return new Response('my app; pgflare is under /pgflare\n');
  },
  queue: (batch, env, ctx) => pgflare.queue(batch, env, ctx),
  async scheduled(controller, env, ctx) {
    if (controller.cron === SWEEP_CRON) await pgflare.scheduled(controller, env, ctx);
    // else: your own nightly job at 03:00
  },
} satisfies ExportedHandler<MyEnv>;
