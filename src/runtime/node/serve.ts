/**
 * The Node runtime's HTTP edge: serves the shared Hono app (src/api/app.ts) on a port with
 * @hono/node-server. `pgflare up` always serves it (PGFLARE_API_PORT, default 8787, on 127.0.0.1);
 * `pgflare worker` serves it only when PGFLARE_API_PORT is set (on 0.0.0.0). PGFLARE_API_HOST overrides
 * the address, PGFLARE_API_TOKENS adds static tokens ("token=role,token2=role2"). A port set in
 * PGFLARE_API_PORT that cannot be bound fails start-up; the default port being taken only logs a warning.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { apiConfig, createApp, parseCorsOrigins } from '../../api/app.ts';
import { loadConfig } from '../../config.ts';
import { parseStaticTokens } from '../../api/auth.ts';
import type { Logger } from '../../log.ts';
import { createPgDb } from './pg-db.ts';

export interface ApiServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves any fetch handler on hostname:port (port 0 picks a free port); resolves once listening. */
export function serveFetch(fetch: (req: Request) => Response | Promise<Response>, opts: { port: number; hostname?: string }): Promise<ApiServer> {
  const hostname = opts.hostname ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: opts.port, hostname }, (info: AddressInfo) => {
      server.off('error', reject);
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        port: info.port,
        url: `http://${host}:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
    server.once('error', reject);
  });
}

export function apiPortFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PGFLARE_API_PORT="${value}" is not a TCP port`);
  return port;
}

/**
 * The API on its own small pool. `defaultPort` undefined = serve only when PGFLARE_API_PORT is set
 * (returns undefined otherwise).
 */
export async function startApiServer(opts: {
  databaseUrl: string;
  log: Logger;
  defaultPort?: number;
  defaultHost: string;
  env?: Record<string, string | undefined>;
}): Promise<ApiServer | undefined> {
  const env = opts.env ?? process.env;
  const configured = apiPortFromEnv(env.PGFLARE_API_PORT);
  const port = configured ?? opts.defaultPort;
  if (port === undefined) return undefined;
  const staticTokens = parseStaticTokens(env.PGFLARE_API_TOKENS);
  const db = createPgDb({ connectionString: opts.databaseUrl, max: 4, applicationName: 'pgflare:api' });
  const app = createApp({ db, log: opts.log, staticTokens, corsOrigins: parseCorsOrigins(env.PGFLARE_CORS_ORIGINS), ...apiConfig(loadConfig(env)) });
  let server: ApiServer;
  try {
    server = await serveFetch(app.fetch, { port, hostname: env.PGFLARE_API_HOST || opts.defaultHost });
  } catch (err) {
    await db.end().catch(() => undefined);
    const message = `could not serve the API on port ${port} (set PGFLARE_API_PORT): ${(err as Error).message}`;
    // A port the user chose is a hard error; the default port being taken (a second `pgflare up`)
    // only costs this process its API.
    if (configured !== undefined) throw new Error(message);
    opts.log.warn(`${message}; continuing without the API`);
    return undefined;
  }
  opts.log.info('API listening', { url: server.url, static_tokens: staticTokens.length, hint: "SELECT df.create_api_token('name') makes a token" });
  return {
    ...server,
    close: async () => {
      await server.close();
      await db.end().catch(() => undefined);
    },
  };
}
