/**
 * SPEC §5.0, §6.1, §4.1: who may start (LOGIN, superuser gate), what is recorded (owner, label,
 * database, the caller's vars), and that an ordinary granted role starts under RLS.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const NOLOGIN = t.role('nologin');
const ALICE = t.role('alice');
const BOB = t.role('bob');
const QUOTED = t.role('Odd "Role"');

/** What a role needs to call df.start: df.grant_usage. */
const grantStart = (role: string) => `
  SELECT df.grant_usage('${role.replaceAll("'", "''")}');`;

beforeAll(async () => {
  await t.superuser.query(`CREATE ROLE ${NOLOGIN} NOLOGIN; GRANT ${NOLOGIN} TO pgflare_owner`);
  for (const r of [ALICE, BOB, QUOTED]) await t.superuser.query(`CREATE ROLE "${r.replaceAll('"', '""')}" LOGIN PASSWORD 'pw'`);
  await t.query(grantStart(NOLOGIN) + grantStart(ALICE) + grantStart(BOB) + grantStart(QUOTED));
});

afterAll(async () => {
  for (const r of [NOLOGIN, ALICE, BOB, QUOTED]) {
    const q = `"${r.replaceAll('"', '""')}"`;
    await t.superuser.query(`DROP OWNED BY ${q} CASCADE; DROP ROLE ${q}`).catch(() => undefined);
  }
});

async function as<T>(role: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: t.url(role) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('who may start', () => {
  it('a NOLOGIN role (via SET ROLE) is rejected with 42501 and nothing is written', async () => {
    const c = await t.owner.connect();
    try {
      await c.query(`SET ROLE ${NOLOGIN}`);
      await expect(c.query(`SELECT df.start('SELECT 1')`)).rejects.toMatchObject({
        code: '42501',
        message: `current_user "${NOLOGIN}" does not have LOGIN privilege. The background worker must connect as this role to execute SQL. Grant LOGIN to this role or call df.start() as a role with LOGIN.`,
      });
      await c.query('RESET ROLE');
    } finally {
      c.release();
    }
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([{ n: 0 }]);
  });

  it('granting LOGIN makes the same role work, and it is recorded as the owner', async () => {
    await t.superuser.query(`ALTER ROLE ${NOLOGIN} LOGIN`);
    const c = await t.owner.connect();
    try {
      await c.query(`SET ROLE ${NOLOGIN}`);
      const [{ id }] = (await c.query(`SELECT df.start('SELECT 1') AS id`)).rows;
      await c.query('RESET ROLE');
      const [r] = await t.query(`SELECT submitted_by::text AS owner FROM df.instances WHERE id = $1`, [id]);
      expect(r.owner).toBe(NOLOGIN);
    } finally {
      c.release();
      await t.superuser.query(`ALTER ROLE ${NOLOGIN} NOLOGIN`);
    }
  });

  it('a superuser is refused while enable_superuser_instances is off, accepted once it is on', async () => {
    const c = await t.superuser.connect();
    try {
      await expect(c.query(`SELECT df.start('SELECT 1')`)).rejects.toMatchObject({
        code: '42501',
        message:
          'pg_durable: superuser instances are disabled. current_user "postgres" is a superuser, but pg_durable.enable_superuser_instances is off. Set pg_durable.enable_superuser_instances = on to allow this.',
      });
      await c.query(`SET pg_durable.enable_superuser_instances = on`);
      const [{ id }] = (await c.query(`SELECT df.start('SELECT 1') AS id`)).rows;
      expect(id).toMatch(/^[0-9a-f]{8}$/);
      const [r] = await t.query(`SELECT submitted_by::text AS owner FROM df.instances WHERE id = $1`, [id]);
      expect(r.owner).toBe('postgres');
    } finally {
      await c.query('RESET pg_durable.enable_superuser_instances');
      c.release();
    }
  });
});

describe('what is recorded', () => {
  it('label and database are stored; database is copied to every node', async () => {
    const [{ db }] = await t.query('SELECT current_database() AS db');
    const [{ id }] = await t.query(
      `SELECT df.start('{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SLEEP","query":"1"}}', 'nightly', $1) AS id`,
      [db],
    );
    expect(await t.query(`SELECT label, database FROM df.instances WHERE id = $1`, [id])).toEqual([{ label: 'nightly', database: db }]);
    expect(await t.query(`SELECT DISTINCT database FROM df.nodes WHERE instance_id = $1`, [id])).toEqual([{ database: db }]);
  });

  it('without a database argument, instance and nodes hold NULL', async () => {
    const [{ id }] = await t.query(`SELECT df.start('SELECT 1', label => 'x') AS id`);
    expect(await t.query(`SELECT label, database FROM df.instances WHERE id = $1`, [id])).toEqual([{ label: 'x', database: null }]);
    expect(await t.query(`SELECT database FROM df.nodes WHERE instance_id = $1`, [id])).toEqual([{ database: null }]);
  });

  it("vars: the caller's own rows, uncommitted ones included, NULL values skipped, other roles' ignored", async () => {
    await t.query(`INSERT INTO df.vars (name, value, owner) VALUES ('other', 'no', '${ALICE}'::regrole)`);
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO df.vars (name, value) VALUES ('limit', '10'), ('table', 'my "t"'), ('unset', NULL)`);
      const [{ id }] = (await c.query(`SELECT df.start('SELECT {limit}') AS id`)).rows;
      await c.query('COMMIT');
      expect(await t.query(`SELECT vars FROM df.instances WHERE id = $1`, [id])).toEqual([
        { vars: { limit: '10', table: 'my "t"' } },
      ]);
    } finally {
      c.release();
    }
    const [{ id: none }] = await as(ALICE, async (c) => (await c.query(`SELECT df.start('SELECT 1') AS id`)).rows);
    expect(await t.query(`SELECT vars FROM df.instances WHERE id = $1`, [none])).toEqual([{ vars: { other: 'no' } }]);
  });
});

describe('an ordinary role under RLS', () => {
  it('starts, owns its rows, and another role sees none of them', async () => {
    const id = await as(ALICE, async (c) => (await c.query(`SELECT df.start('SELECT 1', 'mine') AS id`)).rows[0].id);
    expect(await t.query(`SELECT submitted_by::text AS o, label FROM df.instances WHERE id = $1`, [id])).toEqual([
      { o: ALICE, label: 'mine' },
    ]);
    expect(await t.query(`SELECT DISTINCT submitted_by::text AS o FROM df.nodes WHERE instance_id = $1`, [id])).toEqual([{ o: ALICE }]);
    const seen = await as(BOB, async (c) =>
      (await c.query(`SELECT (SELECT count(*)::int FROM df.instances) AS i, (SELECT count(*)::int FROM df.nodes) AS n`)).rows[0],
    );
    expect(seen).toEqual({ i: 0, n: 0 });
  });

  it('a role whose name needs quoting is recorded correctly', async () => {
    const id = await as(QUOTED, async (c) => (await c.query(`SELECT df.start('SELECT 1') AS id`)).rows[0].id);
    const [r] = await t.query(`SELECT submitted_by::text AS o FROM df.instances WHERE id = $1`, [id]);
    expect(r.o).toBe(`"${QUOTED.replaceAll('"', '""')}"`);
  });
});
