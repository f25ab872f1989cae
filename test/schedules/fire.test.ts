/**
 * Firing schedules (fireDueSchedules, src/engine/schedules.ts) with a pinned `now`: racing sweepers,
 * the double-fire guard, missed-fire and overlap policies, DST days, pause/resume, and a bad schedule
 * never stopping the sweep. Effects are counted in a user table after the engine drains.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { fireDueSchedules, type ScheduleFire } from '../../src/engine/schedules.ts';
import { useTestDb, asRole } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';

const t = useTestDb();
const OWNER = inject('pg').owner;

const at = (iso: string) => new Date(iso);
/** One sweep on its own pooled session, as a worker would run it. */
async function sweep(now: Date, opts: { graceMs?: number; limit?: number } = {}): Promise<ScheduleFire[]> {
  const c = await t.owner.connect();
  try {
    return await fireDueSchedules(c, { now, ...opts });
  } finally {
    c.release();
  }
}
const setNext = (name: string, iso: string) => t.query('UPDATE df.schedules SET next_fire_at = $2 WHERE name = $1', [name, iso]);
const instancesOf = async (name: string) =>
  (await t.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE label = $1`, [name]))[0].n;
const hits = async (name: string) => (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM hits WHERE label = $1', [name]))[0].n;
const history = async (name: string) =>
  (await t.query<{ fire_at: Date; outcome: string }>('SELECT fire_at, outcome FROM df.schedule_history($1) ORDER BY fire_at', [name])).map(
    (r) => `${r.fire_at.toISOString()} ${r.outcome}`,
  );
const create = (name: string, cron: string, more = '') =>
  t.query(`SELECT df.create_schedule(${sq(name)}, 'tick', ${sq(cron)}${more})`);
const sq = (s: string) => `'${s.replaceAll("'", "''")}'`;
const errorOf = async (sql: string) => {
  try {
    await t.query(sql);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  return { code: 'none', message: '' };
};

beforeAll(async () => {
  await t.query('CREATE TABLE hits (label text, n int)');
  await t.query(`SELECT df.define_workflow('tick', 'INSERT INTO hits VALUES (''{sys_label}'', $input.n::int)')`);
});

beforeEach(async () => {
  await t.query('DELETE FROM df.schedules');
});

describe('the SQL surface', () => {
  it('creates a schedule with its next fire time, and lists it', async () => {
    const [r] = await t.query(`SELECT df.create_schedule('nightly', 'tick', '0 3 * * *', 'europe/berlin', '{"n": 1}') AS next`);
    const [expected] = await t.query(`SELECT df.cron_next_fire('0 3 * * *', 'Europe/Berlin', now()) AS next`);
    expect(r.next).toEqual(expected.next);
    const [s] = await t.query('SELECT * FROM df.list_schedules()');
    expect(s).toMatchObject({
      name: 'nightly',
      workflow: 'tick',
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin', // canonical spelling
      input: { n: 1 },
      missed: 'skip',
      overlap: 'skip',
      paused: false,
      next_fire_at: r.next,
      last_fire_at: null,
      last_instance_id: null,
      last_error: null,
    });
  });

  it('refuses bad input with a stable SQLSTATE and writes nothing', async () => {
    await create('dup', '* * * * *');
    const cases: [string, string, RegExp][] = [
      [`SELECT df.create_schedule('x', 'tick', '61 * * * *')`, '22023', /minute field '61': 61 is above the maximum 59/],
      [`SELECT df.create_schedule('x', 'tick', '* * * * *', 'Mars/Olympus')`, '22023', /unknown time zone 'Mars\/Olympus'/],
      [`SELECT df.create_schedule('x', 'tick', '* * * * *', missed => 'always')`, '22023', /missed must be 'skip' or 'catch_up_once'/],
      [`SELECT df.create_schedule('x', 'tick', '* * * * *', overlap => 'queue')`, '22023', /overlap must be 'skip' or 'allow'/],
      [`SELECT df.create_schedule('x', 'nope', '* * * * *')`, 'P0002', /workflow "nope" does not exist/],
      [`SELECT df.create_schedule('has space', 'tick', '* * * * *')`, '22023', /invalid schedule name/],
      [`SELECT df.create_schedule('dup', 'tick', '* * * * *')`, '23505', /schedule "dup" already exists/],
      [`SELECT df.create_schedule('x', 'tick', NULL)`, '22004', /cron must not be NULL/],
      [`SELECT df.alter_schedule('dup', cron => '* * *')`, '22023', /expected 5 fields/],
      [`SELECT df.alter_schedule('nope', cron => '* * * * *')`, 'P0002', /schedule "nope" does not exist/],
      [`SELECT df.pause_schedule('nope')`, 'P0002', /does not exist/],
      [`SELECT df.drop_schedule('nope')`, 'P0002', /does not exist/],
    ];
    for (const [sql, code, message] of cases) {
      const e = await errorOf(sql);
      expect(e.code, sql).toBe(code);
      expect(e.message, sql).toMatch(message);
    }
    expect((await t.query('SELECT name FROM df.schedules')).map((r) => r.name)).toEqual(['dup']);
  });

  it('alter recomputes the next fire for a new cron or zone, keeps it otherwise, and clears input with JSON null', async () => {
    await create('alt', '0 0 1 1 *', `, input => '{"n": 2}'`);
    const [before] = await t.query(`SELECT next_fire_at FROM df.schedules WHERE name = 'alt'`);
    const [same] = await t.query(`SELECT df.alter_schedule('alt', overlap => 'allow', input => 'null') AS next`);
    expect(same.next).toEqual(before.next_fire_at);
    const [moved] = await t.query(`SELECT df.alter_schedule('alt', cron => '*/5 * * * *', timezone => 'Asia/Kolkata') AS next`);
    const [expected] = await t.query(`SELECT df.cron_next_fire('*/5 * * * *', 'Asia/Kolkata', now()) AS next`);
    expect(moved.next).toEqual(expected.next);
    const [s] = await t.query(`SELECT cron, timezone, input, overlap FROM df.schedules WHERE name = 'alt'`);
    expect(s).toEqual({ cron: '*/5 * * * *', timezone: 'Asia/Kolkata', input: null, overlap: 'allow' });
  });
});

describe('racing sweepers', () => {
  it('two sweepers with the same now start exactly one instance per schedule and due time', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `race${i}`);
    for (const n of names) {
      await create(n, '* * * * *', `, overlap => 'allow', input => '{"n": 1}'`);
      await setNext(n, '2030-01-01T12:00:00Z');
    }
    const now = at('2030-01-01T12:00:30Z');
    const [a, b] = await Promise.all([sweep(now), sweep(now)]);
    expect([...a, ...b].filter((f) => f.outcome === 'started')).toHaveLength(20);
    // Run again with the same now, and the minute after, from both.
    await Promise.all([sweep(now), sweep(now)]);
    await Promise.all([sweep(at('2030-01-01T12:01:00.5Z')), sweep(at('2030-01-01T12:01:00.5Z'))]);
    await engineFor(t).drain();
    for (const n of names) {
      expect(await instancesOf(n), n).toBe(2);
      expect(await hits(n), n).toBe(2);
      expect(await history(n)).toEqual(['2030-01-01T12:00:00.000Z started', '2030-01-01T12:01:00.000Z started']);
    }
  });

  it('the unique (schedule, fire_at) key stops a second start when next_fire_at is stale', async () => {
    await create('stale', '* * * * *', `, overlap => 'allow'`);
    await setNext('stale', '2030-01-01T12:00:00Z');
    expect((await sweep(at('2030-01-01T12:00:10Z'))).map((f) => f.outcome)).toEqual(['started']);
    // Another sweeper that read the schedule before the first committed would see the old due time.
    await setNext('stale', '2030-01-01T12:00:00Z');
    const again = await sweep(at('2030-01-01T12:00:20Z'));
    expect(again.map((f) => [f.outcome, f.fireAt.toISOString()])).toEqual([['duplicate', '2030-01-01T12:00:00.000Z']]);
    expect(await instancesOf('stale')).toBe(1);
    const [s] = await t.query(`SELECT next_fire_at FROM df.schedules WHERE name = 'stale'`);
    expect(s.next_fire_at).toEqual(at('2030-01-01T12:01:00Z'));
  });
});

describe('missed fires', () => {
  it("'skip' records the latest due time as missed after a long outage and starts nothing", async () => {
    await create('hourly-skip', '0 * * * *');
    await setNext('hourly-skip', '2030-01-01T08:00:00Z');
    const fires = await sweep(at('2030-01-01T13:10:00Z')); // five hours down
    expect(fires.map((f) => [f.outcome, f.fireAt.toISOString(), f.nextFireAt?.toISOString()])).toEqual([
      ['missed', '2030-01-01T13:00:00.000Z', '2030-01-01T14:00:00.000Z'],
    ]);
    expect(await instancesOf('hourly-skip')).toBe(0);
    expect(await history('hourly-skip')).toEqual(['2030-01-01T13:00:00.000Z missed']);
  });

  it("'skip' still fires a due time that is late by less than the grace", async () => {
    await create('hourly-late', '0 * * * *');
    await setNext('hourly-late', '2030-01-01T08:00:00Z');
    const fires = await sweep(at('2030-01-01T13:04:00Z'));
    expect(fires.map((f) => [f.outcome, f.fireAt.toISOString()])).toEqual([['started', '2030-01-01T13:00:00.000Z']]);
    expect(await instancesOf('hourly-late')).toBe(1);
  });

  it("'catch_up_once' starts one instance for the whole outage, then keeps the schedule", async () => {
    await create('hourly-catch', '0 * * * *', `, missed => 'catch_up_once', input => '{"n": 7}'`);
    await setNext('hourly-catch', '2030-01-01T08:00:00Z');
    const fires = await sweep(at('2030-01-01T13:10:00Z'));
    expect(fires.map((f) => [f.outcome, f.fireAt.toISOString(), f.nextFireAt?.toISOString()])).toEqual([
      ['started', '2030-01-01T13:00:00.000Z', '2030-01-01T14:00:00.000Z'],
    ]);
    expect(await sweep(at('2030-01-01T13:30:00Z'))).toEqual([]);
    await engineFor(t).drain();
    expect(await hits('hourly-catch')).toBe(1);
    expect((await t.query(`SELECT n FROM hits WHERE label = 'hourly-catch'`))[0].n).toBe(7);
  });

  it('a week of outage on a dense schedule is planned quickly', async () => {
    await create('busy', '* 0-11 * * *', `, missed => 'catch_up_once'`); // every minute of the morning
    await setNext('busy', '2030-01-01T00:00:00Z');
    const t0 = performance.now();
    const fires = await sweep(at('2030-01-08T18:00:30Z'));
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(fires.map((f) => [f.outcome, f.fireAt.toISOString(), f.nextFireAt?.toISOString()])).toEqual([
      ['started', '2030-01-08T11:59:00.000Z', '2030-01-09T00:00:00.000Z'],
    ]);
  });

  it('every due time within the grace fires, once each, oldest first', async () => {
    await create('late-sweep', '* * * * *', `, overlap => 'allow'`);
    await setNext('late-sweep', '2030-01-01T12:00:00Z');
    const fires = await sweep(at('2030-01-01T12:03:30Z')); // the sweep came 3.5 minutes late
    expect(fires.map((f) => `${f.fireAt.toISOString()} ${f.outcome}`)).toEqual([
      '2030-01-01T12:00:00.000Z started',
      '2030-01-01T12:01:00.000Z started',
      '2030-01-01T12:02:00.000Z started',
      '2030-01-01T12:03:00.000Z started',
    ]);
    expect(await instancesOf('late-sweep')).toBe(4);
    // An outage longer than the grace: with 'skip', the due times within the grace still fire.
    await setNext('late-sweep', '2030-01-01T13:00:00Z');
    const after = await sweep(at('2030-01-01T14:01:30Z'));
    expect(after.map((f) => f.fireAt.toISOString())).toEqual([
      '2030-01-01T13:57:00.000Z', '2030-01-01T13:58:00.000Z', '2030-01-01T13:59:00.000Z', '2030-01-01T14:00:00.000Z', '2030-01-01T14:01:00.000Z',
    ]);
  });
});

describe('overlap', () => {
  it("'skip' records a skip while the last instance is still running, and fires again once it finished", async () => {
    await create('ov-skip', '* * * * *');
    await setNext('ov-skip', '2030-01-01T12:00:00Z');
    expect((await sweep(at('2030-01-01T12:00:01Z'))).map((f) => f.outcome)).toEqual(['started']);
    expect((await sweep(at('2030-01-01T12:01:01Z'))).map((f) => f.outcome)).toEqual(['skipped_overlap']);
    await engineFor(t).drain();
    expect((await sweep(at('2030-01-01T12:02:01Z'))).map((f) => f.outcome)).toEqual(['started']);
    expect(await instancesOf('ov-skip')).toBe(2);
    expect(await history('ov-skip')).toEqual([
      '2030-01-01T12:00:00.000Z started',
      '2030-01-01T12:01:00.000Z skipped_overlap',
      '2030-01-01T12:02:00.000Z started',
    ]);
    const [s] = await t.query(`SELECT * FROM df.list_schedules() WHERE name = 'ov-skip'`);
    expect(s.last_fire_at).toEqual(at('2030-01-01T12:02:00Z'));
    expect(s.last_instance_status).toBe('pending');
  });

  it("'allow' starts a new instance while the previous one still runs", async () => {
    await create('ov-allow', '* * * * *', `, overlap => 'allow'`);
    await setNext('ov-allow', '2030-01-01T12:00:00Z');
    await sweep(at('2030-01-01T12:00:01Z'));
    await sweep(at('2030-01-01T12:01:01Z'));
    expect(await instancesOf('ov-allow')).toBe(2);
    expect(await history('ov-allow')).toEqual(['2030-01-01T12:00:00.000Z started', '2030-01-01T12:01:00.000Z started']);
  });
});

describe('daylight saving time', () => {
  /** Sweeps once a minute from `from` to `to` (inclusive) and returns the due times that fired. */
  async function minuteByMinute(name: string, from: string, to: string): Promise<string[]> {
    const fired: string[] = [];
    for (let ms = at(from).getTime(); ms <= at(to).getTime(); ms += 60_000) {
      for (const f of await sweep(new Date(ms + 5_000))) fired.push(`${f.fireAt.toISOString()} ${f.outcome}`);
    }
    return fired;
  }

  it('New York spring forward: 02:30 local, which does not exist, fires once at 03:00 EDT', async () => {
    await create('ny-spring', '30 2 * * *', `, 'America/New_York', overlap => 'allow'`);
    await t.query(`UPDATE df.schedules SET next_fire_at = df.cron_next_fire(cron, timezone, '2024-03-09T12:00:00Z') WHERE name = 'ny-spring'`);
    const fired = [
      ...(await minuteByMinute('ny-spring', '2024-03-10T06:20:00Z', '2024-03-10T07:40:00Z')),
      ...(await minuteByMinute('ny-spring', '2024-03-11T06:20:00Z', '2024-03-11T06:40:00Z')),
    ];
    expect(await instancesOf('ny-spring')).toBe(2);
    expect(fired).toEqual([
      '2024-03-10T07:00:00.000Z started', // 03:00 EDT, the first instant after the gap
      '2024-03-11T06:30:00.000Z started', // 02:30 EDT the next day
    ]);
  });

  it('New York fall back: every quarter hour, the repeated hour fires only once', async () => {
    await create('ny-fall', '*/15 * * * *', `, 'America/New_York', overlap => 'allow'`);
    await t.query(`UPDATE df.schedules SET next_fire_at = df.cron_next_fire(cron, timezone, '2024-11-03T04:50:00Z') WHERE name = 'ny-fall'`);
    expect(await minuteByMinute('ny-fall', '2024-11-03T04:50:00Z', '2024-11-03T07:20:00Z')).toEqual([
      '2024-11-03T05:00:00.000Z started', // 01:00 EDT
      '2024-11-03T05:15:00.000Z started',
      '2024-11-03T05:30:00.000Z started',
      '2024-11-03T05:45:00.000Z started', // 01:45 EDT; 01:00–01:45 EST (06:00Z–06:45Z) are not fired again
      '2024-11-03T07:00:00.000Z started', // 02:00 EST
      '2024-11-03T07:15:00.000Z started',
    ]);
  });

  it('Berlin spring forward and fall back, every half hour', async () => {
    await create('berlin', '*/30 * * * *', `, 'Europe/Berlin', overlap => 'allow'`);
    await t.query(`UPDATE df.schedules SET next_fire_at = df.cron_next_fire(cron, timezone, '2024-03-30T23:50:00Z') WHERE name = 'berlin'`);
    expect(await minuteByMinute('berlin', '2024-03-30T23:50:00Z', '2024-03-31T02:00:00Z')).toEqual([
      '2024-03-31T00:00:00.000Z started', // 01:00 CET
      '2024-03-31T00:30:00.000Z started',
      '2024-03-31T01:00:00.000Z started', // 02:00 and 02:30 (the gap) and 03:00 CEST are one instant
      '2024-03-31T01:30:00.000Z started',
      '2024-03-31T02:00:00.000Z started',
    ]);
    await t.query(`UPDATE df.schedules SET next_fire_at = df.cron_next_fire(cron, timezone, '2024-10-26T23:50:00Z') WHERE name = 'berlin'`);
    const fall = await minuteByMinute('berlin', '2024-10-26T23:50:00Z', '2024-10-27T02:00:00Z');
    expect(fall).toEqual([
      '2024-10-27T00:00:00.000Z started', // 02:00 CEST
      '2024-10-27T00:30:00.000Z started', // 02:30 CEST; 02:00 and 02:30 CET (01:00Z, 01:30Z) are not fired again
      '2024-10-27T02:00:00.000Z started', // 03:00 CET
    ]);
  });
});

describe('pause, resume, failures', () => {
  it('a paused schedule does not fire; resume continues from the next due time after now', async () => {
    await create('pz', '* * * * *');
    await t.query(`SELECT df.pause_schedule('pz')`);
    await setNext('pz', '2030-01-01T12:00:00Z');
    expect(await sweep(at('2030-01-01T12:30:00Z'))).toEqual([]);
    const [r] = await t.query(`SELECT df.resume_schedule('pz') AS next, now() AS now`);
    expect(r.next.getTime()).toBeGreaterThan(r.now.getTime());
    const [s] = await t.query(`SELECT paused, next_fire_at FROM df.schedules WHERE name = 'pz'`);
    expect(s).toEqual({ paused: false, next_fire_at: r.next });
    expect(await instancesOf('pz')).toBe(0);
  });

  it('one broken schedule is recorded and never stops the others', async () => {
    await t.query(`SELECT df.define_workflow('doomed', 'SELECT 1')`);
    await t.query(`SELECT df.create_schedule('a-gone', 'doomed', '* * * * *')`);
    await create('b-corrupt', '* * * * *');
    await create('c-fine', '* * * * *');
    await t.query(`SELECT df.drop_workflow('doomed')`);
    // A cron that only a hand-written UPDATE could store: the sweeper must survive it.
    await t.query(`UPDATE df.schedules SET cron = 'garbage' WHERE name = 'b-corrupt'`);
    for (const n of ['a-gone', 'b-corrupt', 'c-fine']) await setNext(n, '2030-01-01T12:00:00Z');
    const fires = await sweep(at('2030-01-01T12:00:05Z'));
    // All three are due at the same instant, so the claim (ORDER BY next_fire_at) takes them in no set order.
    expect(fires.map((f) => `${f.schedule} ${f.outcome}`).sort()).toEqual(['a-gone failed', 'c-fine started']);
    const rows = await t.query(`SELECT name, last_error, next_fire_at FROM df.schedules ORDER BY name`);
    expect(rows[0].last_error).toMatch(/workflow "doomed" does not exist/);
    expect(rows[0].next_fire_at).toEqual(at('2030-01-01T12:01:00Z'));
    expect(rows[1].last_error).toMatch(/Invalid cron expression 'garbage'/);
    expect(rows[1].next_fire_at).toEqual(at('2030-01-01T12:01:05Z')); // retried a minute later
    expect(rows[2].last_error).toBeNull();
    expect(await history('a-gone')).toEqual(['2030-01-01T12:00:00.000Z failed']);
    expect(await instancesOf('a-gone')).toBe(0);
  });
});

describe('owners', () => {
  let alice: string;
  let bob: string;
  const as = (role: string, pool: 'owner' | 'superuser', sql: string) => asRole(t, role, sql, [], pool);

  beforeAll(async () => {
    alice = t.role('alice');
    bob = t.role('bob');
    await t.superuser.query(`CREATE ROLE ${alice} LOGIN; CREATE ROLE ${bob} LOGIN`);
    await t.query('SELECT df.grant_usage($1), df.grant_usage($2)', [alice, bob]);
    await t.superuser.query(`GRANT ${alice} TO ${OWNER}`); // the worker may act as alice, not as bob
    await t.query(`GRANT INSERT ON hits TO ${alice}, ${bob}`);
    await as(alice, 'owner', `SELECT df.define_workflow('alice-tick', 'SELECT 1')`);
    await as(bob, 'superuser', `SELECT df.define_workflow('bob-tick', 'SELECT 1')`);
  });

  it("starts another role's schedule as that role, and sees only one's own schedules", async () => {
    await create('mine', '* * * * *');
    await as(alice, 'owner', `SELECT df.create_schedule('mine', 'alice-tick', '* * * * *')`); // same name, other owner
    expect((await as(alice, 'owner', 'SELECT name, workflow FROM df.list_schedules()'))).toEqual([{ name: 'mine', workflow: 'alice-tick' }]);
    expect((await t.query('SELECT name, workflow FROM df.list_schedules()'))).toEqual([{ name: 'mine', workflow: 'tick' }]);
    await as(alice, 'owner', `SELECT df.pause_schedule('mine')`); // pauses alice's only
    expect((await t.query(`SELECT owner::text AS owner, paused FROM df.schedules ORDER BY paused`))).toEqual([
      { owner: OWNER, paused: false },
      { owner: alice, paused: true },
    ]);
    await as(alice, 'owner', `SELECT df.resume_schedule('mine')`);
    await t.query(`UPDATE df.schedules SET next_fire_at = '2030-01-01T12:00:00Z'`);
    const fires = await sweep(at('2030-01-01T12:00:05Z'));
    expect(fires.map((f) => `${f.owner} ${f.outcome}`).sort()).toEqual([`${OWNER} started`, `${alice} started`].sort());
    const owners = await t.query(`SELECT submitted_by::text AS owner FROM df.instances WHERE label = 'mine' ORDER BY 1`);
    expect(owners.map((r) => r.owner).sort()).toEqual([OWNER, alice].sort());
    // The worker's session is back to its own role afterwards.
    expect((await t.query('SELECT current_user AS u'))[0].u).toBe(OWNER);
  });

  it('records an error when the worker may not act as the owner', async () => {
    await as(bob, 'superuser', `SELECT df.create_schedule('bobs', 'bob-tick', '* * * * *')`);
    await t.query(`UPDATE df.schedules SET next_fire_at = '2030-01-01T12:00:00Z'`);
    const fires = await sweep(at('2030-01-01T12:00:05Z'));
    expect(fires.map((f) => f.outcome)).toEqual(['failed']);
    expect(fires[0].error).toMatch(new RegExp(`may not act as the schedule's owner "${bob}"`));
    const [s] = await as(bob, 'superuser', 'SELECT last_error FROM df.list_schedules()');
    expect(s.last_error).toMatch(/may not act/);
    expect(await t.query(`SELECT 1 FROM df.instances WHERE label = 'bobs'`)).toEqual([]);
  });
});
