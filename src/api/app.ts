/**
 * The REST API: one Hono app shared by the Node runtime (served on a port) and the Workers runtime
 * (`fetch`). It sees the database only through the Db port; runtimes pass their deps in.
 * (Skeleton: the API work fills in the routes.)
 */
import { Hono } from 'hono';
import type { Db } from '../engine/db.ts';
import type { Logger } from '../log.ts';

export interface AppDeps {
  db: Db;
  log?: Logger;
  /** Tokens configured as secrets/env (PGFLARE_API_TOKENS), in addition to tokens stored in Postgres. */
  staticTokens?: { token: string; role: string }[];
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/healthz', async (c) => {
    await deps.db.withClient((client) => client.query('SELECT 1'));
    return c.json({ ok: true });
  });
  return app;
}
