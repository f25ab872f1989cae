/**
 * What df.grant_usage grants (migration 0024: a rule, not an exclusion list) and delegated grants
 * (issue 16 item 2): a role granted `with_grant` grants usage to others, and its grantee runs workflows
 * exactly as one granted by the owner of schema df, as itself, without the delegate gaining anything.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';
import { useRoles, type RoleHandle } from './roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);

/** Runs `sql` on its own connection of `r`, returning the notices and warnings it raised. */
async function withNotices(r: RoleHandle, sql: string, params: unknown[] = []): Promise<string[]> {
  const c = await r.pool.connect();
  const notices: string[] = [];
  const onNotice = (n: { severity?: string; message?: string }) => {
    notices.push(`${n.severity}: ${n.message}`);
  };
  c.on('notice', onNotice);
  try {
    await c.query(sql, params);
  } finally {
    c.off('notice', onNotice);
    c.release();
  }
  return notices;
}

const runnerOf = async (name: string) =>
  (await t.query(`SELECT runner FROM df._runners WHERE role = $1::regrole`, [name]))[0]?.runner as string | undefined;
const hasUsage = async (name: string) =>
  (await t.query(`SELECT has_schema_privilege($1, 'df', 'USAGE') AS u`, [name]))[0].u as boolean;

describe('what df.grant_usage grants', () => {
  const ENGINE_INTERNALS = ['_claim', '_claim_many', '_apply', '_apply_many', '_lock_and_load', '_take_slot', '_role_in_flight',
    '_run_step', '_runner_problem', '_install_runner', '_schedule_plan'];

  it('never an engine internal, whatever the options: a granted role gets 42501 calling one', async () => {
    const granted = (await t.query<{ name: string }>(
      `SELECT DISTINCT p.proname AS name FROM df._usage_functions(true, true) f JOIN pg_proc p ON p.oid = f`,
    )).map((r) => r.name);
    expect(granted.filter((n) => ENGINE_INTERNALS.includes(n) || /^_run_\d+$/.test(n))).toEqual([]);
    const r = await role('all', { grant: false });
    await t.query(`SELECT df.grant_usage($1, include_http => true, with_grant => true)`, [r.name]);
    const calls: Record<string, string> = {
      _claim: `df._claim(now())`,
      _claim_many: `df._claim_many(now(), 5)`,
      _apply: `df._apply('x', '{}')`,
      _apply_many: `df._apply_many('[]')`,
      _lock_and_load: `df._lock_and_load('x', '{}', '{}')`,
      _run_step: `df._run_step('${r.name}'::regrole, 'SELECT 1')`,
      _install_runner: `df._install_runner('${r.name}'::regrole)`,
    };
    for (const [name, call] of Object.entries(calls)) {
      await expect(r.query(`SELECT ${call}`), name).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/^permission denied for function/) });
    }
  });

  it('of the df._ functions the worker calls (src/engine, src/runtime), only df._setting, which df.start calls too', async () => {
    const called = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/df\.(_[a-z0-9_]+)\(/g)) called.add(m[1]!);
        }
      }
    };
    const src = join(import.meta.dirname, '../../src');
    walk(join(src, 'engine'));
    walk(join(src, 'runtime'));
    expect(called.has('_claim') && called.has('_apply')).toBe(true); // the scan sees the engine's calls
    const granted = await t.query<{ name: string }>(
      `SELECT DISTINCT p.proname AS name FROM df._usage_functions(true, true) f JOIN pg_proc p ON p.oid = f WHERE p.proname = ANY($1) ORDER BY 1`,
      [[...called]],
    );
    expect(granted.map((g) => g.name)).toEqual(['_setting']);
  });

  it('the same with and without with_grant, but for what a delegate runs', async () => {
    const diff = await t.query<{ name: string }>(`
      SELECT p.proname AS name FROM df._usage_functions(false, true) f JOIN pg_proc p ON p.oid = f
      EXCEPT SELECT p.proname FROM df._usage_functions(false, false) f JOIN pg_proc p ON p.oid = f ORDER BY 1`);
    expect(diff.map((d) => d.name)).toEqual(['_drop_stale_runners', '_make_runner', '_usage_functions', 'grant_usage', 'metrics', 'revoke_usage']);
  });
});

describe('delegated grants', () => {
  let a: RoleHandle; // granted by the owner of schema df, with_grant
  let b: RoleHandle; // granted by a
  let grantNotices: string[];

  beforeAll(async () => {
    a = await role('deleg_a', { grant: false });
    b = await role('deleg_b', { grant: false });
    await t.query(`SELECT df.grant_usage($1, with_grant => true)`, [a.name]);
    // One table per party, each readable only by its own role (the owner of schema df owns owner_only).
    await t.query(`CREATE SCHEMA app; CREATE TABLE app.owner_only (v text); INSERT INTO app.owner_only VALUES ('owner')`);
    await t.query(`GRANT USAGE ON SCHEMA app TO ${a.id}, ${b.id}`);
    await t.query(`CREATE TABLE app.a_only (v text); INSERT INTO app.a_only VALUES ('a'); GRANT SELECT ON app.a_only TO ${a.id}`);
    await t.query(`CREATE TABLE app.b_log (who text, at int); GRANT SELECT, INSERT ON app.b_log TO ${b.id}`);
    grantNotices = await withNotices(a, `SELECT df.grant_usage($1)`, [b.name]);
  });

  it("a delegate's grantee gets a step runner and runs workflows as itself, exactly once", async () => {
    expect(grantNotices).toContain(`NOTICE: pg_durable: granted df usage privileges to "${b.name}"`);
    expect(grantNotices.filter((n) => n.startsWith('WARNING'))).toEqual([]);
    expect(await runnerOf(b.name)).toMatch(/^df\._run_\d+$/);
    // The runner is b's, executable by b (its owner) and the worker's role only: not by the delegate.
    const [fn] = await t.query(
      `SELECT p.proowner::regrole::text AS owner, p.prosecdef, has_function_privilege($2, p.oid, 'EXECUTE') AS delegate_exec
         FROM df._runners x JOIN pg_proc p ON p.oid = (x.runner || '(text)')::regprocedure WHERE x.role = $1::regrole`,
      [b.name, a.name],
    );
    expect(fn).toEqual({ owner: b.name, prosecdef: true, delegate_exec: false });
    // Nor can the delegate call, alter or replace it.
    const runner = (await runnerOf(b.name))!;
    await expect(a.query(`SELECT ${runner}('SELECT 1')`)).rejects.toMatchObject({ code: '42501' });
    await expect(a.query(`ALTER FUNCTION ${runner}(text) SECURITY INVOKER`)).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/^must be owner of function/) });
    await expect(a.query(`CREATE OR REPLACE FUNCTION ${runner}(p_sql text) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'`)).rejects.toMatchObject({ code: '42501' });
    await expect(a.query(`SELECT df._run_step($1::regrole, 'SELECT 1')`, [b.name])).rejects.toMatchObject({ code: '42501' });

    const id = await b.start(
      `'SELECT current_user::text AS u, session_user::text AS s' ~> 'INSERT INTO app.b_log SELECT current_user, 1 RETURNING who' ~> 'SELECT count(*)::int AS n FROM app.b_log'`,
    );
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ n: 1 }] } });
    expect(await t.query(`SELECT who, at FROM app.b_log`)).toEqual([{ who: b.name, at: 1 }]);
    const first = await b.query(`SELECT df.instance_nodes($1) AS n`, [id]);
    expect(first.length).toBeGreaterThan(0);
  });

  it("the grantee's steps have its rights, not the delegate's nor the owner's", async () => {
    const ownTable = await b.start(`'SELECT current_user::text AS u, count(*) >= 0 AS read FROM app.b_log'`);
    const delegates = await b.start(`'SELECT v FROM app.a_only'`);
    const owners = await b.start(`'SELECT v FROM app.owner_only'`);
    const dfTables = await b.start(`'SELECT count(*) FROM df._runners'`);
    await engineFor(t).drain();
    expect(await outcome(t, ownTable)).toMatchObject({ status: 'completed', result: { rows: [{ u: b.name, read: true }] } });
    for (const [id, table] of [[delegates, 'a_only'], [owners, 'owner_only'], [dfTables, '_runners']] as const) {
      const o = await outcome(t, id);
      expect(o.status, table).toBe('failed');
      expect(o.output, table).toContain(`permission denied for table ${table}`);
    }
  });

  it("row-level security: the grantee and the delegate see none of each other's instances", async () => {
    const mine = await a.start(`'SELECT 1'`);
    const theirs = await b.start(`'SELECT 2'`);
    expect((await b.query(`SELECT id FROM df.instances`)).map((r) => r.id)).not.toContain(mine);
    expect((await b.query(`SELECT instance_id FROM df.list_instances()`)).map((r) => r.instance_id)).not.toContain(mine);
    expect((await a.query(`SELECT id FROM df.instances`)).map((r) => r.id)).not.toContain(theirs);
    expect(await b.query(`SELECT df.status($1) AS s`, [mine])).toEqual([{ s: null }]);
    // Nor can the delegate submit work as the grantee.
    await expect(
      a.query(`INSERT INTO df.instances (id, root_node, submitted_by) VALUES ('forged', 'n1', $1::regrole)`, [b.name]),
    ).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/row-level security/) });
  });

  it('a delegate cannot pass on what it does not hold: include_http without http is refused, nothing granted', async () => {
    const c = await role('deleg_c', { grant: false });
    await expect(a.query(`SELECT df.grant_usage($1, include_http => true)`, [c.name])).rejects.toMatchObject({
      code: '42501',
      message: `pgflare: "${a.name}" may not grant EXECUTE on df._http_check(text,text,text,text[],integer), df._http_policy(), ` +
        `df.http(text,text,text,jsonb,integer), df.http_multipart(text,text,jsonb,jsonb,integer): it does not hold it with grant option ` +
        `(ask the owner of schema df, or grant without include_http/with_grant)`,
    });
    expect(await hasUsage(c.name)).toBe(false);
    expect(await runnerOf(c.name)).toBeUndefined();
    expect(await t.query(`SELECT has_function_privilege($1, 'df.http(text, text, text, jsonb, integer)', 'EXECUTE') AS x`, [c.name])).toEqual([{ x: false }]);
  });

  it('a grantee without grant option cannot grant, nor make runners', async () => {
    const d = await role('deleg_d', { grant: false });
    await expect(b.query(`SELECT df.grant_usage($1)`, [d.name])).rejects.toMatchObject({ code: '42501' });
    await expect(b.query(`SELECT df._make_runner($1::regrole)`, [d.name])).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/^permission denied for function _make_runner/),
    });
    expect(await hasUsage(d.name)).toBe(false);
  });

  it('the delegate makes runners only for roles that hold usage, never for a superuser', async () => {
    const e = await role('deleg_e', { grant: false });
    await expect(a.query(`SELECT df._make_runner($1::regrole)`, [e.name])).rejects.toMatchObject({
      code: '42501',
      message: `pgflare: role "${e.name}" has no usage on schema df: a step runner is made only for a role granted usage (df.grant_usage)`,
    });
    expect(await runnerOf(e.name)).toBeUndefined();
    const notices = await withNotices(a, `SELECT df.grant_usage('postgres')`);
    expect(notices).toContain(
      `WARNING: pgflare: no step runner for "postgres": role "postgres" is a superuser, and a runner would let the worker act as one; its SQL steps will not run until the owner of schema df runs df.grant_usage('postgres')`,
    );
    expect(await runnerOf('postgres')).toBeUndefined();
    await withNotices(a, `SELECT df.revoke_usage('postgres')`);
  });

  it('a delegate with grant option chains; revoking the delegate takes usage and runners from its whole chain', async () => {
    const f = await role('deleg_f', { grant: false });
    const g = await role('deleg_g', { grant: false });
    await a.query(`SELECT df.grant_usage($1, with_grant => true)`, [f.name]);
    await f.query(`SELECT df.grant_usage($1)`, [g.name]);
    const ran = await g.start(`'SELECT current_user::text AS u'`);
    await engineFor(t).drain();
    expect(await outcome(t, ran)).toMatchObject({ status: 'completed', result: { rows: [{ u: g.name }] } });
    expect(await runnerOf(g.name)).toBeDefined();

    const queued = await g.start(`df.sleep(60) ~> 'SELECT 1'`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.revoke_usage($1)`, [a.name]);
    for (const r of [a, f, g]) {
      expect(await hasUsage(r.name), r.name).toBe(false);
      expect(await runnerOf(r.name), r.name).toBeUndefined();
    }
    // b, granted by a, lost usage too: the CASCADE reaches every grant a made.
    expect(await hasUsage(b.name)).toBe(false);
    await e.drain({ now: new Date(Date.now() + 61_000) });
    const o = await outcome(t, queued);
    expect(o.status).toBe('failed');
    expect(o.output).toBe(`pgflare: role "${g.name}" has no usage on schema df (df.revoke_usage ran, or df.grant_usage never did): its steps are not run`);
  });

  it("a role granted by the owner and a delegate keeps usage and runner when one of them revokes", async () => {
    const h = await role('deleg_h', { grant: false });
    const k = await role('deleg_k', { grant: false });
    await t.query(`SELECT df.grant_usage($1, with_grant => true)`, [k.name]);
    await t.query(`SELECT df.grant_usage($1)`, [h.name]);
    await k.query(`SELECT df.grant_usage($1)`, [h.name]);
    await t.query(`SELECT df.revoke_usage($1)`, [h.name]);
    expect(await hasUsage(h.name)).toBe(true);
    expect(await runnerOf(h.name)).toBeDefined();
    const id = await h.start(`'SELECT current_user::text AS u'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ u: h.name }] } });
    await k.query(`SELECT df.revoke_usage($1)`, [h.name]);
    expect(await hasUsage(h.name)).toBe(false);
    expect(await runnerOf(h.name)).toBeUndefined();
  });
});
