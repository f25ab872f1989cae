/**
 * The API's ready port (createApp's onReady): called with the instance id once the request's transaction
 * has committed work that is ready to run (a start, a start by name, a signal, a new webhook delivery),
 * never for a request that failed or a redelivery, and a port that throws does not change the answer.
 */
import { createHmac } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import type { Logger } from '../../src/log.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const SECRET = 'ready-port-secret-0123456789';
let token: string;
let call: ReturnType<typeof client>;
let app: ReturnType<typeof createApp>;
/** What the port saw: the id, and the instance's status as another session sees it at that moment. */
let seen: Promise<{ id: string; committed: string | null }>[] = [];
let fail = false;
const warnings: string[] = [];
const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: () => undefined };

const calls = () => Promise.all(seen);

beforeAll(async () => {
  [{ t: token }] = await t.query('SELECT df.create_api_token($1) AS t', ['ready']);
  await t.query(`SELECT df.define_workflow('one', 'SELECT 1 AS one')`);
  await t.query(`SELECT df.create_hook('gh', 'one', 'github', $1)`, [SECRET]);
  app = createApp({
    db: t.db,
    log,
    onReady: (id) => {
      if (fail) throw new Error('port down');
      // Asked on another session: the row is there only if the request's transaction has committed.
      const p = t.query<{ status: string }>('SELECT status FROM df.instances WHERE id = $1', [id]).then((r) => ({ id, committed: r[0]?.status ?? null }));
      seen.push(p);
      return p.then(() => undefined);
    },
  });
  call = client(app);
});

beforeEach(() => {
  seen = [];
  fail = false;
  warnings.length = 0;
});

const hook = (body: string, delivery: string) =>
  app.request('/hooks/gh', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, 'X-GitHub-Delivery': delivery },
    body,
  });

describe('onReady', () => {
  it('a start calls it once with the committed instance', async () => {
    const r = await call('POST', '/v1/instances', { token, body: { workflow: `'SELECT 1'` } });
    expect(r.status).toBe(201);
    expect(await calls()).toEqual([{ id: r.body.instance_id, committed: 'pending' }]);
  });

  it('a start by name calls it', async () => {
    const r = await call('POST', '/v1/workflows/one/instances', { token });
    expect(r.status).toBe(201);
    expect(await calls()).toEqual([{ id: r.body.instance_id, committed: 'pending' }]);
  });

  it('a signal calls it; a refused signal does not', async () => {
    const r = await call('POST', '/v1/instances', { token, body: { workflow: `df.wait_for_signal('go')` } });
    await engineFor(t).drain();
    seen = [];
    expect((await call('POST', `/v1/instances/${r.body.instance_id}/signals/go`, { token, body: {} })).status).toBe(200);
    expect(await calls()).toEqual([{ id: r.body.instance_id, committed: 'running' }]);
    await engineFor(t).drain();
    seen = [];
    expect((await call('POST', `/v1/instances/${r.body.instance_id}/signals/go`, { token, body: {} })).status).toBe(409);
    expect(await calls()).toEqual([]);
  });

  it('a webhook delivery calls it; its redelivery does not', async () => {
    const first = await hook('{"n":1}', 'd-1');
    expect(first.status).toBe(202);
    const { instance_id } = (await first.json()) as { instance_id: string };
    expect(await calls()).toEqual([{ id: instance_id, committed: 'pending' }]);
    seen = [];
    expect((await hook('{"n":1}', 'd-1')).status).toBe(200);
    expect(await calls()).toEqual([]);
  });

  it('a failed start, a cancel and reads do not call it', async () => {
    expect((await call('POST', '/v1/instances', { token, body: { workflow: `'SELECT 1' ~>` } })).status).toBe(422);
    const r = await call('POST', '/v1/instances', { token, body: { workflow: `df.wait_for_signal('never')` } });
    seen = [];
    expect((await call('POST', `/v1/instances/${r.body.instance_id}/cancel`, { token })).status).toBe(200);
    expect((await call('GET', `/v1/instances/${r.body.instance_id}`, { token })).status).toBe(200);
    expect(await calls()).toEqual([]);
  });

  it('a port that throws is logged; the start still answers 201', async () => {
    fail = true;
    const r = await call('POST', '/v1/instances', { token, body: { workflow: `'SELECT 1'` } });
    expect(r.status).toBe(201);
    expect(warnings).toEqual(['api: onReady failed; the sweep will find the ready rows']);
  });
});
