/** Shared set-up for the API tests: an app on the file's test database and a request helper. */
import type { Hono } from 'hono';

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export function client(app: Pick<Hono<any>, 'request'>) {
  return async function call<T = any>(
    method: string,
    path: string,
    opts: { token?: string | null; auth?: string; body?: unknown; raw?: string } = {},
  ): Promise<Reply<T>> {
    const headers: Record<string, string> = {};
    if (opts.auth !== undefined) headers.Authorization = opts.auth;
    else if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* keep text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
}

export interface Sse {
  event: string;
  id?: string;
  data: any;
}

/**
 * Reads server-sent events from a response body one at a time: next() resolves with the next event,
 * or null once the stream has closed.
 */
export function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let comments = 0;
  const next = async (): Promise<Sse | null> => {
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const ev: Sse = { event: 'message', data: '' };
        const data: string[] = [];
        for (const line of frame.split('\n')) {
          const i = line.indexOf(':');
          const [k, v] = i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1).replace(/^ /, '')];
          if (k === 'event') ev.event = v;
          else if (k === 'id') ev.id = v;
          else if (k === 'data') data.push(v);
        }
        if (data.length === 0) {
          comments++;
          continue; // a comment line (keep-alive)
        }
        ev.data = JSON.parse(data.join('\n'));
        return ev;
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buf += dec.decode(value, { stream: true });
    }
  };
  /** Events up to and including the first that `stop` accepts (or the end of the stream). */
  const until = async (stop: (e: Sse) => boolean): Promise<Sse[]> => {
    const out: Sse[] = [];
    for (;;) {
      const e = await next();
      if (!e) return out;
      out.push(e);
      if (stop(e)) return out;
    }
  };
  return { next, until, cancel: () => reader.cancel(), comments: () => comments };
}
