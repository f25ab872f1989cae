/**
 * The dashboard's session: the API token in a cookie, and calls into the API with it.
 *
 * The token the user types is kept in an HttpOnly, SameSite=Strict cookie scoped to /ui (Secure over
 * https). Every page is built from the API's own routes, called in-process with
 * `Authorization: Bearer <cookie>`, so authentication, the token's role, row-level security and the
 * error mapping are exactly the API's: the dashboard holds no SQL and no privileges of its own.
 *
 * CSRF: state-changing forms (cancel, signal, resume, schedule pause/resume, sign-out) rely on
 * SameSite=Strict (a cross-site form post carries no cookie) plus an Origin check: a POST whose Origin
 * (or, without one, Sec-Fetch-Site) is not this host is refused before anything runs.
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';

export const COOKIE = 'pgflare_token';

/** Calls a route of the API app in-process (app.request). */
export type ApiFetch = (path: string, init?: RequestInit) => Promise<Response>;

export interface ApiAnswer<T = any> {
  status: number;
  ok: boolean;
  body: T;
}

export const tokenOf = (c: Context): string | undefined => getCookie(c, COOKIE) || undefined;

const isHttps = (c: Context) =>
  new URL(c.req.url).protocol === 'https:' || (c.req.header('x-forwarded-proto') ?? '').split(',')[0]?.trim() === 'https';

export function keepToken(c: Context, token: string): void {
  setCookie(c, COOKIE, token, { httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/ui', maxAge: 12 * 3600 });
}

export function dropToken(c: Context): void {
  deleteCookie(c, COOKIE, { path: '/ui', secure: isHttps(c) });
}

/** True when a state-changing request comes from this site (Origin, else Sec-Fetch-Site; neither = a non-browser client). */
export function sameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  if (origin && origin !== 'null') {
    try {
      const o = new URL(origin).host;
      // The URL's host, or the Host / X-Forwarded-Host a proxy in front was given.
      return [new URL(c.req.url).host, c.req.header('host'), c.req.header('x-forwarded-host')].includes(o);
    } catch {
      return false;
    }
  }
  if (origin === 'null') return false;
  const site = c.req.header('sec-fetch-site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** One API call as the signed-in token. The body is parsed JSON (or null). */
export async function callApi<T = any>(api: ApiFetch, token: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await api(path, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: { code: 'bad_response', message: text.slice(0, 500) } };
  }
  return { status: res.status, ok: res.ok, body };
}

/** The message of an API error body, whichever shape it has ({error:{code,message}} or {code,message}). */
export function apiMessage(a: ApiAnswer): string {
  const e = a.body?.error ?? a.body;
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return `${code}${typeof e?.message === 'string' ? e.message : `HTTP ${a.status}`}`;
}
