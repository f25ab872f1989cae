/**
 * Test entry around the real worker (src/runtime/worker/index.ts): the QUEUE binding is wrapped so every
 * message the worker sends is recorded (and still sent to the real local queue), and
 * GET /__test/sent returns and clears the record. Tests then deliver those messages by hand through
 * Miniflare's queue() — deterministic, no waiting on the local queue's batch timer.
 */
import worker, { type Env } from '../../src/runtime/worker/index.ts';

interface Sent {
  body: unknown;
  delaySeconds?: number;
}

const sent: Sent[] = [];

function wrap(env: Env): Env {
  const q = env.QUEUE;
  const QUEUE = {
    send: async (body: unknown, opts?: { delaySeconds?: number }) => {
      sent.push({ body, delaySeconds: opts?.delaySeconds });
      return q.send(body as never, opts as never);
    },
    sendBatch: async (messages: Iterable<{ body: unknown; delaySeconds?: number }>, opts?: unknown) => {
      const list = [...messages];
      for (const m of list) sent.push({ body: m.body, delaySeconds: m.delaySeconds });
      return q.sendBatch(list as never, opts as never);
    },
  };
  return { ...env, QUEUE: QUEUE as unknown as Env['QUEUE'] };
}

export default {
  fetch(request: Request, env: Env, ctx: never) {
    if (new URL(request.url).pathname === '/__test/sent') return Response.json(sent.splice(0));
    return worker.fetch(request as never, wrap(env), ctx);
  },
  queue: (batch: never, env: Env, ctx: never) => worker.queue(batch, wrap(env), ctx),
  scheduled: (controller: never, env: Env, ctx: never) => worker.scheduled(controller, wrap(env), ctx),
};
