/**
 * df.start(…, transaction_mode => 'new') through a dblink loopback session (issue 16 item 4, 0030): the
 * start commits on its own session, survives the caller's ROLLBACK and is owned by the caller; launches
 * are admitted by pg_durable.max_new_transaction_starts; without dblink or its loopback server the error
 * says what to install or configure. The embedded PostgreSQL ships dblink.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { engineFor, outcome } from '../../helpers/engine.ts';
import { useRoles, type RoleHandle } from '../../security/roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);
let a: RoleHandle;
let b: RoleHandle;
let owner: string;

beforeAll(async () => {
  a = await role('tm_a');
  b = await role('tm_b');
  owner = (await t.query(`SELECT current_user::text AS u`))[0].u;
  await t.query(`CREATE SCHEMA shared; GRANT USAGE ON SCHEMA shared TO ${a.id};
                 CREATE TABLE shared.effects (n int); GRANT INSERT ON shared.effects TO ${a.id}`);
});

/** The error `sql` raises when run as `r` (fails the test if it succeeds). */
async function sqlError(r: RoleHandle, sql: string): Promise<{ code: string; message: string; hint?: string }> {
  const e = await r.query(sql).then(() => null, (x: { code: string; message: string; hint?: string }) => x);
  if (!e) throw new Error(`expected an error from: ${sql}`);
  return { code: e.code, message: e.message, hint: e.hint };
}

const count = async (sql: string) => (await t.query(`SELECT count(*)::int AS n FROM ${sql}`))[0].n as number;

/** Runs `body` in a transaction of a's that is rolled back; returns what body returned. */
async function inRolledBack<T>(body: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await a.pool.connect();
  try {
    await c.query('BEGIN');
    return await body(c);
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

describe("transaction_mode => 'new' where it cannot run", () => {
  it('without dblink: 0A000 naming the extension to install; nothing written', async () => {
    const before = await count('df.instances');
    const e = await sqlError(a, `SELECT df.start('SELECT 1', transaction_mode => 'new')`);
    expect(e).toMatchObject({ code: '0A000' });
    expect(e.message).toMatch(/needs the dblink extension, which is not installed/);
    expect(e.hint).toMatch(/CREATE EXTENSION dblink/);
    expect(await count('df.instances')).toBe(before);
  });

  it('with dblink but no loopback server: 0A000 naming the server and user mapping to create', async () => {
    await t.superuser.query('CREATE EXTENSION dblink');
    const e = await sqlError(a, `SELECT df.start('SELECT 1', transaction_mode => 'new')`);
    expect(e).toMatchObject({ code: '0A000' });
    expect(e.message).toMatch(/needs the foreign server pgflare_loopback and a user mapping/);
    expect(e.hint).toMatch(/CREATE SERVER pgflare_loopback FOREIGN DATA WRAPPER dblink_fdw/);
  });
});

describe("transaction_mode => 'new' with the loopback configured", () => {
  beforeAll(async () => {
    await t.superuser.query(`CREATE SERVER pgflare_loopback FOREIGN DATA WRAPPER dblink_fdw
                               OPTIONS (host '127.0.0.1', port '${t.port}', dbname '${t.name}')`);
    await t.superuser.query(`GRANT USAGE ON FOREIGN SERVER pgflare_loopback TO ${owner}`);
    await t.query(`CREATE USER MAPPING FOR CURRENT_USER SERVER pgflare_loopback OPTIONS (user '${owner}', password '${t.url().match(/:([^:@]+)@/)![1]}')`);
  });

  it("survives the caller's ROLLBACK, is owned by the caller and runs exactly once; 'caller' rolls back", async () => {
    const [newId, callerId] = await inRolledBack(async (c) => {
      const n = (await c.query(`SELECT df.start('INSERT INTO shared.effects VALUES (1)', 'oob', NULL, 'new') AS id`)).rows[0].id;
      const k = (await c.query(`SELECT df.start('INSERT INTO shared.effects VALUES (2)') AS id`)).rows[0].id;
      return [n, k];
    });
    const rows = await t.query(`SELECT id, submitted_by::text AS owner, label FROM df.instances WHERE id IN ($1, $2)`, [newId, callerId]);
    expect(rows).toEqual([{ id: newId, owner: a.name, label: 'oob' }]);
    await engineFor(t).drain();
    expect((await outcome(t, newId)).status).toBe('completed');
    expect(await t.query(`SELECT n FROM shared.effects`)).toEqual([{ n: 1 }]);
    // The loopback session ran as the owner, named as pg_durable names it, and is closed.
    expect(await count(`pg_stat_activity WHERE application_name = 'pg_durable:backend:new-transaction'`)).toBe(0);
  });

  it('a failure on the loopback keeps its SQLSTATE and says where it happened; nothing written', async () => {
    const before = await count('df.instances');
    const e = await sqlError(a, `SELECT df.start('{"node_type":"NOT_A_NODE"}', transaction_mode => 'new')`);
    expect(e.code).toBe('PF001');
    expect(e.message).toMatch(/^df\.start\(\) on new transaction failed: Invalid durable function: Unknown node_type 'NOT_A_NODE'/);
    expect(await count('df.instances')).toBe(before);
  });

  it('no role but the owner can use the loopback or read its password', async () => {
    // The owner's user mapping is the owner's alone.
    expect(await sqlError(a, `SELECT dblink_connect('x', 'pgflare_loopback')`)).toMatchObject({ code: '42704', message: `user mapping not found for "${a.name}"` });
    const [m] = await a.query(`SELECT umoptions FROM pg_user_mappings WHERE srvname = 'pgflare_loopback'`);
    expect(m.umoptions).toBeNull();
    // df._start_new starts only for the calling session's role.
    expect((await sqlError(a, `SELECT df._start_new('SELECT 1', NULL, NULL, '${b.name}')`)).code).toBe('42501');
    // pgflare.start_as is honoured for the owner of schema df only.
    const e = await sqlError(a, `SELECT set_config('pgflare.start_as', '${b.name}', false), df.start('SELECT 1')`);
    expect(e.code).toBe('42501');
    expect(await count(`df.instances WHERE submitted_by::text = '${b.name}'`)).toBe(0);
  });

  it('launch limit: with every slot taken, a launch fails after new_transaction_start_timeout; nothing written', async () => {
    const holder = new pg.Client({ connectionString: t.url() });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(1346982470, 0)`);
      const before = await count('df.instances');
      const c = await a.pool.connect();
      try {
        await c.query(`SET pg_durable.max_new_transaction_starts = 1; SET pg_durable.new_transaction_start_timeout = '0.3'`);
        const e = await c.query(`SELECT df.start('SELECT 1', transaction_mode => 'new')`).then(() => null, (x) => x);
        expect(e).toMatchObject({
          code: '53400',
          message: "pg_durable: transaction_mode => 'new' launch limit reached (max_new_transaction_starts=1). Timed out after 0.3s waiting for a launch slot before opening the loopback session.",
        });
        // A second slot lets it through.
        await c.query(`SET pg_durable.max_new_transaction_starts = 2`);
        const [{ id }] = (await c.query(`SELECT df.start('SELECT 1', transaction_mode => 'new') AS id`)).rows;
        expect(id).toMatch(/^[0-9a-f]{8}$/);
        // The launch gave its slot back.
        expect(await count(`pg_locks WHERE locktype = 'advisory' AND classid = 1346982470 AND objid = 1`)).toBe(0);
      } finally {
        await c.query(`RESET pg_durable.max_new_transaction_starts; RESET pg_durable.new_transaction_start_timeout`);
        c.release();
      }
      expect(await count('df.instances')).toBe(before + 1);
    } finally {
      await holder.end();
    }
  });

  it("df.signal(…, 'new') is delivered at once: a worker sees it while the caller's transaction is open", async () => {
    const id = await a.start(`df.wait_for_signal('go') ~> 'INSERT INTO shared.effects VALUES (7)'`);
    const engine = engineFor(t);
    await engine.drain();
    expect((await outcome(t, id)).status).toBe('running');
    const c = await a.pool.connect();
    try {
      await c.query('BEGIN');
      // Work of the caller's that will be rolled back.
      await c.query(`INSERT INTO shared.effects VALUES (0)`);
      // 'new': committed on the loopback, so the worker receives it now; the same transaction sees the result.
      expect((await c.query(`SELECT df.signal($1, 'go', '"now"', 'new') AS r`, [id])).rows[0].r).toBe('OK');
      await engine.drain();
      expect((await c.query(`SELECT df.status($1) AS s`, [id])).rows[0].s).toBe('completed');
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
    expect((await outcome(t, id)).status).toBe('completed');
    expect(await count(`shared.effects WHERE n = 7`)).toBe(1);
    expect(await count(`shared.effects WHERE n = 0`)).toBe(0);
    expect(await t.query(`SELECT payload FROM df.signals WHERE instance_id = $1`, [id])).toEqual([{ payload: 'now' }]);
  });

  it("df.signal(…, 'new') checks as the caller: another role's instance is not found, bad mode is 22023", async () => {
    const bid = await b.start(`df.wait_for_signal('go')`);
    expect(await sqlError(a, `SELECT df.signal('${bid}', 'go', '{}', 'new')`)).toMatchObject({ code: 'P0002', message: `Instance not found or access denied: ${bid}` });
    // Even straight at the SECURITY DEFINER helper, a's session cannot act as b.
    expect((await sqlError(a, `SELECT df._signal_new('${bid}', 'go', '{}', '${b.name}')`)).code).toBe('42501');
    expect(await sqlError(a, `SELECT df.signal('${bid}', 'go', '{}', 'later')`)).toMatchObject({ code: '22023' });
    expect(await count(`df.signals WHERE instance_id = '${bid}'`)).toBe(0);
  });
});
