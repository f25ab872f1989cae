/**
 * Leaf steps of the builder: break, sleep, wait for a schedule or a signal, HTTP. Each writes its
 * `query` text exactly as the DSL function of the same meaning does (migrations: df.break, df.sleep,
 * df.wait_for_schedule, df.wait_for_signal, df.http, df.http_multipart) and refuses what it refuses.
 */
import { CronError, parseCron } from '../graph/cron.ts';
import { envelope, Step } from './builder.ts';
import { toWholeSeconds, type Duration } from './duration.ts';
import { jsonbText, type JsonValue } from './jsonb.ts';
import type { RefsIn } from './names.ts';

const INT4_MAX = 2_147_483_647;

/** df.break(value): leaves the innermost loop; the loop's result is `value` (text; other JSON is stringified). */
export function breakLoop(value?: string | JsonValue): Step {
  const text = value === undefined || value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
  return new Step(envelope('BREAK', { query: `{"break_value":${JSON.stringify(text)}}` }));
}

/** df.sleep(seconds): a durable timer. Whole seconds: 300, '5 minutes', '1h'. */
export function sleep(duration: Duration): Step {
  const seconds = toWholeSeconds(duration, 'sleep');
  if (seconds > Number.MAX_SAFE_INTEGER) throw new RangeError(`sleep: ${seconds} seconds is too long`);
  return new Step(envelope('SLEEP', { query: String(seconds) }));
}

/** df.wait_for_schedule(cron): waits for the next fire of pg_durable's cron (`min hour dom month dow [year]`, UTC). */
export function waitForSchedule(cron: string): Step {
  try {
    parseCron(cron);
  } catch (err) {
    if (err instanceof CronError) throw new RangeError(`Invalid cron expression '${cron}': ${err.message}`);
    throw err;
  }
  return new Step(envelope('WAIT_SCHEDULE', { query: `{"cron_expr":${JSON.stringify(cron)}}` }));
}

/**
 * df.wait_for_signal(name, timeout): waits for df.signal / POST …/signals/:name; its result is the
 * signal's data, or `{"timed_out": true}` after `timeout`.
 */
export function waitForSignal(name: string, opts: { timeout?: Duration } = {}): Step {
  if (name === '') throw new TypeError('Signal name cannot be empty');
  const timeout = opts.timeout === undefined ? null : positiveInt(opts.timeout, 'waitForSignal: timeout');
  return new Step(envelope('SIGNAL', { query: `{"signal_name":${JSON.stringify(name)},"timeout_seconds":${timeout ?? 'null'}}` }));
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
export type Headers = Record<string, JsonValue>;

export interface HttpOptions<U extends string = string, B extends string = string> {
  url: U;
  /** Default POST. */
  method?: HttpMethod | Lowercase<HttpMethod>;
  /** Text as is; other JSON is sent as its compact JSON text. `$name` and `{var}` are substituted. */
  body?: B | Exclude<JsonValue, string>;
  headers?: Headers;
  /** Whole seconds, default 30. */
  timeout?: Duration;
}

/** df.http(url, method, body, headers, timeout_seconds): one HTTP request; its result is the response. */
export function http<U extends string, B extends string = never>(opts: HttpOptions<U, B>): Step<never, RefsIn<U> | RefsIn<B>> {
  const method = checkMethod(opts.method ?? 'POST', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'], 'Invalid HTTP method: %s. Must be GET, POST, PUT, DELETE, or PATCH');
  const body = opts.body === undefined || opts.body === null ? null : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const query =
    `{"url":${JSON.stringify(opts.url)},"method":${JSON.stringify(method)},"body":${JSON.stringify(body)}` +
    `,"headers":${headersText(opts.headers)},"timeout_seconds":${positiveInt(opts.timeout ?? 30, 'Timeout')}}`;
  return new Step(envelope('HTTP', { query }));
}

export interface MultipartPart {
  name: string;
  /** The part's bytes as base64 (may hold `$name` / `{var}` placeholders), or give `data`. */
  data_b64?: string;
  /** The part's bytes: text (sent as UTF-8) or binary; encoded to `data_b64`. */
  data?: string | Uint8Array;
  filename?: string;
  content_type?: string;
}

export interface HttpMultipartOptions<U extends string = string> {
  url: U;
  /** Default POST. */
  method?: 'POST' | 'PUT' | 'PATCH' | 'post' | 'put' | 'patch';
  parts: MultipartPart[];
  headers?: Headers;
  timeout?: Duration;
}

/** df.http_multipart(url, method, parts, headers, timeout_seconds): a multipart/form-data request. */
export function httpMultipart<U extends string>(opts: HttpMultipartOptions<U>): Step<never, RefsIn<U>> {
  const method = checkMethod(opts.method ?? 'POST', ['POST', 'PUT', 'PATCH'], 'Invalid HTTP method for multipart: %s. Must be POST, PUT, or PATCH');
  if (!Array.isArray(opts.parts)) throw new TypeError('parts must be a JSON array of part objects');
  if (opts.parts.length === 0) throw new RangeError('parts must contain at least one part');
  const parts = opts.parts.map((p) => {
    if (p.data !== undefined && p.data_b64 !== undefined) throw new TypeError(`part '${p.name}': give data or data_b64, not both`);
    const data_b64 = p.data_b64 ?? (p.data === undefined ? undefined : base64(p.data));
    if (data_b64 === undefined) throw new TypeError(`part '${p.name}': data or data_b64 is required`);
    return { name: p.name, data_b64, filename: p.filename, content_type: p.content_type };
  });
  const query =
    `{"url":${JSON.stringify(opts.url)},"method":${JSON.stringify(method)},"parts":${jsonbText(parts)}` +
    `,"headers":${headersText(opts.headers)},"timeout_seconds":${positiveInt(opts.timeout ?? 30, 'Timeout')}}`;
  return new Step(envelope('HTTP_MULTIPART', { query }));
}

function checkMethod(method: string, allowed: string[], message: string): string {
  const m = method.toUpperCase();
  if (!allowed.includes(m)) throw new TypeError(message.replace('%s', method));
  return m;
}

function headersText(headers: Headers | undefined): string {
  if (headers === undefined || headers === null) return 'null';
  if (typeof headers !== 'object' || Array.isArray(headers)) throw new TypeError('headers must be a JSON object');
  return jsonbText(headers);
}

function positiveInt(d: Duration, what: string): number {
  const s = toWholeSeconds(d, what);
  if (s <= 0) throw new RangeError(`${what} must be positive`);
  if (s > INT4_MAX) throw new RangeError(`${what}: ${s} seconds is too long`);
  return s;
}

function base64(data: string | Uint8Array): string {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
