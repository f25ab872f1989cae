/**
 * Instance answers: `result` is JSON (never JSON text), a failed instance has a structured `error` with
 * the failing step's SQLSTATE, detail, hint, node and attempt, and every terminal status has
 * started_at and finished_at. The instance's output text (pg_durable's df.status/df.result) is unchanged.
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const TOKEN = 'static-token-for-result-shapes-0123';
let call: ReturnType<typeof client>;

const start = async (workflow: string, label: string) => {
  const r = await call('POST', '/v1/instances', { token: TOKEN, body: { workflow, label } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.instance_id as string;
};
const get = async (id: string) => (await call('GET', `/v1/instances/${id}`, { token: TOKEN })).body;
const RAISE = `'DO $x$ BEGIN RAISE EXCEPTION ''boom'' USING ERRCODE = ''P0099'', DETAIL = ''the detail'', HINT = ''the hint''; END $x$'`;

let okId: string, divId: string, raiseId: string, cancelledId: string, waitingId: string;
beforeAll(async () => {
  call = client(createApp({ db: t.db, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] }));
  okId = await start(`'SELECT 42 AS answer, ''{"a":[1,2]}''::jsonb AS doc'`, 'ok');
  divId = await start(`'SELECT 1' ~> 'SELECT 1/0'`, 'div');
  raiseId = await start(RAISE, 'raise');
  waitingId = await start(`df.wait_for_signal('go')`, 'waiting');
  cancelledId = await start(`df.wait_for_signal('never')`, 'cancelled');
  await engineFor(t).drain();
  expect((await call('POST', `/v1/instances/${cancelledId}/cancel`, { token: TOKEN, body: {} })).status).toBe(200);
});

describe('result', () => {
  it('is the root result as JSON once completed, and error is null', async () => {
    const i = await get(okId);
    expect(i).toMatchObject({ status: 'completed', error: null, result: { rows: [{ answer: 42, doc: { a: [1, 2] } }] } });
    expect(typeof i.result).toBe('object');
  });

  it('is null while running, failed or cancelled', async () => {
    for (const id of [divId, waitingId, cancelledId]) expect((await get(id)).result).toBeNull();
  });
});

describe('error', () => {
  it("carries the failing step's SQLSTATE, its node and attempt; output stays pg_durable's text", async () => {
    const i = await get(divId);
    const [failing] = await t.query(`SELECT node_id FROM df.instance_nodes($1) WHERE node_type = 'SQL' AND query = 'SELECT 1/0'`, [divId]);
    expect(i.status).toBe('failed');
    expect(i.error).toEqual({
      code: '22012',
      message: 'SQL execution failed: error returned from database: division by zero',
      detail: null,
      hint: null,
      node_id: failing.node_id,
      attempt: 1,
    });
    const [{ status, output }] = await t.query('SELECT df.status($1) AS status, i.output FROM df.instances i WHERE i.id = $1', [divId]);
    expect(status).toBe('failed');
    expect(output).toBe(i.output);
    expect(output).toContain('division by zero');
    expect(output).not.toContain('22012');
  });

  it("carries PostgreSQL's DETAIL and HINT", async () => {
    expect((await get(raiseId)).error).toMatchObject({ code: 'P0099', message: expect.stringContaining('boom'), detail: 'the detail', hint: 'the hint', attempt: 1 });
  });

  it('is null unless the instance failed', async () => {
    for (const id of [okId, waitingId, cancelledId]) expect((await get(id)).error).toBeNull();
  });

  it('is in the list too', async () => {
    const r = await call('GET', '/v1/instances?status=failed', { token: TOKEN });
    const row = r.body.instances.find((x: any) => x.instance_id === raiseId);
    expect(row).toMatchObject({ result: null, error: { code: 'P0099', hint: 'the hint' } });
  });
});

describe('timestamps', () => {
  it('every terminal status has created_at <= started_at <= finished_at', async () => {
    for (const id of [okId, divId, raiseId]) {
      const i = await get(id);
      expect(i.started_at, id).toEqual(expect.any(String));
      expect(i.finished_at, id).toEqual(expect.any(String));
      expect(Date.parse(i.created_at)).toBeLessThanOrEqual(Date.parse(i.started_at));
      expect(Date.parse(i.started_at)).toBeLessThanOrEqual(Date.parse(i.finished_at));
    }
    const c = await get(cancelledId);
    expect(c.finished_at).toEqual(expect.any(String));
    expect((await get(okId)).completed_at).toBe((await get(okId)).finished_at);
  });

  it('finished_at is null while the instance runs', async () => {
    expect(await get(waitingId)).toMatchObject({ status: 'running', finished_at: null, completed_at: null });
  });
});
