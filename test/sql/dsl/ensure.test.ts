// SPEC §1.4: recognising an envelope vs auto-wrapping a string, malformed envelopes, the strict variant
// df.start uses (df._ensure(x, true)), and the helper trap.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const one = async (sql: string, params?: unknown[]) => Object.values((await t.query(sql, params))[0])[0];
const ensure = (input: string, strict = false) => one(`SELECT df._ensure($1, $2)`, [input, strict]);
const wrapped = (s: string) => JSON.stringify({ node_type: 'SQL', query: s });
const TYPES = 'SQL, THEN, IF, JOIN, LOOP, BREAK, RACE, SLEEP, WAIT_SCHEDULE, HTTP, HTTP_MULTIPART, SIGNAL';

describe('auto-wrap (§1.4 rule 4)', () => {
  it.each([
    ['plain SQL', 'SELECT 1'],
    ['empty string', ''],
    ['not JSON although it starts with {', '{ not json'],
    ['JSON without node_type', '{"foo": 1}'],
    ['JSON array', '[{"node_type":"SQL"}]'],
    ['JSON string', '"SELECT 1"'],
    ['node_type that is not a string', '{"node_type": 5}'],
    ['node_type null', '{"node_type": null, "query": "x"}'],
    ['unknown node_type (non-strict)', '{"node_type":"NOT_A_NODE","query":"x"}'],
    ['lower-case node_type (non-strict)', '{"node_type":"sql","query":"x"}'],
    ['a partial if', '{"condition": "c", "_partial_if": true, "then_branch": "t"}'],
    ['corrupt child but no string node_type', '{"left_node": 5}'],
    ['trailing garbage after an envelope', '{"node_type":"SQL","query":"x"} x'],
  ])('%s becomes a SQL node holding the whole string', async (_, input) => {
    expect(await ensure(input)).toBe(wrapped(input));
  });

  it('leaves NULL as NULL', async () => {
    expect(await one(`SELECT df._ensure(NULL)`)).toBeNull();
  });

  it.each(['SQL', 'THEN', 'IF', 'JOIN', 'LOOP', 'BREAK', 'RACE', 'SLEEP', 'WAIT_SCHEDULE', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL'])(
    'recognises node_type %s',
    async (type) => {
      expect(await ensure(`{"node_type":"${type}","query":"q"}`)).toBe(`{"node_type":"${type}","query":"q"}`);
      expect(await ensure(`{"node_type":"${type}","query":"q"}`, true)).toBe(`{"node_type":"${type}","query":"q"}`);
    },
  );

  it('accepts leading whitespace before an envelope', async () => {
    expect(await ensure(' \n\t{"node_type":"SQL","query":"q"}')).toBe('{"node_type":"SQL","query":"q"}');
  });

  it('ignores duplicate unknown keys', async () => {
    expect(await ensure('{"node_type":"SQL","x":1,"x":2,"query":"q"}')).toBe('{"node_type":"SQL","query":"q"}');
  });
});

describe('malformed envelopes (§1.4 rule 3), non-strict', () => {
  const PREFIX = 'Invalid Durofut JSON: failed to deserialize workflow step: ';
  it.each([
    ['{"node_type":"THEN","left_node":5,"right_node":{"node_type":"SQL","query":"b"}}', 'Durofut children must be JSON objects'],
    ['{"node_type":"THEN","left_node":{"node_type":"SQL"},"right_node":"SELECT 1"}', 'Durofut children must be JSON objects'],
    ['{"node_type":"IF","condition_node":"SELECT 1"}', 'condition_node must be a Durofut JSON object'],
    ['{"node_type":"IF","condition_node":[]}', 'condition_node must be a Durofut JSON object'],
    ['{"node_type":"JOIN","extra_nodes":[{"node_type":"SQL"}, 3]}', 'extra_nodes entries must be Durofut JSON objects'],
    ['{"node_type":"JOIN","extra_nodes":{"node_type":"SQL"}}', 'invalid type: map, expected a sequence'],
    ['{"node_type":"JOIN","extra_nodes":null}', 'invalid type: null, expected a sequence'],
    ['{"node_type":"SQL","query":5}', 'invalid type: integer `5`, expected a string'],
    ['{"node_type":"SQL","query":1.5}', 'invalid type: floating point `1.5`, expected a string'],
    ['{"node_type":"SQL","query":{"a":1}}', 'invalid type: map, expected a string'],
    ['{"node_type":"SQL","result_name":true}', 'invalid type: boolean `true`, expected a string'],
    ['{"node_type":"SQL","result_name":["x"]}', 'invalid type: sequence, expected a string'],
    ['{"node_type":"SQL","query":"a","query":"b"}', 'duplicate field `query`'],
    ['{"node_type":"SQL","node_type":"SQL"}', 'duplicate field `node_type`'],
    // an unknown node_type does not save a corrupt envelope from the error
    ['{"node_type":"FOO","left_node":1}', 'Durofut children must be JSON objects'],
    // the last node_type decides whether it is an envelope; the first (a number) breaks parsing
    ['{"node_type":1,"node_type":"SQL"}', 'invalid type: integer `1`, expected a string'],
  ])('%s', async (input, detail) => {
    await expect(ensure(input)).rejects.toMatchObject({ code: 'PF001', message: PREFIX + detail });
  });

  it('reports the first problem in key order', async () => {
    await expect(ensure('{"query":5,"node_type":"SQL","left_node":1}')).rejects.toMatchObject({
      message: PREFIX + 'invalid type: integer `5`, expected a string',
    });
  });

  it('composers raise the same error for a malformed argument', async () => {
    await expect(t.query(`SELECT df.seq('SELECT 1', '{"node_type":"THEN","left_node":"x"}')`)).rejects.toMatchObject({
      code: 'PF001',
      message: PREFIX + 'Durofut children must be JSON objects',
    });
    await expect(t.query(`SELECT df.if('{"node_type":"IF","condition_node":1}', 't', 'e')`)).rejects.toMatchObject({
      code: 'PF001',
      message: PREFIX + 'condition_node must be a Durofut JSON object',
    });
    await expect(t.query(`SELECT '{"node_type":"JOIN","extra_nodes":[1]}' |=> 'x'`)).rejects.toMatchObject({
      code: 'PF001',
      message: PREFIX + 'extra_nodes entries must be Durofut JSON objects',
    });
  });

  it('does not look inside children (they are checked when materialised)', async () => {
    const raw = '{"node_type":"THEN","left_node":{"node_type":"THEN","left_node":7},"right_node":{"node_type":"NOPE"}}';
    expect(await ensure(raw)).toBe(raw);
  });
});

describe('strict variant (df.start top level)', () => {
  it('rejects an unknown node_type', async () => {
    await expect(ensure('{"node_type":"NOT_A_NODE","query":"x"}', true)).rejects.toMatchObject({
      code: 'PF001',
      message: `Invalid durable function: Unknown node_type 'NOT_A_NODE'. Valid types: ${TYPES}`,
    });
  });

  it('rejects an unknown node_type even when the envelope is also malformed', async () => {
    await expect(ensure('{"node_type":"FOO","left_node":1}', true)).rejects.toMatchObject({
      code: 'PF001',
      message: `Invalid durable function: Unknown node_type 'FOO'. Valid types: ${TYPES}`,
    });
  });

  it('reports a malformed envelope with a known node_type', async () => {
    await expect(ensure('{"node_type":"THEN","left_node":[1]}', true)).rejects.toMatchObject({
      code: 'PF001',
      message: "Invalid durable function: Malformed Durofut JSON with node_type 'THEN': Durofut children must be JSON objects",
    });
  });

  it('still wraps plain SQL and JSON without node_type', async () => {
    expect(await ensure('SELECT 1', true)).toBe(wrapped('SELECT 1'));
    expect(await ensure('{"a":1}', true)).toBe(wrapped('{"a":1}'));
    expect(await ensure('{"node_type":5}', true)).toBe(wrapped('{"node_type":5}'));
  });
});

describe('helper trap (§1.4 rule 1)', () => {
  const doBlock = (body: string) => t.query(`DO $do$ BEGIN ${body} END $do$`);

  it('rejects a plain string after a helper ran in the same statement', async () => {
    await expect(doBlock(`PERFORM df._mark_helper('df.setvar'); PERFORM df.seq('OK', df.sql('SELECT 1'));`)).rejects.toMatchObject({
      code: '55000',
      message: 'df.setvar cannot be used as a workflow step. Call df.setvar before df.start().',
    });
  });

  it('names the helper that set the marker, and applies to the strict variant', async () => {
    await expect(doBlock(`PERFORM df._mark_helper('df.await_instance'); PERFORM df._ensure('completed', true);`)).rejects.toMatchObject({
      code: '55000',
      message: 'df.await_instance cannot be used as a workflow step. Call df.await_instance before df.start().',
    });
  });

  it('quirk: in a DO block any later plain-string step fails', async () => {
    await expect(doBlock(`PERFORM df._mark_helper('df.clearvars'); PERFORM df.sql('x'); PERFORM 'SELECT 1' ~> 'SELECT 2';`)).rejects.toMatchObject({
      code: '55000',
      message: 'df.clearvars cannot be used as a workflow step. Call df.clearvars before df.start().',
    });
  });

  it('lets envelopes through in the same statement', async () => {
    await expect(
      doBlock(`PERFORM df._mark_helper('df.unsetvar'); PERFORM df.seq(df.sql('a'), ' {"node_type":"SQL","query":"b"}');`),
    ).resolves.toBeDefined();
  });

  it('does not fire in a later statement of the same transaction', async () => {
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT df._mark_helper('df.setvar')`);
      const { rows } = await c.query(`SELECT current_setting('df.non_future_helper') AS m, df.seq('OK', 'SELECT 1') AS e`);
      expect(rows[0].m).toMatch(/^df\.setvar\n\d+$/);
      expect(JSON.parse(rows[0].e).left_node).toEqual({ node_type: 'SQL', query: 'OK' });
      await c.query('COMMIT');
      // transaction-local: gone after commit
      const after = await c.query(`SELECT coalesce(current_setting('df.non_future_helper', true), '') AS m`);
      expect(after.rows[0].m).toBe('');
    } finally {
      c.release();
    }
  });

  it('fires within one SELECT when the helper is evaluated first', async () => {
    // A stand-in helper with the same contract as df.setvar: marks, then returns 'OK'.
    const c = await t.owner.connect();
    try {
      await c.query(`CREATE FUNCTION pg_temp.fake_setvar() RETURNS text LANGUAGE plpgsql AS $$
        BEGIN PERFORM df._mark_helper('df.setvar'); RETURN 'OK'; END $$`);
      await expect(c.query(`SELECT df.seq(pg_temp.fake_setvar(), 'SELECT 1')`)).rejects.toMatchObject({
        code: '55000',
        message: 'df.setvar cannot be used as a workflow step. Call df.setvar before df.start().',
      });
    } finally {
      c.release();
    }
  });

  it('ignores a stale marker from an earlier statement even with the same helper text', async () => {
    await t.query(`SELECT set_config('df.non_future_helper', E'df.setvar\\n0', false)`);
    expect(await one(`SELECT df._ensure('OK')`)).toBe(wrapped('OK'));
  });
});
