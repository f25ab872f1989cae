/**
 * started_at and finished_at are recorded when they happen (migrations/0033_instance_times.sql), not
 * derived from the nodes: started_at is the first claim of one of the instance's steps, finished_at
 * each time it becomes completed, failed or cancelled (cleared by a resume, which keeps started_at).
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const TOKEN = 'static-token-for-instance-times-0123';
let call: ReturnType<typeof client>;

const start = async (workflow: string) => {
  const r = await call('POST', '/v1/instances', { token: TOKEN, body: { workflow } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.instance_id as string;
};
const get = async (id: string) => (await call('GET', `/v1/instances/${id}`, { token: TOKEN })).body;
const clock = async () => Date.parse((await t.query(`SELECT clock_timestamp()::text AS c`))[0].c);
const drain = () => engineFor(t).drain();

beforeAll(async () => {
  call = client(createApp({ db: t.db, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] }));
});

describe('started_at', () => {
  it('is null until a worker claims a step, then the time of that claim', async () => {
    const id = await start(`'SELECT 1' ~> df.wait_for_signal('go') ~> 'SELECT 2'`);
    // Created long ago and still pending: not started.
    await t.query(`UPDATE df.instances SET created_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    expect(await get(id)).toMatchObject({ status: 'pending', started_at: null, finished_at: null });
    const before = await clock();
    await drain();
    const after = await clock();
    const running = await get(id);
    expect(running).toMatchObject({ status: 'running', finished_at: null });
    expect(Date.parse(running.started_at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(running.started_at)).toBeLessThanOrEqual(after);
    // Recorded, not derived from the nodes: moving every node's updated_at changes nothing.
    await t.query(`UPDATE df.nodes SET updated_at = '2001-01-01' WHERE instance_id = $1`, [id]);
    expect((await get(id)).started_at).toBe(running.started_at);
    // Later steps do not move it.
    await call('POST', `/v1/instances/${id}/signals/go`, { token: TOKEN, body: {} });
    await drain();
    const done = await get(id);
    expect(done).toMatchObject({ status: 'completed', started_at: running.started_at });
    expect(done.finished_at).toBe(done.completed_at);
    expect(Date.parse(done.finished_at)).toBeGreaterThan(Date.parse(done.started_at));
  });

  it('a one-step instance that completes in its first claim has both, started_at <= finished_at', async () => {
    const id = await start(`'SELECT 7'`);
    await drain();
    const i = await get(id);
    expect(i).toMatchObject({ status: 'completed', started_at: expect.any(String), finished_at: expect.any(String) });
    expect(Date.parse(i.started_at)).toBeLessThanOrEqual(Date.parse(i.finished_at));
  });
});

describe('finished_at', () => {
  it('is set by a cancel of a pending instance, which never started', async () => {
    const id = await start(`'SELECT 1'`);
    expect((await call('POST', `/v1/instances/${id}/cancel`, { token: TOKEN })).status).toBe(200);
    expect(await get(id)).toMatchObject({ status: 'cancelled', started_at: null, finished_at: expect.any(String) });
  });

  it('is set when it fails, cleared by a resume (started_at kept), and set again when it completes', async () => {
    const id = await start(`'SELECT 1' ~> 'SELECT * FROM public.fix_times'`);
    await drain();
    const failed = await get(id);
    expect(failed).toMatchObject({ status: 'failed', started_at: expect.any(String), finished_at: expect.any(String) });
    await t.query('CREATE TABLE public.fix_times (x int)');
    expect((await call('POST', `/v1/instances/${id}/resume`, { token: TOKEN })).status).toBe(200);
    expect(await get(id)).toMatchObject({ status: 'running', started_at: failed.started_at, finished_at: null });
    await drain();
    const done = await get(id);
    expect(done).toMatchObject({ status: 'completed', started_at: failed.started_at });
    expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(Date.parse(failed.finished_at));
  });
});
