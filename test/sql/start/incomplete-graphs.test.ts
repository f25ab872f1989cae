import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

// Found by fuzzing: graphs that parse but lack what df.nodes' CHECKs require must be refused by df.start
// as invalid graphs (PF001, with the path), not as a constraint violation (23514).
describe('df.start refuses structurally incomplete graphs with PF001', () => {
  it.each([
    ['{"node_type":"JOIN"}', 'root: JOIN nodes need both left_node and right_node'],
    ['{"node_type":"JOIN","left_node":{"node_type":"SQL","query":"SELECT 1"}}', 'root: JOIN nodes need both left_node and right_node'],
    ['{"node_type":"THEN","left_node":{"node_type":"SQL","query":"a"},"right_node":{"node_type":"SQL","query":"b"},"query":"x"}', 'root: THEN nodes take no query'],
    ['{"node_type":"IF","left_node":{"node_type":"SQL","query":"a"},"right_node":{"node_type":"SQL","query":"b"}}', 'root: IF nodes need a condition_node (or the if_rows query)'],
    ['{"node_type":"LOOP"}', 'root: LOOP nodes need a left_node (the body)'],
    ['{"node_type":"SLEEP"}', 'root: SLEEP nodes need a query'],
    ['{"node_type":"THEN","left_node":{"node_type":"SQL","query":"a"},"right_node":{"node_type":"BREAK"}}', 'root.right: BREAK nodes need a query'],
    ['{"node_type":"SQL","query":"SELECT 1","result_name":"$$"}', "root: result_name '$$' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*"],
  ])('%s', async (graph, message) => {
    const before = await t.query('SELECT count(*)::int AS n FROM df.nodes');
    await expect(t.query('SELECT df.start($1)', [graph])).rejects.toMatchObject({
      code: 'PF001',
      message: `Invalid durable function graph: ${message}`,
    });
    expect(await t.query('SELECT count(*)::int AS n FROM df.nodes')).toEqual(before);
  });
});
