import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome } from '../helpers/engine.ts';
import { createHttpRunner } from '../../src/engine/executors/http-runner.ts';
import type { CrashPoint } from '../../src/engine/points.ts';
import { createEngine } from '../../src/engine/engine.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';

const t = useTestDb();
let server: Server;
let base = '';
const seen: { method: string; url: string; key: string | undefined; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, key: req.headers['idempotency-key'] as string | undefined, body });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, got: body ? JSON.parse(body) : null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The DSL checks the policy when the graph is built; the worker's check happens per request.
  await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.http_policy = 'all'`);
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const http = createHttpRunner();

describe('HTTP steps through the engine', () => {
  it('posts a substituted body and stores the response envelope under its name', async () => {
    seen.length = 0;
    const [r] = await t.query(
      `SELECT df.start('SELECT 41 AS n' |=> 'n' ~> df.http('${base}/hook', 'POST', '{"n": $n}') |=> 'resp' ~> 'SELECT ($resp::jsonb ->> ''status'')::int AS status, ($resp::jsonb ->> ''body'')::jsonb -> ''got'' ->> ''n'' AS n') AS id`,
    );
    await engineFor(t, { http }).drain();
    expect(await outcome(t, r.id)).toMatchObject({ status: 'completed', result: { rows: [{ status: 200, n: '41' }] } });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/hook', body: '{"n": 41}' });
  });

  it('a crash after the request re-sends it after the lease expires, with the same Idempotency-Key', async () => {
    seen.length = 0;
    const [r] = await t.query(`SELECT df.start(df.http('${base}/pay', 'POST', '{}', NULL, 5) ~> 'SELECT 1 AS done') AS id`);
    const e = engineFor(t, { http });
    await e.runOnce(); // start
    let crashed = false;
    const points = (p: CrashPoint) => {
      if (p === 'after-effect' && !crashed) {
        crashed = true;
        throw new Error('worker died after the request');
      }
    };
    await expect(engineFor(t, { http, points }).runOnce()).rejects.toThrow('worker died');
    expect(seen).toHaveLength(1);
    expect(await e.drain()).toBe(0); // the lease still holds the step
    await e.drain({ now: later(36) }); // timeout 5 s + 30 s grace: the lease has expired
    expect(seen).toHaveLength(2);
    expect(seen[0].key).toMatch(new RegExp(`^${r.id}:[0-9a-f]{8}:${r.id}::1$`));
    expect(seen[1].key).toBe(seen[0].key);
    expect((await outcome(t, r.id)).status).toBe('completed');
  });

  it('the worker re-checks the egress policy per request', async () => {
    const [r] = await t.query(`SELECT df.start(df.http('${base}/x', 'GET')) AS id`);
    await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.http_policy = 'disabled'`);
    try {
      // Database settings apply to new sessions: a fresh pool sees 'disabled'.
      const db = createPgDb({ connectionString: t.url(), max: 2 });
      try {
        await createEngine({ db, http: createHttpRunner() }).drain();
      } finally {
        await db.end();
      }
    } finally {
      await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.http_policy = 'all'`);
    }
    const o = await outcome(t, r.id);
    expect(o.status).toBe('failed');
    expect(o.output).toContain('outbound HTTP requests are disabled');
  });
});
