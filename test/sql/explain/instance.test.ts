/**
 * SPEC §5.1 instance mode: header (id, label, status icon, output) and the tree with a marker per node
 * from inferred_status (§5.2, via df.instance_nodes). Progress is simulated by updating rows as the owner.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const BOB = t.role('bob');
const THEN = '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"}}';

beforeAll(async () => {
  await t.superuser.query(`CREATE ROLE ${BOB} LOGIN PASSWORD 'pw'`);
  await t.query(`GRANT USAGE ON SCHEMA df TO ${BOB}; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA df TO ${BOB};
                 GRANT SELECT ON df.instances, df.nodes TO ${BOB}`);
});
afterAll(async () => {
  await t.superuser.query(`DROP OWNED BY ${BOB} CASCADE; DROP ROLE ${BOB}`).catch(() => undefined);
});

const explain = async (id: string) => (await t.query('SELECT df.explain($1) AS x', [id]))[0].x as string;
const pad = (lines: string[]) => {
  const width = Math.max(...lines.map((l) => [...l].length)) + 4;
  return lines.map((l) => l + ' '.repeat(width - [...l].length)).join('\n');
};

/** Starts THEN(SELECT 1, SELECT 2) and returns the instance id and its node ids. */
async function startThen(label: string | null = null) {
  const [{ id }] = await t.query('SELECT df.start($1, $2) AS id', [THEN, label]);
  const [ids] = await t.query(
    `SELECT i.root_node AS root, r.left_node AS a, r.right_node AS b
       FROM df.instances i JOIN df.nodes r ON r.instance_id = i.id AND r.id = i.root_node WHERE i.id = $1`,
    [id],
  );
  return { id, ...ids } as { id: string; root: string; a: string; b: string };
}

/** Stamps nodes as the engine would (root scope, generation 1). */
async function stamp(id: string, nodes: Record<string, 'running' | 'completed' | 'failed'>, result: unknown = { rows: [], row_count: 0 }) {
  for (const [node, status] of Object.entries(nodes)) {
    await t.query(
      `UPDATE df.nodes SET status = $3, result = CASE WHEN $3 = 'running' THEN NULL ELSE $4::jsonb END,
              status_details = jsonb_build_object('execution_id', $1 || '::1'), updated_at = now()
        WHERE instance_id = $1 AND id = $2`,
      [id, node, status, JSON.stringify(result)],
    );
  }
}

describe('instance mode', () => {
  it('a fresh instance: label in the header, ○ pending everywhere, no Output line', async () => {
    const { id } = await startThen('nightly');
    expect(await explain(id)).toBe(
      `Instance: ${id} (nightly)\nStatus:   ○ pending\n\n` + pad(['SQL: SELECT 1 ○', '→ SQL: SELECT 2 ○']),
    );
  });

  it('a running instance: ⏳ on the running step', async () => {
    const { id, root, a } = await startThen();
    await t.query(`UPDATE df.instances SET status = 'running' WHERE id = $1`, [id]);
    await stamp(id, { [root]: 'running', [a]: 'running' });
    expect(await explain(id)).toBe(`Instance: ${id}\nStatus:   ⏳ running\n\n` + pad(['SQL: SELECT 1 ⏳', '→ SQL: SELECT 2 ○']));
  });

  it('a completed instance: ✓ markers and its output', async () => {
    const { id, root, a, b } = await startThen();
    await stamp(id, { [root]: 'completed', [a]: 'completed', [b]: 'completed' }, { rows: [{ x: 2 }], row_count: 1 });
    await t.query(
      `UPDATE df.instances SET status = 'completed', completed_at = now(), output = '{"rows":[{"x":2}],"row_count":1}' WHERE id = $1`,
      [id],
    );
    expect(await explain(id)).toBe(
      `Instance: ${id}\nStatus:   ✓ completed\nOutput:   {"rows":[{"x":2}],"row_count":1}\n\n` +
        pad(['SQL: SELECT 1 ✓', '→ SQL: SELECT 2 ✓']),
    );
  });

  it('a failed instance: ✗ on the failure, ⊘ on the skipped step, long output cut at 57 bytes', async () => {
    const { id, root, a } = await startThen();
    const error = 'SQL execution failed: error returned from database: division by zero';
    await stamp(id, { [root]: 'failed', [a]: 'failed' }, error);
    await t.query(`UPDATE df.instances SET status = 'failed', output = $2 WHERE id = $1`, [id, error]);
    expect(await explain(id)).toBe(
      `Instance: ${id}\nStatus:   ✗ failed\nOutput:   ${error.slice(0, 57)}...\n\n` + pad(['SQL: SELECT 1 ✗', '→ SQL: SELECT 2 ⊘']),
    );
  });

  it('a cancelled instance shows ✗', async () => {
    const { id } = await startThen();
    await t.query(`UPDATE df.instances SET status = 'cancelled' WHERE id = $1`, [id]);
    expect((await explain(id)).split('\n')[1]).toBe('Status:   ✗ cancelled');
  });

  it("an unknown id, or another role's instance, is not found", async () => {
    expect(await explain('abcdef12')).toBe("Instance 'abcdef12' not found");
    const { id } = await startThen();
    const c = new pg.Client({ connectionString: t.url(BOB) });
    await c.connect();
    try {
      expect((await c.query('SELECT df.explain($1) AS x', [id])).rows[0].x).toBe(`Instance '${id}' not found`);
    } finally {
      await c.end();
    }
  });

  it('an instance row without visible nodes reports it', async () => {
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO df.instances (id, root_node, submitted_by) VALUES ('0000abcd', '11111111', 'pgflare_owner')`);
      expect((await c.query(`SELECT df.explain('0000abcd') AS x`)).rows[0].x).toBe("No nodes found for instance '0000abcd'");
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
  });
});
