/**
 * A small structured logger: one line per event, level from PGFLARE_LOG_LEVEL, format from
 * PGFLARE_LOG_FORMAT. `text` (a terminal's default): `time level msg key=value ...`. `json` (the Workers
 * default, so Workers Logs indexes the fields): one JSON object per line, `{"time","level","msg",...fields}`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const RESERVED = new Set(['time', 'level', 'msg']);

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function formatText(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const s = v instanceof Error ? v.message : typeof v === 'string' ? v : safeJson(v);
      return ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    })
    .join('');
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

/** One JSON object: time, level and msg first; a field named like one of them gets a `field_` prefix. */
export function jsonLine(time: string, level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  const o: Record<string, unknown> = { time, level, msg };
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v === undefined) continue;
    const key = RESERVED.has(k) ? `field_${k}` : k;
    if (v instanceof Error) {
      o[key] = v.message;
      const code = (v as { code?: unknown }).code;
      if (typeof code === 'string') o[`${key}_code`] = code;
    } else o[key] = v;
  }
  return safeJson(o);
}

/** PGFLARE_LOG_FORMAT from the process environment (Node); undefined where there is none. */
function envFormat(): LogFormat | undefined {
  const v = typeof process !== 'undefined' ? process.env?.PGFLARE_LOG_FORMAT : undefined;
  return parseLogFormat(v);
}

/** `json` or `text` (any case); undefined for unset; throws on anything else. */
export function parseLogFormat(v: string | undefined): LogFormat | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const f = v.trim().toLowerCase();
  if (f === 'json' || f === 'text') return f;
  throw new Error(`PGFLARE_LOG_FORMAT="${v}": expected json or text`);
}

export function createLogger(
  level: LogLevel = (process.env.PGFLARE_LOG_LEVEL as LogLevel) || 'info',
  write = (line: string) => console.error(line),
  format: LogFormat = envFormat() ?? 'text',
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const at = (l: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[l] < min) return;
    const time = new Date().toISOString();
    write(format === 'json' ? jsonLine(time, l, msg, fields) : `${time} ${l.padEnd(5)} ${msg}${formatText(fields)}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
