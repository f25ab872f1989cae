/**
 * `instances.stream(id)`: GET /v1/instances/{instance_id}/events/stream (server-sent events) as an async
 * iterator. Reads the stream with `fetch` (no EventSource: it cannot send the bearer token, and Workers
 * and Node have none), parses the SSE lines itself, and when the connection ends before the `end` event
 * (the server closes a stream after PGFLARE's stream limit, a proxy cuts it, the network drops) opens it
 * again with `Last-Event-ID`, so no event is missed or repeated.
 */
import type * as T from './api-types.ts';
import { PgflareError, parseJson, refused, seg, type Fetcher } from './transport.ts';

/** What the stream carries, in order: the instance first and on every status change, each event of its history, then `end`. */
export type InstanceStreamItem =
  /** The instance as GET /v1/instances/{instance_id} returns it, without nodes. */
  | { type: 'instance'; instance: Omit<T.Instance, 'nodes'> }
  | { type: 'event'; event: T.InstanceEvent }
  | { type: 'end'; status: 'completed' | 'failed' | 'cancelled' };

export interface StreamOptions {
  /** Start after this event_id (as `Last-Event-ID`): only later events come. Default: from the first. */
  after?: number;
  /** Reopen a stream that ended before `end` (default true); false throws `stream_closed` instead. */
  reconnect?: boolean;
  /** Reopenings in a row that brought no message at all before giving up with `stream_closed` (default 5). */
  maxReconnects?: number;
  signal?: AbortSignal;
}

interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** SSE messages of a response body (the text/event-stream format: `field: value` lines, a blank line ends one). */
async function* messages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let msg: { event?: string; data: string[]; id?: string } = { data: [] };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (msg.data.length || msg.event) yield { event: msg.event ?? 'message', data: msg.data.join('\n'), id: msg.id };
          msg = { data: [] };
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: the server's keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
        if (field === 'event') msg.event = value;
        else if (field === 'data') msg.data.push(value);
        else if (field === 'id') msg.id = value;
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

export async function* streamInstance(fetcher: Fetcher, id: string, o: StreamOptions = {}): AsyncGenerator<InstanceStreamItem> {
  const path = `/v1/instances/${seg(id)}/events/stream`;
  let last = o.after;
  let lastInstance: string | undefined;
  let idle = 0;
  for (;;) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (last !== undefined) headers['last-event-id'] = String(last);
    const res = await fetcher('GET', path, { headers, signal: o.signal });
    if (!res.ok || !res.body) {
      const text = await res.text();
      throw refused(res.status, parseJson(text), text, 'GET', path);
    }
    let heard = false;
    for await (const m of messages(res.body)) {
      heard = true;
      if (m.event === 'instance') {
        // A reopened stream starts with the instance again: pass it on only when it changed.
        if (m.data === lastInstance) continue;
        lastInstance = m.data;
        yield { type: 'instance', instance: JSON.parse(m.data) };
      } else if (m.event === 'event') {
        const event = JSON.parse(m.data) as T.InstanceEvent;
        last = Number(m.id ?? event.event_id);
        yield { type: 'event', event };
      } else if (m.event === 'end') {
        yield { type: 'end', status: (JSON.parse(m.data) as { status: 'completed' | 'failed' | 'cancelled' }).status };
        return;
      } else if (m.event === 'error') {
        throw refused(200, parseJson(m.data), m.data, 'GET', path);
      }
    }
    // A stream the server closed after its time limit still began with the instance; one that ends
    // with nothing at all, again and again, is a server or proxy that will not stream.
    idle = heard ? 0 : idle + 1;
    if (o.reconnect === false || idle > (o.maxReconnects ?? 5)) {
      throw new PgflareError(res.status, 'stream_closed', `GET ${path}: the stream ended before the instance finished`, 'GET', path);
    }
  }
}
