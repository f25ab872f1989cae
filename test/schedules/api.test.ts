/**
 * /v1/schedules over the real test database: CRUD, pause/resume, validation errors as 4xx JSON, and
 * another role's schedule being a 404.
 */
import { beforeAll, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { fireDueSchedules } from '../../src/engine/schedules.ts';
import { useTestDb, grantedRole } from '../helpers/db.ts';
import { client } from '../api/helpers.ts';

const t = useTestDb();
let call: ReturnType<typeof client>;
let alice: string;
let ownerToken: string, aliceToken: string;

beforeAll(async () => {
  alice = await grantedRole(t, 'alice');
  [{ t: ownerToken }] = await t.query('SELECT df.create_api_token($1) AS t', ['owner']);
  [{ t: aliceToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', alice]);
  await t.query(`SELECT df.define_workflow('tick', 'SELECT 1')`);
  call = client(createApp({ db: t.db }));
});

it('create, read, list, change, pause, resume and drop a schedule', async () => {
  const created = await call('POST', '/v1/schedules', {
    token: ownerToken,
    body: { name: 'nightly', workflow: 'tick', cron: '0 3 * * *', timezone: 'Europe/Berlin', input: { full: true }, overlap: 'allow' },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.headers.get('location')).toBe('/v1/schedules/nightly');
  expect(created.body).toMatchObject({
    name: 'nightly', workflow: 'tick', cron: '0 3 * * *', timezone: 'Europe/Berlin', input: { full: true },
    missed: 'skip', overlap: 'allow', paused: false, last_fire_at: null, last_error: null,
  });
  const [expected] = await t.query(`SELECT df.cron_next_fire('0 3 * * *', 'Europe/Berlin') AS at`);
  expect(new Date(created.body.next_fire_at)).toEqual(expected.at);

  const list = await call('GET', '/v1/schedules', { token: ownerToken });
  expect(list.body.schedules.map((s: { name: string }) => s.name)).toEqual(['nightly']);

  const changed = await call('PATCH', '/v1/schedules/nightly', { token: ownerToken, body: { cron: '*/10 * * * *', input: null } });
  expect(changed.status).toBe(200);
  expect(changed.body).toMatchObject({ cron: '*/10 * * * *', input: null, timezone: 'Europe/Berlin' });

  expect((await call('POST', '/v1/schedules/nightly/pause', { token: ownerToken })).body.paused).toBe(true);
  expect((await call('POST', '/v1/schedules/nightly/resume', { token: ownerToken })).body.paused).toBe(false);

  // A fire shows up in the schedule's history.
  await t.query(`UPDATE df.schedules SET next_fire_at = '2030-01-01T12:00:00Z'`);
  await t.db.withClient((c) => fireDueSchedules(c, { now: new Date('2030-01-01T12:00:05Z') }));
  const one = await call('GET', '/v1/schedules/nightly', { token: ownerToken });
  expect(one.body.fires).toEqual([
    expect.objectContaining({ fire_at: '2030-01-01T12:00:00+00:00', outcome: 'started', instance_status: 'pending', error: null }),
  ]);
  expect(one.body.last_instance_id).toBe(one.body.fires[0].instance_id);

  expect(await call('DELETE', '/v1/schedules/nightly', { token: ownerToken })).toMatchObject({ status: 200, body: { ok: true } });
  expect((await call('GET', '/v1/schedules/nightly', { token: ownerToken })).status).toBe(404);
});

it('bad input is a 400 or 422 with a stable code; nothing is written', async () => {
  const post = (body: unknown) => call('POST', '/v1/schedules', { token: ownerToken, body });
  const cases: [unknown, number, string][] = [
    [{ name: 'x', workflow: 'tick', cron: '61 * * * *' }, 422, 'invalid_schedule'],
    [{ name: 'x', workflow: 'tick', cron: '* * * * *', timezone: 'Mars/Olympus' }, 422, 'invalid_schedule'],
    [{ name: 'x', workflow: 'nope', cron: '* * * * *' }, 422, 'unknown_workflow'],
    [{ name: 'x', workflow: 'tick', cron: '* * * * *', missed: 'always' }, 400, 'invalid_body'],
    [{ name: 'has space', workflow: 'tick', cron: '* * * * *' }, 400, 'invalid_body'],
    [{ name: 'x', workflow: 'tick', cron: '* * * * *', extra: 1 }, 400, 'invalid_body'],
  ];
  for (const [body, status, code] of cases) {
    const r = await post(body);
    expect([r.status, r.body.error?.code], JSON.stringify(body)).toEqual([status, code]);
  }
  expect(await post({ name: 'dup', workflow: 'tick', cron: '* * * * *' })).toMatchObject({ status: 201 });
  expect(await post({ name: 'dup', workflow: 'tick', cron: '* * * * *' })).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });
  expect(await call('PATCH', '/v1/schedules/dup', { token: ownerToken, body: {} })).toMatchObject({ status: 400 });
  expect(await call('PATCH', '/v1/schedules/dup', { token: ownerToken, body: { cron: '* *' } })).toMatchObject({
    status: 422,
    body: { error: { code: 'invalid_schedule' } },
  });
  expect(await t.query(`SELECT name, cron FROM df.schedules`)).toEqual([{ name: 'dup', cron: '* * * * *' }]);
  await t.query(`DELETE FROM df.schedules`);
});

it("another role's schedule is a 404 on every route", async () => {
  await t.query(`SELECT df.create_schedule('owners', 'tick', '* * * * *')`);
  for (const [method, path, body] of [
    ['GET', '/v1/schedules/owners'],
    ['PATCH', '/v1/schedules/owners', { cron: '0 0 * * *' }],
    ['POST', '/v1/schedules/owners/pause'],
    ['POST', '/v1/schedules/owners/resume'],
    ['DELETE', '/v1/schedules/owners'],
  ] as [string, string, unknown?][]) {
    const r = await call(method, path, { token: aliceToken, body });
    expect([r.status, r.body.error?.code], `${method} ${path}`).toEqual([404, 'not_found']);
  }
  expect((await call('GET', '/v1/schedules', { token: aliceToken })).body).toEqual({ schedules: [], next_cursor: null });
  const [s] = await t.query(`SELECT cron, paused FROM df.schedules WHERE name = 'owners'`);
  expect(s).toEqual({ cron: '* * * * *', paused: false });
});
