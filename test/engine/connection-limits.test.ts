/**
 * pg_durable.max_user_connections and pg_durable.execution_acquire_timeout (issue 16 item 6, migration
 * 0030), read per owner role from ALTER ROLE / ALTER DATABASE settings, on top of 0017's slots. Steps
 * block on a table lock the test holds, so "running" is observable in pg_locks; time moves by `now`.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome } from '../helpers/engine.ts';
import { serverUntil } from '../helpers/until.ts';
import { useRoles, type RoleHandle } from '../security/roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);
let a: RoleHandle;
let b: RoleHandle;
let holder: pg.Client;

beforeAll(async () => {
  a = await role('cl_a');
  b = await role('cl_b');
  await t.query(`CREATE SCHEMA shared; GRANT USAGE ON SCHEMA shared TO ${a.id}, ${b.id};
                 CREATE TABLE shared.effects (who text NOT NULL, id serial PRIMARY KEY);
                 CREATE TABLE shared.gate (x int);
                 GRANT SELECT, INSERT ON shared.effects TO ${a.id}, ${b.id};
                 GRANT USAGE ON SEQUENCE shared.effects_id_seq TO ${a.id}, ${b.id};
                 GRANT SELECT ON shared.gate TO ${a.id}, ${b.id}`);
  holder = new pg.Client({ connectionString: t.url() });
  await holder.connect();
});
afterAll(async () => {
  await holder?.end();
});

/** A step that blocks while the test holds shared.gate, then writes its effect. */
const blocking = (who: string) => `'WITH e AS (INSERT INTO shared.effects (who) VALUES (''${who}'') RETURNING 1) SELECT count(*) AS n FROM shared.gate, e'`;
const WAITERS = `(SELECT count(*)::int FROM pg_locks WHERE relation = 'shared.gate'::regclass AND NOT granted)`;
const blocked = async () => (await t.query(`SELECT ${WAITERS} AS n`))[0].n as number;
const effects = async (who: string) => (await t.query(`SELECT count(*)::int AS n FROM shared.effects WHERE who = $1`, [who]))[0].n as number;
const limitOf = async (r: RoleHandle) => (await t.query(`SELECT df._step_limit($1::regrole) AS n`, [r.name]))[0].n as number | null;

/** Holds the gate for the duration of `body`, releasing it however body ends. */
async function withGate(body: (open: () => Promise<void>) => Promise<void>): Promise<void> {
  await holder.query(`BEGIN; LOCK TABLE shared.gate IN ACCESS EXCLUSIVE MODE`);
  let open = false;
  const release = async () => {
    if (!open) await holder.query('COMMIT');
    open = true;
  };
  try {
    await body(release);
  } finally {
    await release();
  }
}

describe('pg_durable.max_user_connections', () => {
  it('unset: no limit, the claim keeps its single-statement path', async () => {
    expect((await t.query(`SELECT df._limits_in_force() AS x`))[0].x).toBe(false);
    expect(await limitOf(a)).toBeNull();
  });

  it('ALTER ROLE … SET = 2: at most 2 of the role\'s 4 steps run at once, all complete exactly once', async () => {
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.max_user_connections = 2`);
    expect((await t.query(`SELECT df._limits_in_force() AS x`))[0].x).toBe(true);
    expect(await limitOf(a)).toBe(2);
    expect(await limitOf(b)).toBeNull(); // another role's setting does not limit b
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await a.start(blocking('a')));
    const engine = engineFor(t);
    await withGate(async (open) => {
      const runs = Array.from({ length: 4 }, () => engine.runOnce());
      await serverUntil(t.query, `${WAITERS} >= 2`);
      // Two claims found the role full and returned; a fifth finds the same.
      expect(await engine.runOnce()).toBeNull();
      expect(await blocked()).toBe(2);
      // b is not limited: its step runs meanwhile.
      const bid = await b.start(`'INSERT INTO shared.effects (who) VALUES (''b'')'`);
      expect(await engine.runOnce()).toMatchObject({ instanceId: bid });
      await open();
      expect((await Promise.all(runs)).filter((r) => r !== null)).toHaveLength(2);
    });
    await engine.drain({ concurrency: 4 });
    for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
    expect(await effects('a')).toBe(4);
    expect(await effects('b')).toBe(1);
  });

  it('a value that is not a positive integer is ignored; df.set_role_limit wins over the setting', async () => {
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.max_user_connections = 'lots'`);
    expect(await limitOf(a)).toBeNull();
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.max_user_connections = 0`);
    expect(await limitOf(a)).toBeNull();
    // No limit in force for a: not listed.
    expect(await t.query(`SELECT 1 FROM df.list_role_limits() WHERE role = $1`, [a.name])).toHaveLength(0);
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.max_user_connections = 5`);
    const listed = async () =>
      (await t.query(`SELECT role, max_concurrent_steps AS n, source FROM df.list_role_limits() WHERE role = $1`, [a.name]))[0] ?? null;
    expect(await listed()).toEqual({ role: a.name, n: 5, source: 'pg_durable.max_user_connections' });
    await t.query(`SELECT df.set_role_limit($1, 3)`, [a.name]);
    expect(await limitOf(a)).toBe(3);
    expect(await listed()).toEqual({ role: a.name, n: 3, source: 'df.set_role_limit' });
    await t.query(`SELECT df.set_role_limit($1, NULL)`, [a.name]);
    expect(await limitOf(a)).toBe(5);
    // ALTER ROLE … IN DATABASE comes before the role's own setting, as in PostgreSQL.
    await t.superuser.query(`ALTER ROLE ${a.id} IN DATABASE ${t.name} SET pg_durable.max_user_connections = 4`);
    expect(await limitOf(a)).toBe(4);
    await t.superuser.query(`ALTER ROLE ${a.id} IN DATABASE ${t.name} RESET pg_durable.max_user_connections`);
  });
});

describe('pg_durable.execution_acquire_timeout', () => {
  it('a step that waited past the timeout fails with the limit named, while the blocking step runs on', async () => {
    await t.query(`DELETE FROM shared.effects`);
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.max_user_connections = 1`);
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.execution_acquire_timeout = 2`);
    const first = await a.start(blocking('a'));
    const second = await a.start(`'INSERT INTO shared.effects (who) VALUES (''late'')'`);
    const engine = engineFor(t);
    await withGate(async (open) => {
      const running = engine.runOnce();
      await serverUntil(t.query, `${WAITERS} >= 1`);
      // Within the timeout the second step just waits.
      expect(await engine.runOnce({ now: later(1) })).toBeNull();
      expect((await outcome(t, second)).status).toBe('pending');
      // Past it, the claim fails it: the instance fails with pg_durable's message.
      expect(await engine.runOnce({ now: later(3) })).toBeNull();
      const out = await outcome(t, second);
      expect(out.status).toBe('failed');
      expect(out.output).toBe(
        'pg_durable: connection limit reached (max_user_connections=1). Timed out after 2s waiting for an available execution slot.',
      );
      const [node] = await t.query(`SELECT n.status, n.result #>> '{}' AS result, n.run_at FROM df.nodes n JOIN df.instances i ON i.root_node = n.id AND i.id = n.instance_id WHERE i.id = $1`, [second]);
      expect(node).toMatchObject({ status: 'failed', result: out.output, run_at: null });
      // The blocking step is still running and finishes.
      expect(await blocked()).toBe(1);
      await open();
      expect(await running).toMatchObject({ instanceId: first });
    });
    expect((await outcome(t, first)).status).toBe('completed');
    expect(await effects('a')).toBe(1);
    expect(await effects('late')).toBe(0);
  });

  it('the default timeout is 30 s under max_user_connections', async () => {
    await t.superuser.query(`ALTER ROLE ${a.id} RESET pg_durable.execution_acquire_timeout`);
    const first = await a.start(blocking('a'));
    const second = await a.start(`'SELECT 1'`);
    const engine = engineFor(t);
    await withGate(async (open) => {
      const running = engine.runOnce();
      await serverUntil(t.query, `${WAITERS} >= 1`);
      expect(await engine.runOnce({ now: later(25) })).toBeNull();
      expect((await outcome(t, second)).status).toBe('pending');
      expect(await engine.runOnce({ now: later(31) })).toBeNull();
      expect((await outcome(t, second)).output).toMatch(/max_user_connections=1\)\. Timed out after 30s/);
      await open();
      await running;
    });
    expect((await outcome(t, first)).status).toBe('completed');
  });

  it('a df.set_role_limit limit waits without a timeout unless the setting is given', async () => {
    await t.superuser.query(`ALTER ROLE ${a.id} RESET pg_durable.max_user_connections`);
    await t.query(`SELECT df.set_role_limit($1, 1)`, [a.name]);
    const first = await a.start(blocking('a'));
    const second = await a.start(`'SELECT 1'`);
    const engine = engineFor(t);
    await withGate(async (open) => {
      const running = engine.runOnce();
      await serverUntil(t.query, `${WAITERS} >= 1`);
      expect(await engine.runOnce({ now: later(3600) })).toBeNull();
      expect((await outcome(t, second)).status).toBe('pending');
      await open();
      await running;
    });
    await engine.drain();
    expect((await outcome(t, first)).status).toBe('completed');
    expect((await outcome(t, second)).status).toBe('completed');
    await t.query(`SELECT df.set_role_limit($1, NULL)`, [a.name]);
  });
});

describe('ALTER DATABASE … SET', () => {
  it('limits every role of the database; a role\'s own setting wins', async () => {
    await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.max_user_connections = 1`);
    await t.superuser.query(`ALTER ROLE ${a.id} SET pg_durable.max_user_connections = 3`);
    expect(await limitOf(b)).toBe(1);
    expect(await limitOf(a)).toBe(3);
    const ids = [await b.start(blocking('b')), await b.start(blocking('b'))];
    const engine = engineFor(t);
    await withGate(async (open) => {
      const runs = [engine.runOnce(), engine.runOnce()];
      await serverUntil(t.query, `${WAITERS} >= 1`);
      expect(await engine.runOnce()).toBeNull();
      expect(await blocked()).toBe(1);
      await open();
      expect((await Promise.all(runs)).filter((r) => r !== null)).toHaveLength(1);
    });
    await engine.drain();
    for (const id of ids) expect((await outcome(t, id)).status).toBe('completed');
    await t.superuser.query(`ALTER DATABASE ${t.name} RESET pg_durable.max_user_connections`);
    await t.superuser.query(`ALTER ROLE ${a.id} RESET pg_durable.max_user_connections`);
  });
});
