/**
 * Per-role concurrent step limit (issue 7 item 5, migration 0017): a role at its limit has its steps
 * wait, the workers run other roles' steps meanwhile, every step still runs exactly once, and a lease
 * counts as a step in flight. Steps block on a table lock the test holds, so "in flight" is observable.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb, sqlError } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';
import { gate } from '../helpers/locks.ts';
import { serverUntil } from '../helpers/until.ts';
import { useRoles, type RoleHandle } from './roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);
let a: RoleHandle;
let b: RoleHandle;
let me: string;
let holder: pg.Client;

beforeAll(async () => {
  a = await role('rl_a');
  b = await role('rl_b');
    await t.query(`CREATE SCHEMA shared; GRANT USAGE ON SCHEMA shared TO ${a.id}, ${b.id};
                 CREATE TABLE shared.effects (who text NOT NULL, id serial PRIMARY KEY);
                 CREATE TABLE shared.gate_a (x int); CREATE TABLE shared.small_c (x int);
                 GRANT SELECT, INSERT ON shared.effects TO ${a.id}, ${b.id};
                 GRANT USAGE ON SEQUENCE shared.effects_id_seq TO ${a.id}, ${b.id};
                 GRANT SELECT ON shared.gate_a TO ${a.id}`);
  me = (await t.query(`SELECT current_user::text AS u`))[0].u;
  holder = new pg.Client({ connectionString: t.url() });
  await holder.connect();
});
afterAll(async () => {
  await holder?.end();
});

/** A's step: blocks while the test holds gate_a, then writes its effect. */
const blockingStep = `'WITH e AS (INSERT INTO shared.effects (who) VALUES (''a'') RETURNING 1) SELECT count(*) AS n FROM shared.gate_a, e'`;

/** Sessions waiting for the lock on shared.gate_a: A's steps in flight. */
const GATE_WAITERS = `(SELECT count(*)::int FROM pg_locks WHERE relation = 'shared.gate_a'::regclass AND NOT granted)`;
async function blockedOnGate(): Promise<number> {
  const [r] = await t.query(`SELECT ${GATE_WAITERS} AS n`);
  return r.n;
}
/** Steps in flight on other sessions: polled on the server, bounded (test/helpers/until.ts). */
const waitBlocked = (n: number) =>
  serverUntil(t.query, `${GATE_WAITERS} >= ${n}`);
const effects = async (who: string) => (await t.query(`SELECT count(*)::int AS n FROM shared.effects WHERE who = $1`, [who]))[0].n;
const limits = async () => t.query(`SELECT role, max_concurrent_steps, claims, leases FROM df.list_role_limits()`);

describe('df.set_role_limit', () => {
  it('refuses bad input and non-owners; df.grant_usage never grants it', async () => {
    expect(await sqlError(t, `SELECT df.set_role_limit('no_such_role_rl', 2)`)).toMatchObject({ code: '42704' });
    expect(await sqlError(t, `SELECT df.set_role_limit(NULL, 2)`)).toMatchObject({ code: '22023' });
    for (const n of [0, -1, 1001]) {
      expect(await sqlError(t, `SELECT df.set_role_limit('${a.name}', ${n})`)).toMatchObject({ code: '22023' });
    }
    const denied = (sql: string) => a.query(sql).then(() => 'ok', (e: { code: string }) => e.code);
    expect(await denied(`SELECT df.set_role_limit('${a.name}', 100)`)).toBe('42501');
    expect(await denied(`SELECT * FROM df.list_role_limits()`)).toBe('42501');
    const [g] = await t.query(`SELECT has_function_privilege($1, 'df.set_role_limit(text, integer)', 'EXECUTE') AS x`, [a.name]);
    expect(g.x).toBe(false);
    // Even with EXECUTE granted by hand, only the schema owner or a superuser may set a limit.
    await t.query(`GRANT EXECUTE ON FUNCTION df.set_role_limit(text, integer) TO ${a.id}`);
    expect(await denied(`SELECT df.set_role_limit('${a.name}', 100)`)).toBe('42501');
    await t.query(`REVOKE EXECUTE ON FUNCTION df.set_role_limit(text, integer) FROM ${a.id}`);
    expect(await t.query(`SELECT * FROM df.role_limits`)).toEqual([]);
  });

  it('sets, changes and removes a limit; the superuser may too', async () => {
    expect((await t.query(`SELECT df.set_role_limit($1, 3) AS n`, [b.name]))[0].n).toBe(3);
    await t.superuser.query(`SELECT df.set_role_limit($1, 4)`, [b.name]);
    expect(await limits()).toEqual([{ role: b.name, max_concurrent_steps: 4, claims: 0, leases: 0 }]);
    expect((await t.query(`SELECT df.set_role_limit($1, NULL) AS n`, [b.name]))[0].n).toBe(null);
    expect(await limits()).toEqual([]);
  });
});

describe('a role at its limit waits; other roles run', () => {
  it('with N=2, exactly 2 of 6 steps run at once, B runs meanwhile, all complete exactly once', async () => {
    await t.query(`SELECT df.set_role_limit($1, 2)`, [a.name]);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await a.start(blockingStep));
    const engine = engineFor(t);
    await holder.query(`BEGIN; LOCK TABLE shared.gate_a IN ACCESS EXCLUSIVE MODE`);
    let gateOpen = false;
    try {
      // Several workers at once: two take A's two slots and block, the others find nothing to claim.
      const runs = Array.from({ length: 6 }, () => tracked(engine.runOnce()));
      await waitBlocked(2);
      await waitSettled(runs, 4);
      expect(runs.filter((r) => r.settled).map((r) => r.value)).toEqual([null, null, null, null]);
      expect(await blockedOnGate()).toBe(2);
      expect(await limits()).toEqual([{ role: a.name, max_concurrent_steps: 2, claims: 2, leases: 0 }]);
      expect(await engine.runOnce()).toBeNull();

      // B is not limited by A's limit: its step runs while A's two are in flight.
      const bid = await b.start(`'INSERT INTO shared.effects (who) VALUES (''b'')'`);
      const rb = await engine.runOnce();
      expect(rb).toMatchObject({ instanceId: bid });
      expect((await outcome(t, bid)).status).toBe('completed');
      expect(await effects('b')).toBe(1);
      expect(await blockedOnGate()).toBe(2);

      await holder.query('COMMIT');
      gateOpen = true;
      const done = await Promise.all(runs.map((r) => r.promise));
      expect(done.filter((r) => r !== null)).toHaveLength(2);
      await engine.drain({ concurrency: 4 });
      for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
      expect(await effects('a')).toBe(6);
      expect(await effects('b')).toBe(1);
      expect(await limits()).toEqual([{ role: a.name, max_concurrent_steps: 2, claims: 0, leases: 0 }]);
    } finally {
      if (!gateOpen) await holder.query('ROLLBACK');
    }
  });

  it('without a limit nothing changes: all of them run at once', async () => {
    await t.query(`SELECT df.set_role_limit($1, NULL)`, [a.name]);
    await t.query(`DELETE FROM shared.effects`);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await a.start(blockingStep));
    const engine = engineFor(t);
    await holder.query(`BEGIN; LOCK TABLE shared.gate_a IN ACCESS EXCLUSIVE MODE`);
    let gateOpen = false;
    try {
      const runs = Array.from({ length: 3 }, () => engine.runOnce());
      await waitBlocked(3);
      expect(await blockedOnGate()).toBe(3);
      await holder.query('COMMIT');
      gateOpen = true;
      expect((await Promise.all(runs)).filter((r) => r !== null)).toHaveLength(3);
      for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
      expect(await effects('a')).toBe(3);
    } finally {
      if (!gateOpen) await holder.query('ROLLBACK');
    }
  });
});

describe('a lease counts as a step in flight', () => {
  it('with N=1, a leased step (VACUUM) keeps the role full until its checkpoint', async () => {
    // The worker's own role: another role's non-transactional steps are refused (no runner outside a transaction).
    await t.query(`SELECT df.set_role_limit($1, NULL)`, [a.name]);
    await t.query(`SELECT df.set_role_limit($1, 1)`, [me]);
    const first = (await t.query(`SELECT df.start('VACUUM shared.small_c') AS id`))[0].id;
    const second = (await t.query(`SELECT df.start('VACUUM shared.small_c') AS id`))[0].id;
    const g = gate('after-lease');
    const parked = engineFor(t, { points: g.handler as never });
    const other = engineFor(t);
    try {
      // Activate both (a non-transactional first step is made ready, not run, by its activation).
      for (const id of [first, second]) {
        const [{ root_node }] = await t.query(`SELECT root_node FROM df.instances WHERE id = $1`, [id]);
        expect(await other.runOnce({ target: { instanceId: id, nodeId: root_node } })).toMatchObject({ kind: 'start' });
      }
      const p = parked.runOnce();
      await g.arrived;
      // The claim transaction has committed the lease: no slot is held, the lease counts instead.
      expect(await limits()).toEqual([{ role: me, max_concurrent_steps: 1, claims: 0, leases: 1 }]);
      expect(await other.runOnce()).toBeNull();
      const [q] = await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id IN ($1, $2) AND run_at <= now()`, [first, second]);
      expect(q.n).toBe(1); // the other one is ready, just waiting for the slot
      // Once the lease has expired it no longer counts (its row is claimable again as well).
      const [lease] = await t.query(`SELECT locked_until FROM df.nodes WHERE instance_id IN ($1, $2) AND locked_until IS NOT NULL`, [first, second]);
      const after = new Date(new Date(lease.locked_until).getTime() + 1000);
      expect((await t.query(`SELECT leases FROM df._role_in_flight($1::regrole, $2)`, [me, after]))[0].leases).toBe(0);
      g.release();
      expect(await p).toMatchObject({ kind: 'lease' });
      expect(await limits()).toEqual([{ role: me, max_concurrent_steps: 1, claims: 0, leases: 0 }]);
      await other.drain();
      expect((await outcome(t, first)).status).toBe('completed');
      expect((await outcome(t, second)).status).toBe('completed');
      const [ev] = await t.query(`SELECT count(*)::int AS n FROM df.events WHERE kind = 'leased' AND instance_id IN ($1, $2)`, [first, second]);
      expect(ev.n).toBe(2);
    } finally {
      g.release();
    }
  });
});

interface Tracked<T> {
  promise: Promise<T>;
  settled: boolean;
  value?: T;
}
function tracked<T>(promise: Promise<T>): Tracked<T> {
  const r: Tracked<T> = { promise, settled: false };
  promise.then((v) => Object.assign(r, { settled: true, value: v }), () => (r.settled = true));
  return r;
}
/** Resolves once `n` of the runs have returned (each settling checks; no clock involved). */
function waitSettled(runs: Tracked<unknown>[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (runs.filter((r) => r.settled).length >= n) resolve();
    };
    check();
    for (const r of runs) r.promise.then(check, check);
  });
}
