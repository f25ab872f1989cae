import { describe, expect, it } from 'vitest';
import { createRole, useTestDb } from '../helpers/db.ts';

const t = useTestDb();

// Functions allowed to run as their owner. Anything else marked SECURITY DEFINER is a review finding.
// The per-role step runners df._run_<role oid> that df.grant_usage makes (DESIGN 11), each owned by its
// role and listed in df._runners (the test below creates one to check), and the two (0024) that make and
// drop runners as the owner of schema df, so a delegate's grant gets a runner too; and (0030) the one that
// open the dblink loopback session as the owner for df.start/df.signal(…, transaction_mode => 'new').
const SECURITY_DEFINER_ALLOWED = ['_make_runner', '_drop_stale_runners', '_start_new', '_signal_new'];
const RUNNER = /^_run_\d+$/;
// Public functions whose EXECUTE pg_durable revokes from PUBLIC (SPEC §6.2).
const NOT_PUBLIC = ['http', 'http_multipart', 'metrics', 'grant_usage', 'revoke_usage',
  // 0017: only the schema owner manages per-role limits
  'set_role_limit', 'list_role_limits'];

const functions = () =>
  t.query<{ name: string; args: string; config: string[] | null; secdef: boolean; public_exec: boolean }>(`
    SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args, p.proconfig AS config,
           p.prosecdef AS secdef,
           (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')) AS public_exec
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'df' ORDER BY 1, 2`);

describe('catalog rules for schema df', () => {
  it('every df function pins search_path', async () => {
    const unpinned = (await functions()).filter((f) => !(f.config ?? []).some((c) => c.startsWith('search_path=')));
    expect(unpinned.map((f) => `${f.name}(${f.args})`)).toEqual([]);
  });

  it('SECURITY DEFINER appears only on the allow-list: step runners, each registered and owned by its role', async () => {
    const role = t.role('runner');
    await createRole(t, role, 'LOGIN');
    await t.query(`SELECT df.grant_usage($1)`, [role]);
    const definers = (await functions()).filter((f) => f.secdef).map((f) => f.name);
    expect(definers.filter((n) => !SECURITY_DEFINER_ALLOWED.includes(n) && !RUNNER.test(n))).toEqual([]);
    expect(definers.filter((n) => RUNNER.test(n))).toHaveLength(1);
    const runners = await t.query(`
      SELECT p.proname, p.proowner = substring(p.proname FROM '[0-9]+$')::oid AS owned_by_role,
             EXISTS (SELECT 1 FROM df._runners x WHERE x.role = p.proowner AND x.runner = 'df.' || p.proname) AS registered,
             p.proconfig
        FROM pg_proc p WHERE p.pronamespace = 'df'::regnamespace AND p.prosecdef AND p.proname ~ '^_run_[0-9]+$'`);
    expect(runners).toEqual([{ proname: expect.stringMatching(RUNNER), owned_by_role: true, registered: true, proconfig: ['search_path=pg_catalog, pg_temp'] }]);
    // Only the worker's role (the owner of schema df) may execute it, besides its owner.
    const acls = await t.query(`SELECT has_function_privilege('public', p.oid, 'EXECUTE') AS pub FROM pg_proc p WHERE p.pronamespace = 'df'::regnamespace AND p.prosecdef`);
    expect(acls).toHaveLength(5);
    expect(acls.filter((a) => a.pub)).toEqual([]);
    // The runner makers run as the owner of schema df, with a pinned search_path.
    const makers = await t.query(`
      SELECT p.proname, p.proowner = n.nspowner AS owned_by_schema_owner, p.proconfig
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'df' AND p.proname = ANY($1) ORDER BY 1`, [SECURITY_DEFINER_ALLOWED]);
    expect(makers).toEqual(['_drop_stale_runners', '_make_runner', '_signal_new', '_start_new'].map((proname) => ({ proname, owned_by_schema_owner: true, proconfig: ['search_path=pg_catalog, pg_temp'] })));
  });

  it('internal (_-prefixed) functions are not executable by PUBLIC', async () => {
    const leaked = (await functions()).filter((f) => f.name.startsWith('_') && f.public_exec);
    expect(leaked.map((f) => `${f.name}(${f.args})`)).toEqual([]);
  });

  it('sensitive functions are not executable by PUBLIC; the rest of the API is', async () => {
    const fns = (await functions()).filter((f) => !f.name.startsWith('_'));
    expect(fns.filter((f) => NOT_PUBLIC.includes(f.name) && f.public_exec).map((f) => f.name)).toEqual([]);
    expect(fns.filter((f) => !NOT_PUBLIC.includes(f.name) && !f.public_exec).map((f) => `${f.name}(${f.args})`)).toEqual([]);
  });

  it('every API function and every engine internal (a _ function df.grant_usage never grants) has a COMMENT', async () => {
    const bare = await t.query(`
      SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
       WHERE p.pronamespace = 'df'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
         AND p.proname !~ '^_run_[0-9]+$'
         AND (p.proname !~ '^_' OR p.oid NOT IN (SELECT f FROM df._usage_functions(true, true) f))
       ORDER BY 1`);
    expect(bare.map((b) => b.fn)).toEqual([]);
  });

  it('PUBLIC has no privileges on schema df or its tables (USAGE is granted per role)', async () => {
    const rows = await t.query(`
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'df' AND c.relkind = 'r'
         AND EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a WHERE a.grantee = 0)`);
    expect(rows).toEqual([]);
    const [schema] = await t.query(`SELECT has_schema_privilege('public', 'df', 'USAGE') AS usage`);
    expect(schema.usage).toBe(false);
  });
});
