/**
 * HTTP / HTTP_MULTIPART step executor, with pg_durable's request, response and egress rules (docs/http-steps.md,
 * docs/SECURITY.md section 5).
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
import { BodyTooLarge, declaredLength, readCappedBody } from '../../../util/capped-body.ts';
import { checkEgress, checkResolvedAddresses } from './egress.ts';
import { buildMultipartBody, randomBoundary } from './multipart.ts';
import { buildEnvelope, collectResponseHeaders, decodeResponseBody, errorPreview } from './response.ts';
import { substituteRequest } from './substitute.ts';
import { blockedByGuard, describeError, toByteString, transportError } from './transport.ts';
import { StepFailure, type HttpStepInput, type StepOutcome } from './types.ts';

export type { HttpStepInput, NamedResults, PreparedPart, PreparedRequest, StepOutcome, Vars } from './types.ts';
export { substituteRequest } from './substitute.ts';
export { Base64Error, decodeBase64Strict, encodeBase64 } from './base64.ts';
export { buildMultipartBody, mimeTypeProblem, randomBoundary } from './multipart.ts';
export { buildEnvelope, collectResponseHeaders, decodeResponseBody, errorPreview, isDeclaredTextual, ERROR_PREVIEW_BYTES, type DecodedBody } from './response.ts';

export const DEFAULT_USER_AGENT = 'pg_durable/0.2.6';
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
const MULTIPART_METHODS = ['POST', 'PUT', 'PATCH'];
// setTimeout's ceiling (~24.8 days); larger delays would overflow to ~immediately.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export function privilegeError(role: string, multipart: boolean): string {
  return multipart
    ? `Blocked: role '${role}' does not have EXECUTE privilege on df.http_multipart(). Grant EXECUTE ON FUNCTION df.http_multipart(text,text,jsonb,jsonb,integer) TO ${role} to allow multipart HTTP requests.`
    : `Blocked: role '${role}' does not have EXECUTE privilege on df.http(). Grant EXECUTE ON FUNCTION df.http(text,text,text,jsonb,integer) TO ${role} to allow HTTP requests.`;
}

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
  let bytes: Uint8Array;
  try {
    // The cap applies to the decoded body, so an encoded response's Content-Length says nothing about it.
    const encoded = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase() !== 'identity';
    bytes = await readCappedBody(res.body, cap, encoded ? null : declaredLength(res.headers));
  } catch (e) {
    if (e instanceof BodyTooLarge) {
      const tooLarge = `response body exceeds the limit of ${cap} bytes`;
      // A 5xx still reports its status (the preview is replaced by the reason there is none).
      if (res.status >= 500) return { ok: false, error: `${kind} ${method} ${url} returned ${res.status}: [${tooLarge}]` };
      return { ok: false, error: `HTTP request failed: ${url} - ${tooLarge}` };
    }
    if (signal.aborted) return { ok: false, error: `HTTP timeout after ${req.timeoutSeconds}s: ${url}` };
    return { ok: false, error: `Failed to read response body: ${describeError(e).message}` };
  }
  const decoded = decodeResponseBody(bytes, res.headers.get('content-type'));
  const durationMs = performance.now() - started;

  // 6. 5xx fails the node; everything else (1xx–4xx, including 3xx) is a result.
  if (res.status >= 500) {
    return { ok: false, error: `${kind} ${method} ${url} returned ${res.status}: ${errorPreview(decoded)}` };
  }
  return { ok: true, resultText: buildEnvelope(res.status, decoded, collectResponseHeaders(res.headers), durationMs) };
}
