/**
 * multipart/form-data bodies for HTTP_MULTIPART steps, encoded by hand (exact bytes; WHATWG-style
 * escaping of `"`, CR, LF in names and filenames) rather than by reqwest's form builder.
 */
import { Base64Error, decodeBase64Strict } from './base64.ts';
import { StepFailure, type PreparedPart } from './types.ts';

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
