/** The Node runtime's HTTP edge: the app served on a real port answers over the network. */
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { apiPortFromEnv, serveFetch, startApiServer, type ApiServer } from '../../src/runtime/node/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();
const servers: ApiServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('serveFetch', () => {
  it('answers /healthz on a real port', async () => {
    const server = await serveFetch(createApp({ db: t.db }).fetch, { port: 0 });
    servers.push(server);
    expect(server.port).toBeGreaterThan(0);
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, database: 'ok' });
  });
});

describe('startApiServer', () => {
  it('serves only when PGFLARE_API_PORT is set and there is no default port', async () => {
    expect(await startApiServer({ databaseUrl: t.url(), log: silentLogger, defaultHost: '127.0.0.1', env: {} })).toBeUndefined();
  });

  it('serves the API with PGFLARE_API_TOKENS and tokens stored in Postgres', async () => {
    const owner = inject('pg').owner;
    const server = (await startApiServer({
      databaseUrl: t.url(),
      log: silentLogger,
      defaultHost: '127.0.0.1',
      env: { PGFLARE_API_PORT: '0', PGFLARE_API_TOKENS: `from-the-environment-123=${owner}` },
    }))!;
    servers.push(server);
    const [{ tok }] = await t.query(`SELECT df.create_api_token('serve-test') AS tok`);
    for (const token of ['from-the-environment-123', tok]) {
      const res = await fetch(`${server.url}/v1/instances`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ workflow: `'SELECT 1'` }),
      });
      expect(res.status).toBe(201);
    }
    expect((await fetch(`${server.url}/v1/instances`)).status).toBe(401);
  });

  it('a busy default port only costs the API; a configured busy port is an error', async () => {
    const busy = await serveFetch(() => new Response('x'), { port: 0 });
    servers.push(busy);
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) };
    expect(await startApiServer({ databaseUrl: t.url(), log, defaultPort: busy.port, defaultHost: '127.0.0.1', env: {} })).toBeUndefined();
    expect(warnings[0]).toMatch(/continuing without the API/);
    await expect(startApiServer({ databaseUrl: t.url(), log, defaultHost: '127.0.0.1', env: { PGFLARE_API_PORT: String(busy.port) } })).rejects.toThrow(/could not serve the API/);
  });

  it('rejects a PGFLARE_API_PORT that is not a port', () => {
    expect(apiPortFromEnv('8787')).toBe(8787);
    expect(apiPortFromEnv(undefined)).toBeUndefined();
    expect(() => apiPortFromEnv('http')).toThrow(/not a TCP port/);
    expect(() => apiPortFromEnv('70000')).toThrow(/not a TCP port/);
  });
});
