/** Substitution into an HTTP / HTTP_MULTIPART step's config (raw mode), pg_durable's first run-time step. */
import { compareUtf8, substitute, isWholeValueReference, type SubstitutionContext } from '../../../graph/substitute.ts';
import type { HttpConfig, HttpMultipartConfig } from '../../../graph/schema.ts';
import { StepFailure, type HttpStepInput, type PreparedPart, type PreparedRequest } from './types.ts';

/**
 * In pg_durable's order. HTTP: body, url, then each string-valued header in sorted key order.
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
