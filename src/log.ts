/** A small structured logger: one line per event, `key=value` fields, level from PGFLARE_LOG_LEVEL. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function format(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const s = v instanceof Error ? v.message : typeof v === 'string' ? v : JSON.stringify(v);
      return ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    })
    .join('');
}

export function createLogger(level: LogLevel = (process.env.PGFLARE_LOG_LEVEL as LogLevel) || 'info', write = (line: string) => console.error(line)): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const at = (l: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[l] >= min) write(`${new Date().toISOString()} ${l.padEnd(5)} ${msg}${format(fields)}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
