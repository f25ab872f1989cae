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
