/**
 * No escape from a step (issue 7 item 2): a step of another role runs inside that role's SECURITY
 * DEFINER runner, where PostgreSQL refuses every change of role or session authorization, and the
 * runner refuses to run once its owner altered it. Each escape is tried through the engine; a table
 * written only as the worker's role proves none of them reached it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { grantToOwner, useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { useRoles, type RoleHandle } from './roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);
let mallory: RoleHandle;

const output = async (id: string) => (await t.query(`SELECT status, output FROM df.instances WHERE id = $1`, [id]))[0];
const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;
/** What the worker's role alone may write: a non-empty table means a step ran as the worker. */
const loot = async () => (await t.query(`SELECT count(*)::int AS n FROM worker_only`))[0].n;
const runner = async (r: RoleHandle) => (await t.query(`SELECT runner FROM df._runners WHERE role = $1::regrole`, [r.name]))[0].runner as string;

beforeAll(async () => {
  mallory = await role('mallory');
  await t.query(`CREATE TABLE worker_only (who text)`);
  // Like the REST API's set-up: the worker's role is a member of the step's owner, which a SET ROLE
  // escape would need to get back.
  await grantToOwner(t, mallory.id);
});

describe('role changes inside a step are refused', () => {
  const attempts: [string, string][] = [
    ['RESET ROLE', 'RESET ROLE'],
    ['SET ROLE to the worker', 'SET ROLE pgflare_owner'],
    ['SET ROLE NONE', 'SET ROLE NONE'],
    ['SET LOCAL ROLE', 'SET LOCAL ROLE pgflare_owner'],
    ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION pgflare_owner'],
    ['RESET SESSION AUTHORIZATION', 'RESET SESSION AUTHORIZATION'],
    ["set_config('role')", `SELECT set_config('role', 'pgflare_owner', false)`],
    ["set_config('role', local)", `SELECT set_config('role', 'pgflare_owner', true)`],
    ["set_config('session_authorization')", `SELECT set_config('session_authorization', 'pgflare_owner', false)`],
    ['RESET ROLE in a DO block', `DO $$ BEGIN RESET ROLE; INSERT INTO public.worker_only VALUES (current_user); END $$`],
    ['RESET ALL', `RESET ALL`],
  ];

  it.each(attempts)('%s', async (_label, sql) => {
    const id = await mallory.start(`${sqlText(sql)} ~> 'INSERT INTO public.worker_only VALUES (current_user)'`);
    await engineFor(t).drain();
    const o = await output(id);
    expect(o.status).toBe('failed');
    if (sql === 'RESET ALL') {
      // RESET ALL is allowed but does not reset role; the next step still runs as mallory, who may not write.
      expect(o.output).toMatch(/permission denied for table worker_only/);
    } else {
      expect(o.output).toMatch(/cannot set parameter "(role|session_authorization)" within security-definer function/);
    }
    expect(await loot()).toBe(0);
  });

  it("a function of the owner's with a SET role clause is refused too", async () => {
    // Owned by the worker's role, so the clause is valid (a role may set role to itself), and callable by
    // anyone. In the worker's session (session user: the worker's role) the clause would take a step
    // back to the worker's role; inside the runner PostgreSQL refuses any role change.
    await t.query(`CREATE SCHEMA m; GRANT USAGE ON SCHEMA m TO ${mallory.id};
                   CREATE FUNCTION m.become() RETURNS text LANGUAGE sql SET role = 'pgflare_owner'
                     AS $$ INSERT INTO public.worker_only VALUES (current_user) RETURNING who $$`);
    // The escape is real outside the runner: mallory's role in the worker's session gets back to the worker.
    const c = await t.owner.connect();
    try {
      await c.query(`BEGIN; SET LOCAL ROLE ${mallory.id}`);
      expect((await c.query(`SELECT m.become() AS u`)).rows).toEqual([{ u: 'pgflare_owner' }]);
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
    const id = await mallory.start(`'SELECT m.become() AS u'`);
    await engineFor(t).drain();
    expect(await output(id)).toEqual({
      status: 'failed',
      output: 'SQL execution failed: error returned from database: cannot set parameter "role" within security-definer function',
    });
    expect(await loot()).toBe(0);
  });
});

describe('SECURITY DEFINER functions a step calls', () => {
  it('run as their own owner, as in plain PostgreSQL', async () => {
    const carol = await role('carol');
    await t.superuser.query(`CREATE SCHEMA c AUTHORIZATION ${carol.id}`);
    await carol.query(`CREATE FUNCTION c.whoami() RETURNS text LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$ SELECT current_user::text $$;
                       GRANT USAGE ON SCHEMA c TO ${mallory.id}; GRANT EXECUTE ON FUNCTION c.whoami() TO ${mallory.id}`);
    const id = await mallory.start(`'SELECT c.whoami() AS inner_user, current_user::text AS step_user'`);
    await engineFor(t).drain();
    expect(await output(id)).toEqual({
      status: 'completed',
      output: JSON.stringify({ rows: [{ inner_user: carol.name, step_user: mallory.name }], row_count: 1 }),
    });
  });

  it("engine internals are out of reach of a step (the worker's EXECUTE does not carry over)", async () => {
    const id = await mallory.start(`'SELECT df._apply(''x'', ''{}''::jsonb)'`);
    await engineFor(t).drain();
    expect((await output(id)).output).toMatch(/permission denied for function _apply/);
  });
});

describe("the owner altering its own runner", () => {
  it('ALTER FUNCTION … SECURITY INVOKER: the re-check refuses, nothing runs as the worker', async () => {
    const eve = await role('eve');
    await grantToOwner(t, eve.id);
    const fn = await runner(eve);
    await eve.query(`ALTER FUNCTION ${fn}(text) SECURITY INVOKER`);
    // Called by the worker directly: the re-check on entry refuses.
    await expect(t.query(`SELECT ${fn}('INSERT INTO worker_only VALUES (current_user)')`)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/step runner df\._run_\d+ refused to run: it must run as role \d+ .*current_user is "pgflare_owner"/),
    });
    const id = await eve.start(`'INSERT INTO public.worker_only VALUES (current_user)'`);
    await engineFor(t).drain();
    const o = await output(id);
    expect(o.status).toBe('failed');
    expect(o.output).toMatch(/step runner df\._run_\d+ refused to run/);
    expect(await loot()).toBe(0);
  });

  it('SECURITY INVOKER plus SET role = <owner>: the role setting gives it away', async () => {
    const eve = await role('eve2');
    await grantToOwner(t, eve.id);
    const fn = await runner(eve);
    await eve.query(`ALTER FUNCTION ${fn}(text) SECURITY INVOKER SET role = ${eve.id}`);
    const id = await eve.start(`'RESET ROLE' ~> 'INSERT INTO public.worker_only VALUES (current_user)'`);
    await engineFor(t).drain();
    expect((await output(id)).output).toMatch(/step runner df\._run_\d+ refused to run/);
    expect(await loot()).toBe(0);
  });

  it('an ALTER FUNCTION inside a step takes effect from the next step on, which is refused', async () => {
    const eve = await role('eve3');
    const fn = await runner(eve);
    const id = await eve.start(`${sqlText(`ALTER FUNCTION ${fn}(text) SECURITY INVOKER`)} ~> 'SELECT current_user::text AS u'`);
    await engineFor(t).drain();
    expect((await output(id)).output).toMatch(/step runner df\._run_\d+ refused to run/);
  });

  it('cannot replace, rename or give away its runner (no CREATE on df)', async () => {
    const eve = await role('eve4');
    const fn = await runner(eve);
    await expect(eve.query(`CREATE OR REPLACE FUNCTION ${fn}(p_sql text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '[]'::jsonb $$`)).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for schema df',
    });
    await expect(eve.query(`ALTER FUNCTION ${fn}(text) RENAME TO x`)).rejects.toMatchObject({ code: '42501' });
    await expect(eve.query(`ALTER FUNCTION ${fn}(text) OWNER TO pgflare_owner`)).rejects.toMatchObject({ code: '42501' });
  });

  it('another role, or the owner itself, cannot call a runner', async () => {
    const other = await role('other');
    const fn = await runner(mallory);
    await expect(other.query(`SELECT ${fn}('SELECT 1')`)).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/permission denied for (schema df|function)/) });
    // The owner may execute its own function, but the runner refuses a caller that is not the worker.
    await expect(mallory.query(`SELECT ${fn}('SELECT 1')`)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/refused to run: .*session_user "mallory/),
    });
    // Granting EXECUTE on it onwards does not help either.
    await mallory.query(`GRANT EXECUTE ON FUNCTION ${fn}(text) TO ${other.id}`);
    await expect(other.query(`SELECT ${fn}('SELECT 1')`)).rejects.toMatchObject({ code: '42501' });
  });
});

describe('code a step leaves behind for later in the transaction', () => {
  it('deferred constraint triggers fire inside the runner, as the owner, not at COMMIT as the worker', async () => {
    const dee = await role('dee');
    await t.query(`CREATE TABLE who_ran (who text); GRANT INSERT ON who_ran TO PUBLIC`);
    await t.superuser.query(`CREATE SCHEMA d AUTHORIZATION ${dee.id}`);
    await dee.query(`
      CREATE TABLE d.t (n int);
      CREATE FUNCTION d.note() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.who_ran VALUES (current_user::text); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER later AFTER INSERT ON d.t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION d.note()`);
    const id = await dee.start(`'INSERT INTO d.t VALUES (1)' ~> 'SET CONSTRAINTS ALL DEFERRED' ~> 'INSERT INTO d.t VALUES (2) RETURNING n'`);
    await engineFor(t).drain();
    expect((await output(id)).status).toBe('completed');
    expect(await t.query(`SELECT who FROM who_ran`)).toEqual([{ who: dee.name }, { who: dee.name }]);
  });

  it('a cursor WITH HOLD declared by a step is closed before COMMIT could compute it as the worker', async () => {
    const hal = await role('hal');
    await t.superuser.query(`CREATE SCHEMA h AUTHORIZATION ${hal.id}`);
    await hal.query(`CREATE FUNCTION h.note() RETURNS int LANGUAGE sql AS $$ INSERT INTO public.worker_only VALUES (current_user::text) RETURNING 1 $$`);
    const id = await hal.start(`'DECLARE held CURSOR WITH HOLD FOR SELECT h.note()' ~> 'SELECT 1 AS ok'`);
    await engineFor(t).drain();
    expect((await output(id)).status).toBe('completed');
    expect(await loot()).toBe(0);
  });

  it('a step that sets the transaction read-only does not wedge the checkpoint', async () => {
    const ro = await role('ro');
    const id = await ro.start(`'SET transaction_read_only = on' ~> 'SELECT 1 AS ok'`);
    await engineFor(t).drain();
    expect(await output(id)).toEqual({ status: 'completed', output: '{"rows":[{"ok":1}],"row_count":1}' });
  });
});

describe('what a step sees of df', () => {
  it("row-level security applies inside the runner: a step sees only its owner's instances", async () => {
    const bob = await role('bob');
    await bob.start(`df.sleep(600)`);
    await t.query(`SELECT df.start('SELECT 1')`);
    const id = await mallory.start(`'SELECT count(*)::int AS n, count(*) FILTER (WHERE submitted_by::text <> current_user)::int AS others FROM df.instances'`);
    await engineFor(t).drain({ maxSteps: 10 });
    const o = JSON.parse((await output(id)).output);
    expect(o.rows[0].others).toBe(0);
    expect(o.rows[0].n).toBeGreaterThanOrEqual(1);
  });
});
