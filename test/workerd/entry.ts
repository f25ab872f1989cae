/**
 * Test entry around the real worker (src/runtime/worker/index.ts): the QUEUE binding is wrapped so every
 * message the worker sends is recorded (and still sent to the real local queue), and
 * GET /__test/sent returns and clears the record (and GET /__test/queries the queries sent). Tests then deliver those messages by hand through
 * Miniflare's queue() — deterministic, no waiting on the local queue's batch timer.
 */
import { Client } from '@neondatabase/serverless';
import worker, { type Env } from '../../src/runtime/worker/index.ts';

// Every query the worker sends (the Neon driver's Client, the same module instance the worker bundles),
// for the round-trip tests: GET /__test/queries returns and clears their texts.
const queries: string[] = [];
const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
const query = proto.query;
proto.query = function (this: unknown, ...args: unknown[]) {
  const a = args[0] as string | { text?: string };
  queries.push(String(typeof a === 'string' ? a : a?.text).replace(/\s+/g, ' ').slice(0, 4000));
  return query.apply(this, args);
};

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
    if (new URL(request.url).pathname === '/__test/queries') return Response.json(queries.splice(0));
    return worker.fetch(request as never, wrap(env), ctx);
  },
  queue: (batch: never, env: Env, ctx: never) => worker.queue(batch, wrap(env), ctx),
  scheduled: (controller: never, env: Env, ctx: never) => worker.scheduled(controller, wrap(env), ctx),
};
