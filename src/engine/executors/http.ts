/**
 * HTTP / HTTP_MULTIPART step executor (SPEC §3.11, §6.3, §6.4; DESIGN decision 5).
 *
 * Runtime-agnostic: web-standard `fetch`, `AbortSignal.timeout`, `TextEncoder`/`TextDecoder` and
 * `crypto.getRandomValues` only (Node 20 and Cloudflare Workers). DNS is a port (`resolve`).
 *
 * The engine takes the step's lease, calls `executeHttpStep`, then checkpoints the outcome. A
 * request can therefore be sent more than once (at-least-once); every request carries
 * `Idempotency-Key: <input.idempotencyKey>` (stable per step) so receivers can dedupe, unless the
 * workflow set that header itself.
 *
 * Steps, in pg_durable's order: substitute (raw mode) → privilege re-check → egress policy/SSRF
 * (egress.ts) → build and send (no redirects, whole-request timeout) → envelope, or a failure for
 * 5xx and transport errors. Nothing throws for user data: every failure is `{ ok: false, error }`
 * with pg_durable's text.
 *
 * Deliberate differences from pg_durable (reqwest), forced by `fetch`:
 * - a GET with a non-empty body fails (`fetch` cannot send one); an empty body is dropped;
 * - duplicate response headers arrive from `fetch` already joined with ", " (except
 *   `set-cookie`, where the last one wins as in pg_durable);
 * - `fetch` may add `accept`, `accept-encoding` etc. and transparently decompresses the body;
 * - multipart bodies are encoded by hand (exact bytes, WHATWG-style escaping of `"`, CR, LF in
 *   names and filenames) rather than by reqwest's form builder.
 * - responses are capped (`maxResponseBytes`, default 10 MiB); pg_durable has no cap.
 */
import { compareUtf8, substitute, isWholeValueReference, type SubstitutionContext } from '../../graph/substitute.ts';
import type { HttpConfig, HttpMultipartConfig } from '../../graph/schema.ts';
import { checkEgress, checkResolvedAddresses, type EgressPolicy, type Resolver } from '../egress.ts';

export type NamedResults = SubstitutionContext['results'];
export type Vars = SubstitutionContext['vars'];

interface HttpStepCommon {
  nodeId: string;
  /** For substitution (SPEC §4). */
  named: NamedResults;
  vars: Vars;
  instanceId: string;
  label: string | null;
  /** Stable per step, e.g. `${instanceId}:${nodeId}:${stamp}`; sent as `Idempotency-Key`. */
  idempotencyKey: string;
  policy: EgressPolicy;
  /** Whether the owner holds EXECUTE on df.http (df.http_multipart for multipart); superusers pass. */
  canUseHttp: boolean;
  /** `submitted_by` as regrole text, for the privilege error. */
  ownerRole: string;
  /** DNS port for the resolved-address check; Workers omit it. */
  resolve?: Resolver;
  /** Injectable for tests; defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /**
   * Node: builds a fetch whose connections apply the given check to the addresses they dial (closes
   * DNS rebinding, src/runtime/node/guarded-fetch.ts). Used whenever the policy checks addresses (every
   * mode but `all`); `fetch` is used otherwise. Workers have none.
   */
  guardedFetch?: (check: (host: string, addresses: readonly string[]) => string | null) => typeof fetch;
  /** Response body cap in bytes (after decompression). Default 10 MiB. */
  maxResponseBytes?: number;
}

export type HttpStepInput = HttpStepCommon &
  ({ nodeType: 'HTTP'; config: HttpConfig } | { nodeType: 'HTTP_MULTIPART'; config: HttpMultipartConfig });

export type StepOutcome = { ok: true; resultText: string } | { ok: false; error: string };

export const DEFAULT_USER_AGENT = 'pg_durable/0.2.6';
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
export const ERROR_PREVIEW_BYTES = 512;
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
const MULTIPART_METHODS = ['POST', 'PUT', 'PATCH'];
// setTimeout's ceiling (~24.8 days); larger delays would overflow to ~immediately.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export function privilegeError(role: string, multipart: boolean): string {
  return multipart
    ? `Blocked: role '${role}' does not have EXECUTE privilege on df.http_multipart(). Grant EXECUTE ON FUNCTION df.http_multipart(text,text,jsonb,jsonb,integer) TO ${role} to allow multipart HTTP requests.`
    : `Blocked: role '${role}' does not have EXECUTE privilege on df.http(). Grant EXECUTE ON FUNCTION df.http(text,text,text,jsonb,integer) TO ${role} to allow HTTP requests.`;
}

// ---------------------------------------------------------------------------------------------
// Step 1: substitution
// ---------------------------------------------------------------------------------------------

export interface PreparedPart {
  name: string;
  filename: string | null;
  contentType: string | null;
  dataB64: string;
}

export interface PreparedRequest {
  method: string;
  url: string;
  body: string | null;
  /** String-valued headers only, in sorted key order. */
  headers: Array<[string, string]>;
  timeoutSeconds: number;
  parts: PreparedPart[] | null;
}

class StepFailure {
  constructor(readonly error: string) {}
}


/**
 * SPEC §3.11 step 1. HTTP: body, url, then each string-valued header in sorted key order.
 * Multipart: url, headers, then each part's name, filename and (whole-value references only)
 * data_b64. `content_type` is never substituted. The first error wins.
 */
export function substituteRequest(input: HttpStepInput): { ok: true; request: PreparedRequest } | { ok: false; error: string } {
  const ctx: SubstitutionContext = { instanceId: input.instanceId, label: input.label, vars: input.vars, results: input.named };
  const sub = (text: string): string => {
    const r = substitute(text, ctx, 'raw');
    if (!r.ok) throw new StepFailure(r.error);
    return r.text;
  };
  try {
    const cfg = input.config;
    const multipart = input.nodeType === 'HTTP_MULTIPART';
    if (typeof cfg.timeout_seconds !== 'number' || !Number.isInteger(cfg.timeout_seconds) || cfg.timeout_seconds < 0) {
      throw new StepFailure(`${multipart ? 'Invalid multipart HTTP config' : 'Invalid HTTP config'}: timeout_seconds must be a non-negative integer`);
    }
    let body: string | null = null;
    if (!multipart) {
      const b = (cfg as HttpConfig).body;
      body = b === null || b === undefined ? null : sub(b);
    }
    const url = sub(cfg.url);
    const headers: Array<[string, string]> = [];
    const rawHeaders = cfg.headers && typeof cfg.headers === 'object' && !Array.isArray(cfg.headers) ? cfg.headers : {};
    for (const key of Object.keys(rawHeaders).sort(compareUtf8)) {
      const v = (rawHeaders as Record<string, unknown>)[key];
      if (typeof v === 'string') headers.push([key, sub(v)]);
    }
    let parts: PreparedPart[] | null = null;
    if (multipart) {
      const rawParts: unknown = (cfg as HttpMultipartConfig).parts;
      if (!Array.isArray(rawParts)) throw new StepFailure('Invalid multipart HTTP config: missing field `parts`');
      parts = rawParts.map((p: any, i: number) => {
        if (!p || typeof p !== 'object') throw new StepFailure(`Invalid multipart HTTP config: parts[${i}] is not an object`);
        if (typeof p.name !== 'string') throw new StepFailure(`Invalid multipart HTTP config: parts[${i}]: missing field \`name\``);
        if (typeof p.data_b64 !== 'string') throw new StepFailure(`Invalid multipart HTTP config: parts[${i}]: missing field \`data_b64\``);
        const name = sub(p.name);
        const filename = typeof p.filename === 'string' ? sub(p.filename) : null;
        let dataB64: string = p.data_b64;
        if (isWholeValueReference(dataB64)) dataB64 = sub(dataB64);
        else if (dataB64.includes('$') || dataB64.includes('{')) {
          throw new StepFailure(
            `HTTP_MULTIPART node ${input.nodeId}: data_b64 for part '${name}' mixes a variable reference with other text. ` +
              "Only a whole-value reference is supported (e.g. data_b64 => '$result' or '{myvar}'), because splicing into base64 would corrupt the payload.",
          );
        }
        return { name, filename, contentType: typeof p.content_type === 'string' ? p.content_type : null, dataB64 };
      });
    }
    return { ok: true, request: { method: cfg.method, url, body, headers, timeoutSeconds: cfg.timeout_seconds, parts } };
  } catch (e) {
    if (e instanceof StepFailure) return { ok: false, error: e.error };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Base64 (strict, like Rust's base64 STANDARD engine) and multipart encoding
// ---------------------------------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(256).fill(-1);
for (let k = 0; k < 64; k++) B64_INDEX[B64.charCodeAt(k)] = k;

export class Base64Error extends Error {
  override name = 'Base64Error';
}

/**
 * Decodes standard, padded base64 after removing ASCII whitespace (PostgreSQL's `encode(…,
 * 'base64')` wraps lines at 76). Canonical padding and zero trailing bits are required. Throws
 * Base64Error with the base64 crate's wording (offsets are byte offsets in the stripped input).
 */
export function decodeBase64Strict(text: string): Uint8Array {
  const raw = new TextEncoder().encode(text);
  const s = raw.filter((b) => !(b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d));
  let padStart = s.length;
  for (let i = 0; i < s.length; i++) {
    const b = s[i];
    if (b === 0x3d) {
      if (padStart === s.length) padStart = i;
    } else if (padStart !== s.length || B64_INDEX[b] < 0) {
      // A symbol after padding, or outside the alphabet.
      const at = padStart !== s.length && B64_INDEX[b] >= 0 ? padStart : i;
      throw new Base64Error(`Invalid symbol ${s[at]}, offset ${at}.`);
    }
  }
  const dataLen = padStart;
  const pad = s.length - padStart;
  if (dataLen % 4 === 1) throw new Base64Error(`Invalid input length: ${s.length}`);
  if (pad > 2 || (dataLen + pad) % 4 !== 0 || (dataLen % 4 === 0 && pad !== 0)) throw new Base64Error('Invalid padding');
  const rem = dataLen % 4;
  if (rem === 2 && (B64_INDEX[s[dataLen - 1]] & 0x0f) !== 0) {
    throw new Base64Error(`Invalid last symbol ${s[dataLen - 1]}, offset ${dataLen - 1}.`);
  }
  if (rem === 3 && (B64_INDEX[s[dataLen - 1]] & 0x03) !== 0) {
    throw new Base64Error(`Invalid last symbol ${s[dataLen - 1]}, offset ${dataLen - 1}.`);
  }
  const out = new Uint8Array(Math.floor((dataLen * 3) / 4));
  let o = 0;
  for (let i = 0; i + 4 <= dataLen; i += 4) {
    const n = (B64_INDEX[s[i]] << 18) | (B64_INDEX[s[i + 1]] << 12) | (B64_INDEX[s[i + 2]] << 6) | B64_INDEX[s[i + 3]];
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  const tail = dataLen - rem;
  if (rem === 2) {
    out[o++] = ((B64_INDEX[s[tail]] << 2) | (B64_INDEX[s[tail + 1]] >> 4)) & 0xff;
  } else if (rem === 3) {
    const n = (B64_INDEX[s[tail]] << 10) | (B64_INDEX[s[tail + 1]] << 4) | (B64_INDEX[s[tail + 2]] >> 2);
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  return out;
}

/** Standard, padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  const chunks: string[] = [];
  let line = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    line += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
    if (line.length >= 8192) {
      chunks.push(line);
      line = '';
    }
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    line += `${B64[n >> 18]}${B64[(n >> 12) & 63]}==`;
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    line += `${B64[n >> 18]}${B64[(n >> 12) & 63]}${B64[(n >> 6) & 63]}=`;
  }
  chunks.push(line);
  return chunks.join('');
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A MIME type as the `mime` crate accepts it: `type/subtype` tokens, then `; name=value`
 * parameters (token or quoted-string values). Null when valid, else the reason.
 */
export function mimeTypeProblem(ct: string): string | null {
  const semi = ct.indexOf(';');
  const essence = (semi < 0 ? ct : ct.slice(0, semi)).trim();
  const slash = essence.indexOf('/');
  if (slash < 0) return `'${ct}' has no '/' between type and subtype`;
  const type = essence.slice(0, slash);
  const sub = essence.slice(slash + 1);
  if (!TOKEN_RE.test(type) || !TOKEN_RE.test(sub)) return `'${ct}' is not a valid MIME type`;
  if (semi < 0) return null;
  let rest = ct.slice(semi + 1);
  const PARAM = /^[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=("(?:[^"\\\r\n]|\\[^\r\n])*"|[!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*(;|$)/;
  while (rest.trim() !== '') {
    const m = PARAM.exec(rest);
    if (!m) return `'${ct}' has a malformed parameter`;
    rest = rest.slice(m[0].length);
  }
  return null;
}

function escapeDispositionValue(s: string): string {
  return s.replaceAll('"', '%22').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}

/** Random multipart boundary (reqwest's shape: four 16-hex-digit groups). */
export function randomBoundary(): string {
  const words = new BigUint64Array(4);
  crypto.getRandomValues(words);
  return [...words].map((w) => w.toString(16).padStart(16, '0')).join('-');
}

/**
 * multipart/form-data body (RFC 7578): per part `Content-Disposition: form-data; name="…"` with
 * `; filename="…"` when given, `Content-Type` only when given, then the decoded bytes.
 * Throws StepFailure with `Invalid base64 in part '<n>': …` / `Invalid content_type for part '<n>': …`.
 */
export function buildMultipartBody(parts: readonly PreparedPart[], boundary: string): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64Strict(part.dataB64);
    } catch (e) {
      if (e instanceof Base64Error) throw new StepFailure(`Invalid base64 in part '${part.name}': ${e.message}`);
      throw e;
    }
    if (part.contentType !== null) {
      const problem = mimeTypeProblem(part.contentType);
      if (problem) throw new StepFailure(`Invalid content_type for part '${part.name}': ${problem}`);
    }
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeDispositionValue(part.name)}"`;
    if (part.filename !== null) head += `; filename="${escapeDispositionValue(part.filename)}"`;
    head += '\r\n';
    if (part.contentType !== null) head += `Content-Type: ${part.contentType}\r\n`;
    head += '\r\n';
    chunks.push(enc.encode(head), bytes, enc.encode('\r\n'));
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Response handling
// ---------------------------------------------------------------------------------------------

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

/** Whether a Content-Type *declares* a textual body (SPEC §3.11 step 5). */
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

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

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

function describe(e: unknown): { message: string; connect: boolean } {
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

/** The refusal text when the connection's own address check refused it (code EPGFLARE_BLOCKED), else null. */
function blockedByGuard(e: unknown): string | null {
  let cur: any = e;
  for (let depth = 0; cur && depth < 5; depth++) {
    if (cur.code === 'EPGFLARE_BLOCKED' && typeof cur.message === 'string') return cur.message;
    cur = Array.isArray(cur.errors) && cur.errors.length > 0 && !cur.cause ? cur.errors[0] : cur.cause;
  }
  return null;
}

function transportError(e: unknown, url: string, timeoutSeconds: number, signal: AbortSignal): string {
  if (signal.aborted || (e instanceof Error && e.name === 'TimeoutError')) return `HTTP timeout after ${timeoutSeconds}s: ${url}`;
  const d = describe(e);
  return d.connect ? `HTTP connection failed: ${url} - ${d.message}` : `HTTP request failed: ${url} - ${d.message}`;
}

/** Header values go out as bytes: non-ASCII text is sent as its UTF-8 bytes (as reqwest does). */
function toByteString(v: string): string {
  if (/^[\x00-\x7f]*$/.test(v)) return v;
  let out = '';
  for (const b of new TextEncoder().encode(v)) out += String.fromCharCode(b);
  return out;
}

class TooLarge {}

async function readCapped(res: Response, cap: number): Promise<Uint8Array | TooLarge> {
  if (!res.body) return new Uint8Array(0);
  const declared = res.headers.get('content-length');
  const encoded = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase() !== 'identity';
  if (!encoded && declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > cap) {
    await res.body.cancel().catch(() => {});
    return new TooLarge();
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > cap) {
      await reader.cancel().catch(() => {});
      return new TooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The step
// ---------------------------------------------------------------------------------------------

export async function executeHttpStep(input: HttpStepInput): Promise<StepOutcome> {
  const multipart = input.nodeType === 'HTTP_MULTIPART';
  const kind = multipart ? 'HTTP_MULTIPART' : 'HTTP';

  // 1. Substitution.
  const prepared = substituteRequest(input);
  if (!prepared.ok) return prepared;
  const req = prepared.request;
  const { url, method } = req;

  // 2. Privilege, re-checked on every request (raw-JSON nodes bypass the DSL's check).
  if (!input.canUseHttp) return { ok: false, error: privilegeError(input.ownerRole, multipart) };

  // 3. Policy and SSRF.
  const egress = await checkEgress(url, input.policy, input.resolve);
  if (!egress.ok) {
    return { ok: false, error: egress.kind === 'dns' ? `HTTP connection failed: ${url} - ${egress.error}` : egress.error };
  }

  // 4. Build the request.
  if (multipart ? !MULTIPART_METHODS.includes(method) : !HTTP_METHODS.includes(method)) {
    return { ok: false, error: multipart ? `Unsupported HTTP method for multipart: ${method}` : `Unsupported HTTP method: ${method}` };
  }
  const headers = new Headers();
  for (const [name, value] of req.headers) {
    if (multipart && name.toLowerCase() === 'content-type') continue;
    try {
      headers.append(name, toByteString(value));
    } catch {
      return { ok: false, error: `HTTP request failed: ${url} - invalid header '${name}'` };
    }
  }
  if (!headers.has('user-agent')) headers.set('user-agent', DEFAULT_USER_AGENT);
  if (!headers.has('idempotency-key')) headers.set('idempotency-key', input.idempotencyKey);

  let body: Uint8Array<ArrayBuffer> | undefined;
  if (multipart) {
    const boundary = randomBoundary();
    try {
      body = buildMultipartBody(req.parts!, boundary);
    } catch (e) {
      if (e instanceof StepFailure) return { ok: false, error: e.error };
      throw e;
    }
    headers.set('content-type', `multipart/form-data; boundary=${boundary}`);
  } else if (req.body !== null) {
    // Bytes, not a string: a string body would make fetch add `Content-Type: text/plain`.
    if (method === 'GET' && req.body !== '') {
      return {
        ok: false,
        error: `HTTP request failed: ${url} - a GET request cannot carry a body here (fetch does not allow it); use body => NULL or another method`,
      };
    }
    if (method !== 'GET') body = new TextEncoder().encode(req.body);
  }

  // 5. Send, with one deadline for the whole exchange (connect, headers and body). The addresses
  //    checked above are checked again on the connection itself (rebinding).
  const doFetch =
    input.guardedFetch && input.policy.mode !== 'all' ? input.guardedFetch(checkResolvedAddresses) : (input.fetch ?? fetch);
  const signal = AbortSignal.timeout(Math.min(req.timeoutSeconds * 1000, MAX_TIMEOUT_MS));
  const cap = input.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const started = performance.now();
  let res: Response;
  try {
    res = await doFetch(url, { method, headers, body, redirect: 'manual', signal });
  } catch (e) {
    const refused = blockedByGuard(e);
    if (refused !== null) return { ok: false, error: refused };
    return { ok: false, error: transportError(e, url, req.timeoutSeconds, signal) };
  }
  let bytes: Uint8Array | TooLarge;
  try {
    bytes = await readCapped(res, cap);
  } catch (e) {
    if (signal.aborted) return { ok: false, error: `HTTP timeout after ${req.timeoutSeconds}s: ${url}` };
    return { ok: false, error: `Failed to read response body: ${describe(e).message}` };
  }
  if (bytes instanceof TooLarge) {
    const tooLarge = `response body exceeds the limit of ${cap} bytes`;
    // A 5xx still reports its status (the preview is replaced by the reason there is none).
    if (res.status >= 500) return { ok: false, error: `${kind} ${method} ${url} returned ${res.status}: [${tooLarge}]` };
    return { ok: false, error: `HTTP request failed: ${url} - ${tooLarge}` };
  }
  const decoded = decodeResponseBody(bytes, res.headers.get('content-type'));
  const durationMs = performance.now() - started;

  // 6. 5xx fails the node; everything else (1xx–4xx, including 3xx) is a result.
  if (res.status >= 500) {
    return { ok: false, error: `${kind} ${method} ${url} returned ${res.status}: ${errorPreview(decoded)}` };
  }
  return { ok: true, resultText: buildEnvelope(res.status, decoded, collectResponseHeaders(res.headers), durationMs) };
}
