/**
 * GET /v1/instances/{instance_id}/events/stream: server-sent events of one instance until it finishes.
 *
 * The stream polls: every `pollMs` it reads the instance and its events after the last one sent, each
 * read a short transaction as the token's role (RLS as on every route), and holds no connection in
 * between. LISTEN would need a connection held for the whole stream, which Workers cannot keep (the
 * Neon driver's connections are per request and not for LISTEN) and which would take a pool slot per
 * open stream on Node; a short poll costs one indexed read per interval and works the same on both.
 *
 * Events: `instance` (the instance without nodes) first and on every status change; `event` per row
 * of its history, with `id:` = event_id so an EventSource that reconnects (Last-Event-ID) misses
 * nothing and repeats nothing; `end` once it is completed, failed or cancelled, then the stream closes;
 * `error` (our error body) if a read fails after the stream opened (e.g. the instance was pruned: 404).
 */
import { streamSSE } from 'hono/streaming';
import { ApiError, errorBody, mapDbError } from './errors.ts';
import { eventsAfter, instanceSummary, TERMINAL } from './instances.ts';
import { streamInstance } from './instances-openapi.ts';
import type { ApiApp, RouteKit } from './kit.ts';

export interface StreamOptions {
  /** How often an open stream reads the database (ms). */
  pollMs: number;
  /** Longest a stream stays open (s); the client reconnects with Last-Event-ID after it. */
  maxSeconds: number;
  /** A comment line after this long without output (ms), so proxies do not close an idle stream (Cloudflare's limit is 100 s). */
  keepAliveMs: number;
}

/** Events read per poll; a longer backlog is sent over the next polls without waiting. */
const BATCH = 500;


export function streamRoutes(app: ApiApp, { asRole }: RouteKit, opts: StreamOptions): void {
  app.openapi(streamInstance, async (c) => {
    const { instance_id: id } = c.req.valid('param');
    const { after: afterQuery } = c.req.valid('query');
    const lastId = c.req.header('Last-Event-ID');
    let after = afterQuery ?? (lastId !== undefined && /^\d{1,15}$/.test(lastId) ? Number(lastId) : 0);
    const read = () =>
      asRole(c, async (client) => {
        const instance = await instanceSummary(client, id);
        if (!instance) throw new ApiError(404, 'not_found', `instance ${id} not found`);
        return { instance, events: await eventsAfter(client, id, after, BATCH) };
      });
    // The first read happens before the stream opens, so an unknown id is still a JSON 404.
    let first: Awaited<ReturnType<typeof read>> | null = await read();
    const deadline = Date.now() + opts.maxSeconds * 1000;

    return streamSSE(c, async (stream) => {
      let aborted = false;
      stream.onAbort(() => {
        aborted = true;
      });
      // Errors are caught here, not by streamSSE's onError, which would also send the raw message.
      try {
        let status: unknown;
        let wrote = Date.now();
        while (!aborted) {
          const { instance, events } = first ?? (await read());
          first = null;
          if (instance.status !== status) {
            status = instance.status;
            await stream.writeSSE({ event: 'instance', data: JSON.stringify(instance) });
            wrote = Date.now();
          }
          for (const e of events) {
            await stream.writeSSE({ event: 'event', id: String(e.event_id), data: JSON.stringify(e) });
            after = e.event_id;
            wrote = Date.now();
          }
          if (Date.now() - wrote >= opts.keepAliveMs) {
            await stream.write(': keep-alive\n\n');
            wrote = Date.now();
          }
          // Finished: the events of its last checkpoint are in this read (read after the status).
          if (TERMINAL.has(instance.status as string) && events.length < BATCH) {
            await stream.writeSSE({ event: 'end', data: JSON.stringify({ status: instance.status }) });
            return;
          }
          if (events.length === BATCH) continue;
          if (Date.now() >= deadline) return;
          await stream.sleep(opts.pollMs);
        }
      } catch (err) {
        const api = err instanceof ApiError ? err : mapDbError(err);
        if (!api) c.var.log.error('api: event stream failed', { instance: id, error: err });
        const body = api ? errorBody(api.code, api.message) : errorBody('internal', 'internal error');
        await stream.writeSSE({ event: 'error', data: JSON.stringify(body) }).catch(() => undefined);
      }
    }) as never;
  });
}
