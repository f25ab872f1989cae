/**
 * The Cloudflare Workers entry (wrangler.toml `main`): fetch (REST API), queue (one step per message),
 * scheduled (the sweeper). The handlers, and the Workers limits they respect, are in handlers.ts.
 * This module exports nothing else at runtime: workerd treats every named export of the main module
 * as an entrypoint.
 */
import type { ExportedHandler } from '@cloudflare/workers-types/index.ts';
import { handleFetch, handleQueue, handleScheduled, type Env } from './handlers.ts';

export type { Env } from './handlers.ts';

export default {
  fetch: (request, env, ctx) =>
    handleFetch(request as unknown as Request, env, ctx) as unknown as ReturnType<NonNullable<ExportedHandler<Env>['fetch']>>,
  queue: (batch, env, ctx) => handleQueue(batch, env, ctx),
  scheduled: async (controller, env, ctx) => {
    await handleScheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<Env>;
