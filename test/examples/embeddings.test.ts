/**
 * examples/embeddings end to end against the example's own fake embeddings API: batches of documents
 * without embeddings, one API call per batch (retried through 503s), the
 * vectors stored, the loop ends when nothing is left; a 4xx fails the instance instead of looping.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embed, startFakeEmbeddingServer, type FakeEmbeddingServer } from '../../examples/embeddings/fake-server.ts';
import { createHttpRunner } from '../../src/engine/executors/http-runner.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome } from '../helpers/engine.ts';

const t = useTestDb();
const example = (f: string) => readFileSync(new URL(`../../examples/embeddings/${f}`, import.meta.url), 'utf8');
let api: FakeEmbeddingServer;
const http = createHttpRunner();

/** Drains, then keeps moving time forward past retry backoffs until the instance is finished. */
async function runToEnd(id: string) {
  const engine = engineFor(t, { http });
  let now = new Date();
  for (let i = 0; i < 50; i++) {
    await engine.drain({ now });
    const { status } = await outcome(t, id);
    if (status !== 'running' && status !== 'pending') return;
    now = later(31, now);
  }
  throw new Error('instance did not finish');
}

beforeAll(async () => {
  api = await startFakeEmbeddingServer();
  await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.http_policy = 'all'`);
  await t.query(example('setup.sql'));
  await t.query(example('setup.sql'));
  await t.query(example('workflow.sql'));
});
afterAll(() => api.close());

describe('examples/embeddings', () => {
  it('embeds every document in batches, through a flaky API, then stops', async () => {
    const bodies = Array.from({ length: 23 }, (_, i) => `document ${i}: ${'it is what it is '.repeat(i % 4)}`);
    await t.query('INSERT INTO emb.docs (body) SELECT unnest($1::text[])', [bodies]);
    api.failNext(2);
    const [{ id }] = await t.query(`SELECT df.start_workflow('embed-docs', $1::jsonb) AS id`, [JSON.stringify({ url: api.url, model: 'fake-4', batch: 10 })]);
    await runToEnd(id);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: 'done' });

    // 3 batches of 10, 10 and 3, each sent once successfully; the two 503s were retried.
    expect(api.requests.map((r) => r.input.length)).toEqual([10, 10, 3]);
    expect(api.requests.every((r) => r.model === 'fake-4')).toBe(true);
    const rows = await t.query('SELECT body, embedding::text AS raw FROM emb.docs ORDER BY id');
    expect(rows).toHaveLength(23);
    for (const r of rows) {
      const stored = r.raw.replace(/^[{[]|[}\]]$/g, '').split(',').map(Number);
      expect(stored.map((x: number) => Math.round(x * 100))).toEqual(embed(r.body).map((x) => Math.round(x * 100)));
    }
    const retries = await t.query(`SELECT count(*)::int AS n FROM df.instance_events($1) WHERE kind = 'attempt_failed'`, [id]);
    expect(retries[0].n).toBe(2);
  });

  it('a later run with nothing to do makes no call', async () => {
    const before = api.requests.length;
    const [{ id }] = await t.query(`SELECT df.start_workflow('embed-docs', $1::jsonb) AS id`, [JSON.stringify({ url: api.url })]);
    await runToEnd(id);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: 'done' });
    expect(api.requests.length).toBe(before);
  });

  it('a 4xx answer fails the instance with the API\'s message instead of looping', async () => {
    await t.query(`INSERT INTO emb.docs (body) VALUES ('one more')`);
    const [{ id }] = await t.query(`SELECT df.start_workflow('embed-docs', $1::jsonb) AS id`, [JSON.stringify({ url: api.url.replace('/v1/embeddings', '/v1/nope') })]);
    await runToEnd(id);
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toContain('embeddings API answered HTTP 404');
    expect((await t.query('SELECT count(*)::int AS n FROM emb.docs WHERE embedding IS NULL'))[0].n).toBe(1);
  });
});
