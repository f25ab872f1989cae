/**
 * The response side of an HTTP step, as pg_durable builds it: body decoding, headers, the result
 * envelope and the error preview of a status of 500 or more (which fails the step).
 */
import { encodeBase64 } from './base64.ts';

export const ERROR_PREVIEW_BYTES = 512;

const TEXTUAL_APPLICATION_TYPES = new Set([
  'application/json',
  'application/xml',
  'application/javascript',
  'application/ecmascript',
  'application/x-www-form-urlencoded',
  'application/graphql',
  'application/yaml',
  'application/x-yaml',
]);

/** MIME essence (first value before `,`, parameters dropped, trimmed, lower-cased). */
function mimeEssence(contentType: string): string {
  return contentType.split(',')[0].split(';')[0].trim().toLowerCase();
}

/** Whether a Content-Type *declares* a textual body (pg_durable's list: text/*, *+json, application/json, …). */
export function isDeclaredTextual(contentType: string | null | undefined): boolean {
  if (!contentType) return false;
  const mime = mimeEssence(contentType);
  if (mime === '') return false;
  if (mime.startsWith('text/')) return true;
  if (mime.endsWith('+json') || mime.endsWith('+xml') || mime.endsWith('+yaml')) return true;
  return TEXTUAL_APPLICATION_TYPES.has(mime);
}

function charsetOf(contentType: string): string | null {
  const first = contentType.split(',')[0];
  for (const param of first.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    let v = param.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return null;
}

export interface DecodedBody {
  body: string;
  encoding: 'text' | 'base64';
}

/**
 * Declared text → decoded with the declared charset (default and fallback UTF-8, malformed
 * sequences replaced). Otherwise valid UTF-8 without NUL → text, else base64.
 */
export function decodeResponseBody(bytes: Uint8Array, contentType: string | null): DecodedBody {
  if (isDeclaredTextual(contentType)) {
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(charsetOf(contentType!) ?? 'utf-8');
    } catch {
      decoder = new TextDecoder('utf-8');
    }
    return { body: decoder.decode(bytes), encoding: 'text' };
  }
  if (!bytes.includes(0)) {
    try {
      return { body: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes), encoding: 'text' };
    } catch {
      // not UTF-8
    }
  }
  return { body: encodeBase64(bytes), encoding: 'base64' };
}

/**
 * Response headers: lower-case names; values that are not visible ASCII are skipped (pg_durable
 * skips values that are not valid `to_str()`); `set-cookie` keeps its last value.
 */
export function collectResponseHeaders(headers: Headers): Array<[string, string]> {
  const out = new Map<string, string>();
  const visible = (v: string) => /^[\t\x20-\x7e]*$/.test(v);
  for (const [name, value] of headers) {
    if (name === 'set-cookie') continue;
    if (visible(value)) out.set(name.toLowerCase(), value);
  }
  const cookies = typeof headers.getSetCookie === 'function' ? headers.getSetCookie() : [];
  const lastCookie = [...cookies].reverse().find(visible);
  if (lastCookie !== undefined) out.set('set-cookie', lastCookie);
  return [...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** The result envelope; key order status, body, encoding, headers, ok, duration_ms. */
export function buildEnvelope(
  status: number,
  body: DecodedBody,
  headers: ReadonlyArray<readonly [string, string]>,
  durationMs: number,
): string {
  // Built by hand so header names that look like integers keep their order.
  const h = headers.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',');
  const ok = status >= 200 && status <= 299;
  return (
    `{"status":${status},"body":${JSON.stringify(body.body)},"encoding":${JSON.stringify(body.encoding)},` +
    `"headers":{${h}},"ok":${ok},"duration_ms":${Math.max(0, Math.floor(durationMs))}}`
  );
}

/** Body excerpt for a 5xx failure: ≤ 512 UTF-8 bytes, cut on a character boundary. */
export function errorPreview(body: DecodedBody): string {
  const bytes = new TextEncoder().encode(body.body);
  if (bytes.length <= ERROR_PREVIEW_BYTES) return body.body;
  let end = ERROR_PREVIEW_BYTES;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  const unit = body.encoding === 'base64' ? 'base64 characters' : 'bytes';
  return `${new TextDecoder().decode(bytes.subarray(0, end))}... [truncated, ${bytes.length} ${unit} total]`;
}
