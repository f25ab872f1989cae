/**
 * POST /v1/instances/{instance_id}/resume and /restart against the real test database: a failed instance
 * resumed over HTTP completes with its first step's effect counted once; the refusals are JSON errors
 * (409 not failed, 404 unknown or another role's); a restart is a new instance.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const OWNER = inject('pg').owner;
const TOKEN = 'static-token-for-the-owner-0123456789';
const BOB_TOKEN = 'static-token-for-bob-0123456789abcdef';
let call: ReturnType<typeof client>;
const ready: string[] = [];

const drain = () => engineFor(t).drain();
const count = async () => (await t.query(`SELECT count(*)::int AS n FROM effects`))[0].n as number;

async function failedInstance(token = TOKEN): Promise<string> {
  const r = await call('POST', '/v1/instances', {
    token,
    body: { workflow: `'INSERT INTO public.effects VALUES (1)' ~> 'SELECT * FROM public.fix'` },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await drain();
  expect((await call('GET', `/v1/instances/${r.body.instance_id}`, { token })).body.status).toBe('failed');
  return r.body.instance_id;
}

beforeAll(async () => {
  const bob = t.role('bob');
  await t.superuser.query(`CREATE ROLE ${bob} LOGIN PASSWORD 'pw'`);
  await t.query('SELECT df.grant_usage($1)', [bob]);
  await t.superuser.query(`GRANT ${bob} TO ${OWNER}`);
  await t.query('CREATE TABLE public.effects (n int)');
  await t.query(`GRANT SELECT, INSERT ON public.effects TO ${bob}`);
  const app = createApp({
    db: t.db,
    staticTokens: [
      { token: TOKEN, role: OWNER },
      { token: BOB_TOKEN, role: bob },
    ],
    onReady: (id) => {
      ready.push(id);
    },
  });
  call = client(app);
});

describe('POST /v1/instances/{instance_id}/resume', () => {
  it('runs a failed instance again from the failed step; the first step ran once', async () => {
    const id = await failedInstance();
    expect(await count()).toBe(1);
    await t.query('CREATE TABLE public.fix AS SELECT 3 AS x');
    const r = await call('POST', `/v1/instances/${id}/resume`, { token: TOKEN });
    expect(r).toMatchObject({ status: 200, body: { instance_id: id, status: 'running' } });
    expect(ready.at(-1)).toBe(id);
    await drain();
    expect((await call('GET', `/v1/instances/${id}`, { token: TOKEN })).body).toMatchObject({ status: 'completed', result: { rows: [{ x: 3 }] } });
    expect(await count()).toBe(1);
    const events = (await call('GET', `/v1/instances/${id}/events`, { token: TOKEN })).body.events;
    expect(events.filter((e: { kind: string }) => e.kind === 'resumed')).toHaveLength(1);
    await t.query('DROP TABLE public.fix');
  });

  it('a completed, running or cancelled instance is a 409 not_failed', async () => {
    const done = await call('POST', '/v1/instances', { token: TOKEN, body: { workflow: `'SELECT 1'` } });
    await drain();
    const waiting = await call('POST', '/v1/instances', { token: TOKEN, body: { workflow: `df.wait_for_signal('go')` } });
    for (const id of [done.body.instance_id, waiting.body.instance_id]) {
      const r = await call('POST', `/v1/instances/${id}/resume`, { token: TOKEN });
      expect(r).toMatchObject({ status: 409, body: { error: { code: 'not_failed', message: expect.stringContaining('only a failed instance can be resumed') } } });
    }
    await call('POST', `/v1/instances/${waiting.body.instance_id}/cancel`, { token: TOKEN });
    expect((await call('POST', `/v1/instances/${waiting.body.instance_id}/resume`, { token: TOKEN })).status).toBe(409);
  });

  it("an unknown, malformed or another role's instance is a 404", async () => {
    const bobs = await failedInstance(BOB_TOKEN);
    for (const id of ['0000beef', 'nothex!!', bobs]) {
      for (const action of ['resume', 'restart']) {
        const r = await call('POST', `/v1/instances/${id}/${action}`, { token: TOKEN });
        expect(r, `${action} ${id}`).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      }
    }
    expect((await call('GET', `/v1/instances/${bobs}`, { token: BOB_TOKEN })).body.status).toBe('failed');
    expect((await call('POST', `/v1/instances/${bobs}/resume`, { token: BOB_TOKEN })).status).toBe(200);
  });

  it('needs a token', async () => {
    expect((await call('POST', '/v1/instances/0000beef/resume', {})).status).toBe(401);
  });
});

describe('POST /v1/instances/{instance_id}/restart', () => {
  it('starts a new instance of the same workflow and answers 201 with its id', async () => {
    const id = await failedInstance();
    const before = await count();
    await t.query('CREATE TABLE public.fix AS SELECT 4 AS x');
    const r = await call('POST', `/v1/instances/${id}/restart`, { token: TOKEN });
    expect(r).toMatchObject({ status: 201, body: { instance_id: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'pending' } });
    const again = r.body.instance_id;
    expect(again).not.toBe(id);
    expect(r.headers.get('Location')).toBe(`/v1/instances/${again}`);
    expect(ready.at(-1)).toBe(again);
    await drain();
    expect((await call('GET', `/v1/instances/${again}`, { token: TOKEN })).body).toMatchObject({ status: 'completed', result: { rows: [{ x: 4 }] } });
    expect((await call('GET', `/v1/instances/${id}`, { token: TOKEN })).body.status).toBe('failed');
    expect(await count()).toBe(before + 1);
  });
});

describe('the OpenAPI document', () => {
  it('lists both routes', async () => {
    const doc = (await call('GET', '/v1/openapi.json')).body;
    expect(doc.paths['/v1/instances/{instance_id}/resume'].post.responses).toHaveProperty('409');
    expect(doc.paths['/v1/instances/{instance_id}/restart'].post.responses).toHaveProperty('201');
  });
});
