/**
 * createPgflare (pgflare/node): the worker and the REST API inside the caller's own Node process, on an
 * empty database it migrates itself, with the caller's logger; stop() ends the worker.
 */
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { useEmptyDatabases } from '../helpers/db.ts';
import { createPgflare, type Pgflare } from '../../src/runtime/node/embed.ts';
import type { Logger } from '../../src/log.ts';

const empty = useEmptyDatabases();
const lines: string[] = [];
const logger: Logger = { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
let app: Pgflare | undefined;
let client: pg.Client | undefined;

afterAll(async () => {
  await app?.stop();
  await client?.end();
});

it('migrates, runs workflows started through its API port and its fetch handler, and stop() ends the worker', async () => {
  const url = await empty.create();
  app = createPgflare({ databaseUrl: url, migrate: true, concurrency: 2, logger, api: { port: 0 }, env: {} });
  await app.start();
  expect(app.migrated!.applied.length).toBeGreaterThan(20);
  expect(lines).toContain('applied 0001_tables');
  expect(app.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

  client = new pg.Client({ connectionString: url });
  await client.connect();
  const { token } = (await client.query(`SELECT df.create_api_token('embedded') AS token`)).rows[0];
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ workflow: `'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'` });

  // Through the port, then through the fetch handler (as if mounted in the caller's own server).
  const viaPort = (await (await fetch(`${app.apiUrl}/v1/instances`, { method: 'POST', headers, body })).json()) as { instance_id: string };
  const viaFetch = await app.fetch(new Request('http://mine/v1/instances', { method: 'POST', headers, body }));
  expect(viaFetch.status).toBe(201);
  const { instance_id: id } = (await viaFetch.json()) as { instance_id: string };
  for (const i of [viaPort.instance_id, id]) {
    // The worker in this process runs them; df.await_instance waits on the server.
    expect((await client.query('SELECT df.await_instance($1, 30) AS s', [i])).rows[0].s).toBe('completed');
  }
  const got = (await (await app.fetch(new Request(`http://mine/v1/instances/${id}`, { headers }))).json()) as Record<string, unknown>;
  expect(JSON.stringify(got)).toContain('"answer":42');

  await app.stop();
  const after = (await client.query(`SELECT df.start('SELECT 1') AS id`)).rows[0].id;
  await expect(client.query('SELECT df.await_instance($1, 1)', [after])).rejects.toThrow(/Timeout after 1s/);
  await expect(app.start()).rejects.toThrow('start() after stop()');
  await expect(app.fetch(new Request('http://mine/v1/instances'))).rejects.toThrow('fetch() after stop()');
});
