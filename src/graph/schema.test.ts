import { describe, expect, it } from 'vitest';
import {
  EnvelopeSchema,
  NodeConfigError,
  NodeRowSchema,
  countEnvelopeNodes,
  parseEnvelope,
  parseNodeConfig,
  stringifyEnvelope,
  type NodeRow,
} from './schema.ts';

const sql = (q: string) => ({ node_type: 'SQL', query: q });

describe('EnvelopeSchema', () => {
  it('parses the DSL examples of SPEC §1.3', () => {
    expect(parseEnvelope('{"node_type":"SQL","query":"SELECT 1"}')).toEqual(sql('SELECT 1'));
    const then = parseEnvelope(
      '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"}}',
    );
    expect(then.left_node).toEqual(sql('SELECT 1'));
    expect(parseEnvelope('{"node_type":"SQL","query":"SELECT 1","result_name":"a"}').result_name).toBe('a');
    expect(parseEnvelope('{"node_type":"SLEEP","query":"5"}').query).toBe('5');
    expect(parseEnvelope('{"node_type":"BREAK","query":"{\\"break_value\\":null}"}').node_type).toBe('BREAK');
  });

  it('recurses into condition_node and extra_nodes', () => {
    const e = EnvelopeSchema.parse({
      node_type: 'JOIN',
      left_node: sql('a'),
      right_node: { node_type: 'IF', left_node: sql('t'), right_node: sql('e'), condition_node: sql('c') },
      extra_nodes: [sql('x'), { node_type: 'LOOP', left_node: sql('b'), condition_node: sql('w') }],
    });
    expect(e.extra_nodes?.[1].condition_node).toEqual(sql('w'));
    expect(e.right_node?.condition_node).toEqual(sql('c'));
  });

  it('ignores unknown keys and accepts null for absent children', () => {
    const e = EnvelopeSchema.parse({ node_type: 'SQL', query: 'q', extra: 1, left_node: null });
    expect(e).toEqual({ node_type: 'SQL', query: 'q', left_node: null });
  });

  it('rejects unknown node types, non-string queries and non-object children', () => {
    expect(EnvelopeSchema.safeParse({ node_type: 'NOT_A_NODE' }).success).toBe(false);
    expect(EnvelopeSchema.safeParse({ node_type: 'SQL', query: 1 }).success).toBe(false);
    expect(EnvelopeSchema.safeParse({ node_type: 'THEN', left_node: 'SELECT 1', right_node: sql('b') }).success).toBe(false);
    expect(EnvelopeSchema.safeParse({ node_type: 'JOIN', left_node: sql('a'), right_node: sql('b'), extra_nodes: ['c'] }).success).toBe(false);
    expect(EnvelopeSchema.safeParse({ node_type: 'THEN', left_node: { node_type: 'THEN', left_node: { node_type: 'X' } } }).success).toBe(false);
  });
});

describe('stringifyEnvelope', () => {
  it('writes the DSL key order and omits absent keys', () => {
    const text =
      '{"node_type":"IF","left_node":{"node_type":"SQL","query":"t"},"right_node":{"node_type":"SQL","query":"e"},' +
      '"condition_node":{"node_type":"SQL","query":"c"},"result_name":"r"}';
    const shuffled = { result_name: 'r', condition_node: sql('c'), right_node: sql('e'), node_type: 'IF', left_node: sql('t'), extra_nodes: [] };
    expect(stringifyEnvelope(EnvelopeSchema.parse(shuffled))).toBe(text);
    expect(stringifyEnvelope(parseEnvelope('{"node_type":"BREAK","query":"{\\"break_value\\":null}"}'))).toBe(
      '{"node_type":"BREAK","query":"{\\"break_value\\":null}"}',
    );
  });

  it('counts nodes', () => {
    const e = EnvelopeSchema.parse({ node_type: 'JOIN', left_node: sql('a'), right_node: sql('b'), extra_nodes: [sql('c'), sql('d')] });
    expect(countEnvelopeNodes(e)).toBe(5);
  });
});

const row = (over: Partial<NodeRow>): NodeRow => ({
  id: 'a1b2c3d4',
  instance_id: '0badcafe',
  node_type: 'SQL',
  query: 'SELECT 1',
  result_name: null,
  left_node: null,
  right_node: null,
  status: 'pending',
  result: null,
  status_details: null,
  ...over,
});

describe('NodeRowSchema', () => {
  it('accepts stored rows of every shape', () => {
    const ok = [
      row({}),
      row({ node_type: 'THEN', query: null, left_node: '00000001', right_node: '00000002' }),
      row({ node_type: 'IF', query: '{"condition_node":"00000003"}', left_node: '00000001', right_node: '00000002' }),
      row({ node_type: 'IF', query: '{"condition_type":"result_has_rows","result_name":"r"}', left_node: '00000001', right_node: '00000002' }),
      row({ node_type: 'LOOP', query: null, left_node: '00000001' }),
      row({ node_type: 'LOOP', query: '{"condition_node":"00000003"}', left_node: '00000001' }),
      row({ node_type: 'JOIN', query: null, left_node: '00000001', right_node: '00000002' }),
      row({ node_type: 'JOIN', query: '{"extra_nodes":["00000003","00000004"]}', left_node: '00000001', right_node: '00000002' }),
      row({ node_type: 'RACE', query: null, left_node: '00000001', right_node: '00000002' }),
      row({ status: 'completed', result: { rows: [], row_count: 0 }, status_details: { execution_id: '0badcafe::1' }, result_name: 'x_1' }),
    ];
    for (const r of ok) expect(NodeRowSchema.safeParse({ ...r, error: null, run_at: null }).error).toBeUndefined();
  });

  it('rejects rows that break the structure check or id rules', () => {
    const bad = [
      row({ node_type: 'THEN', query: null, left_node: '00000001' }),
      row({ node_type: 'SQL', query: null }),
      row({ node_type: 'IF', query: '{"condition_node":"nothex!!"}', left_node: '00000001', right_node: '00000002' }),
      row({ node_type: 'JOIN', query: '{"extra_nodes":[1]}', left_node: '00000001', right_node: '00000002' }),
      row({ id: 'ABCDEF12' }),
      row({ status: 'skipped' as never }),
      row({ result_name: '1bad' }),
    ];
    for (const r of bad) expect(NodeRowSchema.safeParse(r).success).toBe(false);
  });
});

describe('parseNodeConfig', () => {
  it('decodes every node type', () => {
    expect(parseNodeConfig(row({}))).toEqual({ node_type: 'SQL', sql: 'SELECT 1' });
    expect(parseNodeConfig(row({ node_type: 'THEN', query: null }))).toEqual({ node_type: 'THEN' });
    expect(parseNodeConfig(row({ node_type: 'RACE', query: null }))).toEqual({ node_type: 'RACE' });
    expect(parseNodeConfig(row({ node_type: 'JOIN', query: null }))).toEqual({ node_type: 'JOIN', extraNodes: [] });
    expect(parseNodeConfig(row({ node_type: 'JOIN', query: '{"extra_nodes":["00000003"]}' }))).toEqual({
      node_type: 'JOIN',
      extraNodes: ['00000003'],
    });
    expect(parseNodeConfig(row({ node_type: 'IF', query: '{"condition_node":"00000003"}' }))).toEqual({
      node_type: 'IF',
      condition: { kind: 'node', nodeId: '00000003' },
    });
    expect(parseNodeConfig(row({ node_type: 'IF', query: '{"condition_type":"result_has_rows","result_name":"r"}' }))).toEqual({
      node_type: 'IF',
      condition: { kind: 'result_has_rows', resultName: 'r' },
    });
    expect(parseNodeConfig(row({ node_type: 'LOOP', query: null }))).toEqual({ node_type: 'LOOP', conditionNode: null });
    expect(parseNodeConfig(row({ node_type: 'LOOP', query: '{"condition_node":"00000003"}' }))).toEqual({
      node_type: 'LOOP',
      conditionNode: '00000003',
    });
    expect(parseNodeConfig(row({ node_type: 'BREAK', query: '{"break_value":null}' }))).toEqual({
      node_type: 'BREAK',
      config: { break_value: null },
    });
    expect(parseNodeConfig(row({ node_type: 'BREAK', query: '{"break_value":"done"}' }))).toMatchObject({ config: { break_value: 'done' } });
    expect(parseNodeConfig(row({ node_type: 'SLEEP', query: '60' }))).toEqual({ node_type: 'SLEEP', seconds: 60 });
    expect(parseNodeConfig(row({ node_type: 'WAIT_SCHEDULE', query: '{"cron_expr":"*/5 * * * *"}' }))).toEqual({
      node_type: 'WAIT_SCHEDULE',
      config: { cron_expr: '*/5 * * * *' },
    });
    expect(parseNodeConfig(row({ node_type: 'SIGNAL', query: '{"signal_name":"x","timeout_seconds":null}' }))).toEqual({
      node_type: 'SIGNAL',
      config: { signal_name: 'x', timeout_seconds: null },
    });
    expect(
      parseNodeConfig(
        row({
          node_type: 'HTTP',
          query: '{"url":"https://x.test/{v}","method":"GET","body":null,"headers":{"a":"b","n":1},"timeout_seconds":30}',
        }),
      ),
    ).toEqual({
      node_type: 'HTTP',
      config: { url: 'https://x.test/{v}', method: 'GET', body: null, headers: { a: 'b', n: 1 }, timeout_seconds: 30 },
    });
    expect(
      parseNodeConfig(
        row({
          node_type: 'HTTP_MULTIPART',
          query: '{"url":"u","method":"POST","parts":[{"name":"f","data_b64":"aGk=","filename":"a.txt","content_type":"text/plain"}],"headers":null,"timeout_seconds":5}',
        }),
      ),
    ).toEqual({
      node_type: 'HTTP_MULTIPART',
      config: {
        url: 'u',
        method: 'POST',
        parts: [{ name: 'f', data_b64: 'aGk=', filename: 'a.txt', content_type: 'text/plain' }],
        headers: null,
        timeout_seconds: 5,
      },
    });
  });

  it('fills defaults a raw-JSON node may omit', () => {
    expect(parseNodeConfig(row({ node_type: 'HTTP', query: '{"url":"u"}' }))).toEqual({
      node_type: 'HTTP',
      config: { url: 'u', method: 'POST', body: null, headers: null, timeout_seconds: 30 },
    });
    expect(parseNodeConfig(row({ node_type: 'BREAK', query: '{}' }))).toMatchObject({ config: { break_value: null } });
  });

  it('fails with a node-failure message for malformed configs', () => {
    const err = (r: NodeRow) => {
      try {
        parseNodeConfig(r);
      } catch (e) {
        expect(e).toBeInstanceOf(NodeConfigError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err(row({ node_type: 'HTTP_MULTIPART', query: '{"url":"u","parts":[{"name":"f"}]}' }))).toMatch(
      /^Invalid multipart HTTP config: parts\.0\.data_b64: /,
    );
    expect(err(row({ node_type: 'IF', query: '{}' }))).toBe('IF node missing condition_node');
    expect(err(row({ node_type: 'IF', query: '{"condition_type":"result_has_rows"}' }))).toBe('df.if_rows: missing result_name');
    expect(err(row({ node_type: 'SLEEP', query: '-1' }))).toMatch(/^Invalid SLEEP config/);
    expect(err(row({ node_type: 'SIGNAL', query: 'not json' }))).toMatch(/^Invalid SIGNAL config: /);
    expect(err(row({ node_type: 'WAIT_SCHEDULE', query: '[1]' }))).toBe('Invalid WAIT_SCHEDULE config: expected a JSON object');
    expect(err(row({ node_type: 'SQL', query: null }))).toBe('Invalid SQL config: query is NULL');
  });
});
