/**
 * Per-role step runners (DESIGN 11, issue 7 item 1): another role's SQL steps run as that role through
 * its SECURITY DEFINER runner, with the same results as a directly run statement, the owner's own
 * search_path, exactly once, and only while the role keeps usage and LOGIN.
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';
import type { CrashPoint } from '../../src/engine/points.ts';
import type { HttpStep } from '../../src/engine/engine.ts';
import { useRoles, type RoleHandle } from './roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);
let alice: RoleHandle;

const output = async (id: string) => (await t.query(`SELECT status, output FROM df.instances WHERE id = $1`, [id]))[0];
const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;

beforeAll(async () => {
  alice = await role('alice');
  // Tables both paths may use: one per path, so DML results do not depend on each other.
  await t.query(`CREATE SCHEMA shared; GRANT USAGE, CREATE ON SCHEMA shared TO "${alice.name}"`);
  for (const p of ['direct', 'runner']) {
    await t.query(`CREATE TABLE shared.t_${p} (id int PRIMARY KEY, v text); INSERT INTO shared.t_${p} VALUES (1, 'one'), (2, 'two');
                   GRANT ALL ON shared.t_${p} TO "${alice.name}"`);
  }
});

describe('a foreign owner runs through its step runner', () => {
  it('as the owner: current_user is the owner, the session is the worker', async () => {
    const id = await alice.start(`'SELECT current_user::text AS u, session_user::text AS s, 42 AS n'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ u: alice.name, s: 'pgflare_owner', n: 42 }] } });
  });

  it('the result of every kind of statement is the same as when run directly', async () => {
    // $T is the path's own table. Each statement runs as one instance of the worker (direct) and one of alice.
    const cases: string[] = [
      `SELECT 1 AS a, 'x' AS b, NULL::int AS c, '' AS d, true AS e, false AS f`,
      `SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8, 1.5::float4 AS f4, 0.1::float8 AS f8`,
      `SELECT 'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, '-Infinity'::float4 AS ninf`,
      `SELECT 123456.78900000::numeric AS n, -0.5::numeric AS m, 10::numeric(10,3) AS s`,
      `SELECT 'a"b' AS q, 'a,b' AS c, '(x)' AS p, 'back\\slash' AS b, E'new\\nline' AS nl, ' lead' AS sp, 'ünï ☃' AS u`,
      `SELECT '2024-06-15 12:30:00.123456+05:30'::timestamptz AS tz, '2024-06-15 12:30:00'::timestamp AS ts, '2024-06-15'::date AS d, '0044-03-15 BC'::date AS bc`,
      `SELECT '{"b":1,"a":[1,2,{"c":null}]}'::json AS j, '{"b":1,"a":"x"}'::jsonb AS jb, '"str"'::jsonb AS s, 'null'::json AS n`,
      `SELECT '7d4a9ff0-3c8a-4d3e-9c52-0c5a6d5c6d11'::uuid AS id, 'abc'::varchar(5) AS v, 'ab'::char(4) AS ch, 'nm'::name AS nm`,
      `SELECT pg_sleep(0) AS v`,
      `SELECT 1 AS a, 2 AS a, 3 AS b`,
      `SELECT FROM generate_series(1, 3)`,
      `SELECT g AS n FROM generate_series(1, 5) g ORDER BY g DESC`,
      `SELECT g FROM generate_series(1, 0) g`,
      `SELECT NULL AS only`,
      `SELECT ROW(1, 'a') AS r`,
      `SELECT '1 day'::interval AS i`,
      `SELECT '\\x01'::bytea AS b`,
      `SELECT ARRAY[1,2] AS arr`,
      `SELECT ARRAY[1] AS arr WHERE false`,
      `VALUES (1, 'a'), (2, NULL)`,
      `TABLE $T`,
      `SELECT * FROM $T ORDER BY id`,
      `INSERT INTO $T VALUES (3, 'three')`,
      `INSERT INTO $T VALUES (4, 'four') RETURNING *`,
      `UPDATE $T SET v = v || '!' WHERE id <= 2`,
      `UPDATE $T SET v = upper(v) WHERE id = 1 RETURNING id, v`,
      `DELETE FROM $T WHERE id = 4 RETURNING v`,
      `WITH x AS (INSERT INTO $T VALUES (5, 'five') RETURNING id) SELECT id * 10 AS ten FROM x`,
      `SELECT count(*)::int AS n, string_agg(v, ',' ORDER BY id) AS vs FROM $T`,
      `SELECT 1/0 AS boom`,
      `SELEC 1`,
      `SELECT * FROM no_such_table`,
      `SELECT 1 AS a; SELECT 2 AS b`,
      `SELECT 1 AS a;`,
      `SELECT 1 AS a; -- trailing comment`,
      `-- leading comment\nSELECT 'a;b' AS semi /* ; */`,
      `SELECT $$;$$ AS dollar, $q$ ; $q$ AS tagged, E'\\';' AS e, "x;" FROM (SELECT 1 AS "x;") s`,
      `CREATE TEMP TABLE tmp_step (a int)`,
      `SET work_mem = '8MB'`,
      `SHOW DateStyle`,
      `DO $$ BEGIN PERFORM 1; END $$`,
      `SELECT current_setting('df.in_workflow') AS w`,
      `SELECT df.getvar('nothing') AS v`,
      `COMMIT`,
      `/* c */ ROLLBACK`,
    ];
    const ids: { sql: string; direct: string; runner: string }[] = [];
    for (const c of cases) {
      const direct = await start(t, sqlText(c.replaceAll('$T', 'shared.t_direct')));
      const runner = await alice.start(sqlText(c.replaceAll('$T', 'shared.t_runner')));
      ids.push({ sql: c, direct, runner });
    }
    await engineFor(t).drain();
    const mismatches: unknown[] = [];
    for (const x of ids) {
      const d = await output(x.direct);
      const r = await output(x.runner);
      const norm = (s: string | null) => (s ?? '').replaceAll('shared.t_runner', '$T').replaceAll('shared.t_direct', '$T').replaceAll('t_runner', '$T').replaceAll('t_direct', '$T');
      if (d.status !== r.status || norm(d.output) !== norm(r.output)) mismatches.push({ sql: x.sql, direct: d, runner: r });
    }
    expect(mismatches).toEqual([]);
    // The table really covers successes and failures of both kinds.
    const statuses = await t.query(`SELECT status, count(*)::int AS n FROM df.instances WHERE id = ANY($1) GROUP BY 1 ORDER BY 1`, [ids.map((x) => x.runner)]);
    expect(statuses.map((s) => s.status)).toEqual(['completed', 'failed']);
    expect(statuses.find((s) => s.status === 'failed').n).toBeGreaterThanOrEqual(10);
    expect(statuses.find((s) => s.status === 'completed').n).toBeGreaterThanOrEqual(30);
  });

  it("sees the owner's own search_path: \"$user\" first, then role and database settings", async () => {
    const b = await role('sp');
    await t.superuser.query(`CREATE SCHEMA "${b.name}" AUTHORIZATION "${b.name}"; CREATE SCHEMA app_${b.name} AUTHORIZATION "${b.name}"`);
    await b.query(`CREATE TABLE t (src text); INSERT INTO t VALUES ('user schema'); CREATE TABLE app_${b.name}.t (src text); INSERT INTO app_${b.name}.t VALUES ('app schema')`);
    const e = engineFor(t);
    const first = await b.start(`'SELECT src, current_setting(''search_path'') AS path FROM t'`);
    await e.drain();
    expect(await outcome(t, first)).toMatchObject({ status: 'completed', result: { rows: [{ src: 'user schema', path: '"$user", public' }] } });
    await t.superuser.query(`ALTER ROLE "${b.name}" SET search_path = app_${b.name}`);
    const second = await b.start(`'SELECT src FROM t'`);
    await e.drain();
    expect(await outcome(t, second)).toMatchObject({ status: 'completed', result: { rows: [{ src: 'app schema' }] } });
    // Role in this database wins over the role-wide setting.
    await t.superuser.query(`ALTER ROLE "${b.name}" IN DATABASE ${t.name} SET search_path = "$user"`);
    const third = await b.start(`'SELECT src FROM t'`);
    await e.drain();
    expect(await outcome(t, third)).toMatchObject({ status: 'completed', result: { rows: [{ src: 'user schema' }] } });
    // The worker's session is back to its own search_path afterwards.
    expect((await t.query(`SHOW search_path`))[0].search_path).toBe('"$user", public');
  });

  it('rows are computed as the owner, never by the worker that fetches them', async () => {
    const b = await role('fetch');
    await t.query(`GRANT USAGE ON SCHEMA shared TO "${b.name}"`);
    await t.query(`CREATE TABLE shared.calls (who text); GRANT INSERT, SELECT ON shared.calls TO "${b.name}"`);
    await t.query(`CREATE FUNCTION shared.note(g int) RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO shared.calls VALUES (current_user::text) RETURNING g $$`);
    const id = await b.start(`'SELECT shared.note(g) AS g FROM generate_series(1, 5) g'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { row_count: 5 } });
    expect(await t.query(`SELECT who, count(*)::int AS n FROM shared.calls GROUP BY 1`)).toEqual([{ who: b.name, n: 5 }]);
  });

  it('works for role names that need quoting', async () => {
    for (const base of ['Mixed Case', 'quote"d']) {
      const q = await role(base);
      const id = await q.start(`'SELECT current_user::text AS u'`);
      await engineFor(t).drain();
      expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ u: q.name }] } });
    }
  });
});

describe('exactly once and the lease path', () => {
  it.each<CrashPoint>(['after-claim', 'before-commit'])('a crash at %s rolls a foreign step back; the re-run counts once', async (point) => {
    await t.query(`DROP TABLE IF EXISTS shared.effects; CREATE TABLE shared.effects (who text); GRANT INSERT ON shared.effects TO "${alice.name}"`);
    const id = await alice.start(`'SELECT 1' ~> 'INSERT INTO shared.effects VALUES (current_user)' ~> 'SELECT 2 AS two'`);
    const plain = engineFor(t);
    await plain.runOnce(); // start, with its first step ('SELECT 1') in the same transaction
    let fired = false;
    const crashing = engineFor(t, {
      points: (p) => {
        if (p === point && !fired) {
          fired = true;
          throw new Error(`crash at ${p}`);
        }
      },
    });
    await expect(crashing.runOnce()).rejects.toThrow(`crash at ${point}`);
    expect(await t.query(`SELECT count(*)::int AS n FROM shared.effects`)).toEqual([{ n: 0 }]);
    await crashing.drain();
    expect(await t.query(`SELECT who, count(*)::int AS n FROM shared.effects GROUP BY 1`)).toEqual([{ who: alice.name, n: 1 }]);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ two: 2 }] } });
  });

  it('a statement that needs the lease path fails clearly for a foreign owner, without a lease', async () => {
    const id = await alice.start(`'VACUUM shared.t_runner'`);
    await engineFor(t).drain();
    const o = await output(id);
    expect(o.status).toBe('failed');
    expect(o.output).toMatch(/cannot run inside a transaction block .* run only for instances of the worker's own role "pgflare_owner"/);
    expect(await t.query(`SELECT attempts, locked_until FROM df.nodes WHERE instance_id = $1`, [id])).toEqual([{ attempts: 1, locked_until: null }]);
  });

  it('HTTP steps of a foreign owner run when it has include_http, and are refused without', async () => {
    const seen: HttpStep[] = [];
    const http = async (s: HttpStep) => {
      seen.push(s);
      return s.canUseHttp ? { ok: true as const, resultText: '{"status":200}' } : { ok: false as const, error: 'Blocked: no EXECUTE on df.http()' };
    };
    const withHttp = await role('web', { http: true });
    const without = await role('noweb');
    await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.http_policy = 'all'`);
    const a = await withHttp.start(`df.http('https://example.com/')`);
    const b = await without.start(`df.http('https://example.com/')`).catch((e) => e);
    await engineFor(t, { http }).drain();
    expect(await outcome(t, a)).toMatchObject({ status: 'completed', result: { status: 200 } });
    // Without include_http the DSL itself is out of reach (EXECUTE on df.http is not granted).
    expect(b).toMatchObject({ code: '42501' });
    expect(seen.map((s) => [s.row.owner, s.canUseHttp])).toEqual([[withHttp.name, true]]);
    await t.superuser.query(`ALTER DATABASE ${t.name} RESET pg_durable.http_policy`);
  });
});

describe('identity: usage, LOGIN, dropped owners (SPEC §6.1–6.2)', () => {
  it('a role without usage gets 42501 from df.start; grant_usage makes it work', async () => {
    const r = await role('nousage', { grant: false });
    await expect(r.start(`'SELECT 1'`)).rejects.toMatchObject({ code: '42501' });
    await t.query(`SELECT df.grant_usage($1)`, [r.name]);
    const id = await r.start(`'SELECT 1 AS one'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
  });

  it('after df.revoke_usage the runner is gone and the next step fails; df.start is 42501', async () => {
    const r = await role('revoked');
    const id = await r.start(`'SELECT 1' ~> df.sleep(60) ~> 'SELECT 2'`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.revoke_usage($1)`, [r.name]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df._runners WHERE role = $1::regrole`, [r.name])).toEqual([{ n: 0 }]);
    expect(await t.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proowner = $1::regrole`, [r.name])).toEqual([{ n: 0 }]);
    await e.drain({ now: new Date(Date.now() + 61_000) });
    const o = await output(id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe(`pgflare: role "${r.name}" has no usage on schema df (df.revoke_usage ran, or df.grant_usage never did): its steps are not run`);
    await expect(r.start(`'SELECT 1'`)).rejects.toMatchObject({ code: '42501' });
  });

  it('an owner that lost LOGIN: its next SQL step fails as pg_durable says', async () => {
    const r = await role('nologin');
    const id = await r.start(`df.sleep(60) ~> 'SELECT 2'`);
    const e = engineFor(t);
    await e.drain();
    await t.superuser.query(`ALTER ROLE "${r.name}" NOLOGIN`);
    await e.drain({ now: new Date(Date.now() + 61_000) });
    const o = await output(id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe(`Failed to connect to database '${t.name}' as '${r.name}'. Error: role "${r.name}" is not permitted to log in`);
  });

  it('a dropped owner: failed at first claim, or at its next SQL step', async () => {
    const r = await role('dropped');
    const early = await r.start(`'SELECT 1'`);
    const late = await r.start(`df.sleep(60) ~> 'SELECT 2'`);
    const e = engineFor(t);
    await e.runOnce({ target: { instanceId: late, nodeId: (await t.query(`SELECT root_node FROM df.instances WHERE id = $1`, [late]))[0].root_node } });
    await e.drain();
    const [{ oid }] = await t.query(`SELECT $1::regrole::oid::text AS oid`, [r.name]);
    // The role owns its runner: it can only be dropped after revoke_usage (or DROP OWNED).
    await expect(t.superuser.query(`DROP ROLE "${r.name}"`)).rejects.toMatchObject({ code: '2BP01' });
    await t.superuser.query(`DROP OWNED BY "${r.name}"; DROP ROLE "${r.name}"`);
    await e.drain({ now: new Date(Date.now() + 61_000) });
    expect((await output(early)).status).toBe('completed'); // ran before the drop
    const o = await output(late);
    expect(o.status).toBe('failed');
    expect(o.output).toBe(`Failed to connect to database '${t.name}' as '${oid}'. Error: role "${oid}" does not exist`);
  });
});

describe('df.grant_usage and the runner it makes', () => {
  it('leaves the df owner no membership in the role, and the role no CREATE on df', async () => {
    const r = await role('clean');
    if (inject('pg').serverVersionNum < 160000) {
      expect(await t.query(`SELECT pg_has_role('pgflare_owner', $1, 'MEMBER') AS m, has_schema_privilege($1, 'df', 'CREATE') AS c`, [r.name])).toEqual([
        { m: false, c: false },
      ]);
    } else {
      // From 16 on the owner keeps only the ADMIN OPTION it needs (see createRole): it can neither use
      // the role's privileges nor SET ROLE to it; the membership it took for the runner is gone.
      expect(
        await t.query(
          `SELECT pg_has_role('pgflare_owner', $1, 'USAGE') AS u, pg_has_role('pgflare_owner', $1, 'SET') AS s, has_schema_privilege($1, 'df', 'CREATE') AS c,
                  (SELECT array_agg(format('%s/%s/%s', admin_option, inherit_option, set_option)) FROM pg_auth_members
                    WHERE roleid = $1::regrole AND member = 'pgflare_owner'::regrole) AS grants`,
          [r.name],
        ),
      ).toEqual([{ u: false, s: false, c: false, grants: ['t/f/f'] }]);
    }
    const [fn] = await t.query(
      `SELECT p.proname, p.prosecdef, p.proowner::regrole::text AS owner, p.proconfig, p.proacl::text[] AS acl
         FROM df._runners x JOIN pg_proc p ON p.oid = (x.runner || '(text)')::regprocedure WHERE x.role = $1::regrole`,
      [r.name],
    );
    expect(fn.proname).toMatch(/^_run_\d+$/);
    expect(fn.prosecdef).toBe(true);
    expect(fn.owner).toBe(r.name);
    expect(fn.proconfig).toEqual(['search_path=pg_catalog, pg_temp']);
    // EXECUTE: the owner (implicitly) and the worker's role, nobody else, not PUBLIC.
    expect(fn.acl.map((a: string) => a.split('=')[0]).sort()).toEqual([r.name, 'pgflare_owner'].sort());
  });

  it('granting twice re-creates the runner; a delegate\'s grant makes one too (test/security/grants.test.ts)', async () => {
    const d = await role('delegate');
    const [before] = await t.query(`SELECT runner, created_at FROM df._runners WHERE role = $1::regrole`, [d.name]);
    expect(before.runner).toMatch(/^df\._run_\d+$/);
    await t.query(`SELECT df.grant_usage($1, with_grant => true)`, [d.name]);
    const [after] = await t.query(`SELECT runner, created_at FROM df._runners WHERE role = $1::regrole`, [d.name]);
    expect(after.runner).toBe(before.runner);
    expect(after.created_at.getTime()).toBeGreaterThan(before.created_at.getTime());
    const other = await role('viadelegate', { grant: false });
    const c = await d.pool.connect();
    const warnings: string[] = [];
    c.on('notice', (n) => warnings.push(`${n.severity}: ${n.message}`));
    try {
      await c.query(`SELECT df.grant_usage($1)`, [other.name]);
    } finally {
      c.release();
    }
    expect(warnings.filter((w) => w.startsWith('WARNING'))).toEqual([]);
    const id = await other.start(`'SELECT current_user::text AS u'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ u: other.name }] } });
  });

  it('a role with CREATE on df gets no runner, and the worker refuses its instances', async () => {
    const r = await role('creator', { grant: false });
    await t.query(`GRANT CREATE ON SCHEMA df TO "${r.name}"; SELECT df.grant_usage('${r.name}')`);
    expect(await t.query(`SELECT count(*)::int AS n FROM df._runners WHERE role = $1::regrole`, [r.name])).toEqual([{ n: 0 }]);
    const id = await r.start(`'SELECT 1'`);
    await engineFor(t).drain();
    const o = await output(id);
    expect(o.status).toBe('failed');
    expect(o.output).toMatch(/has CREATE on schema df, so it could replace its own step runner/);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND status = 'failed'`, [id])).toEqual([{ n: 0 }]);
  });

  it('a superuser role gets no runner; its instances run only on a worker connected as itself', async () => {
    const c = await t.superuser.connect();
    let id: string;
    const warnings: string[] = [];
    c.on('notice', (n) => warnings.push(`${n.severity}: ${n.message}`));
    try {
      await c.query(`SELECT df.grant_usage('postgres')`);
      await c.query(`SET pg_durable.enable_superuser_instances = on`);
      id = (await c.query(`SELECT df.start('SELECT current_user::text AS u') AS id`)).rows[0].id;
    } finally {
      await c.query('RESET ALL');
      c.release();
    }
    expect(warnings.some((w) => /^WARNING: pgflare: no step runner for "postgres": role "postgres" is a superuser/.test(w))).toBe(true);
    expect(await t.query(`SELECT count(*)::int AS n FROM df._runners WHERE role = 'postgres'::regrole`)).toEqual([{ n: 0 }]);
    await engineFor(t, { enableSuperuserInstances: true }).drain();
    expect((await output(id)).output).toMatch(/^pgflare: role "postgres" is a superuser: its steps run only on a worker that connects as that role/);
  });

  it('a superuser may run grant_usage too', async () => {
    const r = await role('bysuper', { grant: false });
    await t.superuser.query(`SELECT df.grant_usage($1)`, [r.name]);
    const id = await r.start(`'SELECT current_user::text AS u'`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ u: r.name }] } });
  });
});
