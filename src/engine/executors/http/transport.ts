/** How transport failures (fetch's errors) become pg_durable's error texts, and header bytes. */

const CONNECT_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function isConnectCode(code: unknown): boolean {
  if (typeof code !== 'string') return false;
  return CONNECT_ERROR_CODES.has(code) || /^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code);
}

export function describeError(e: unknown): { message: string; connect: boolean } {
  // undici: TypeError('fetch failed', { cause: Error{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED …' } }).
  let cur: any = e;
  let message = e instanceof Error ? e.message : String(e);
  let connect = false;
  for (let depth = 0; cur && depth < 5; depth++) {
    if (isConnectCode(cur.code)) connect = true;
    if (cur !== e && cur instanceof Error && cur.message) message = cur.message;
    // AggregateError (happy eyeballs): look at the first inner error.
    if (Array.isArray(cur.errors) && cur.errors.length > 0 && !cur.cause) cur = cur.errors[0];
    else cur = cur.cause;
  }
  return { message, connect };
}

/** Error code of a connection refused by the connection's own address check (src/runtime/node/guarded-fetch.ts). */
export const BLOCKED_CODE = 'EPGFLARE_BLOCKED';

/** The refusal text when the connection's own address check refused it (code BLOCKED_CODE), else null. */
export function blockedByGuard(e: unknown): string | null {
  let cur: any = e;
  for (let depth = 0; cur && depth < 5; depth++) {
    if (cur.code === BLOCKED_CODE && typeof cur.message === 'string') return cur.message;
    cur = Array.isArray(cur.errors) && cur.errors.length > 0 && !cur.cause ? cur.errors[0] : cur.cause;
  }
  return null;
}

export function transportError(e: unknown, url: string, timeoutSeconds: number, signal: AbortSignal): string {
  if (signal.aborted || (e instanceof Error && e.name === 'TimeoutError')) return `HTTP timeout after ${timeoutSeconds}s: ${url}`;
  const d = describeError(e);
  return d.connect ? `HTTP connection failed: ${url} - ${d.message}` : `HTTP request failed: ${url} - ${d.message}`;
}

/** Header values go out as bytes: non-ASCII text is sent as its UTF-8 bytes (as reqwest does). */
export function toByteString(v: string): string {
  if (/^[\x00-\x7f]*$/.test(v)) return v;
  let out = '';
  for (const b of new TextEncoder().encode(v)) out += String.fromCharCode(b);
  return out;
}
