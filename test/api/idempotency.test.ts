/**
 * Idempotency-Key on the start routes: a repeat returns the first answer (no second instance), the same
 * key with another body is a 422, keys are per role, a key is dead after 24 hours (and pruned), and
 * identical requests sent at once start one instance (counted in df.instances).
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { pruneHistory } from '../../src/engine/maintenance.ts';
import { useTestDb } from '../helpers/db.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const OWNER = inject('pg').owner;
const TOKEN = 'static-token-for-idempotency-0123';
let otherToken: string;
let app: ReturnType<typeof createApp>;
let call: ReturnType<typeof client>;
let readied: string[] = [];

const post = (path: string, body: unknown, key?: string, token = TOKEN) =>
  app.request(path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(key === undefined ? {} : { 'Idempotency-Key': key }) },
    body: JSON.stringify(body),
  });
const count = async (label: string) => Number((await t.query('SELECT count(*) AS n FROM df.instances WHERE label = $1', [label]))[0].n);

beforeAll(async () => {
  const role = t.role('idem');
  await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await t.query('SELECT df.grant_usage($1)', [role]);
  await t.superuser.query(`GRANT ${role} TO ${OWNER}`);
  [{ t: otherToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', role]);
  app = createApp({ db: t.db, staticTokens: [{ token: TOKEN, role: OWNER }], onReady: (id) => void readied.push(id) });
  call = client(app);
});

describe('POST /v1/instances with Idempotency-Key', () => {
  it('a repeat returns the first answer (status, body, Location) and starts nothing', async () => {
    readied = [];
    const body = { workflow: `'SELECT 1'`, label: 'repeat' };
    const first = await post('/v1/instances', body, 'key-repeat');
    const second = await post('/v1/instances', body, 'key-repeat');
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    const [a, b] = [await first.json(), await second.json()];
    expect(b).toEqual(a);
    expect(second.headers.get('Location')).toBe(`/v1/instances/${a.instance_id}`);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    expect(second.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await count('repeat')).toBe(1);
    expect(readied).toEqual([a.instance_id]);
    // Without a key every POST starts an instance.
    await post('/v1/instances', body);
    expect(await count('repeat')).toBe(2);
  });

  it('the same key with a different body is a 422 idempotency_key_reused', async () => {
    expect((await post('/v1/instances', { workflow: `'SELECT 1'`, label: 'reused' }, 'key-reused')).status).toBe(201);
    const r = await post('/v1/instances', { workflow: `'SELECT 2'`, label: 'reused' }, 'key-reused');
    expect(r.status).toBe(422);
    expect((await r.json()).error.code).toBe('idempotency_key_reused');
    expect(await count('reused')).toBe(1);
  });

  it('keys are per role', async () => {
    const body = { workflow: `'SELECT 1'`, label: 'per-role' };
    const a = await (await post('/v1/instances', body, 'key-role')).json();
    const b = await (await post('/v1/instances', body, 'key-role', otherToken)).json();
    expect(a.instance_id).not.toBe(b.instance_id);
    expect(await count('per-role')).toBe(2);
  });

  it('a malformed key is a 400', async () => {
    const r = await post('/v1/instances', { workflow: `'SELECT 1'` }, 'has space');
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('invalid_idempotency_key');
  });

  it('a failed start stores nothing: the retry with the key may start', async () => {
    const bad = await post('/v1/instances', { workflow: `'SELECT 1' ~> nonsense`, label: 'retry-bad' }, 'key-bad');
    expect(bad.status).toBe(422);
    expect((await t.query(`SELECT count(*)::int AS n FROM df._idempotency_keys WHERE key = 'key-bad'`))[0].n).toBe(0);
  });

  it('identical requests sent at once start one instance', async () => {
    const body = { workflow: `'SELECT 1'`, label: 'concurrent' };
    const answers = await Promise.all(Array.from({ length: 8 }, () => post('/v1/instances', body, 'key-concurrent')));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(new Set(bodies.map((b) => b.instance_id)).size).toBe(1);
    expect(answers.filter((r) => r.headers.get('Idempotent-Replayed') === 'true')).toHaveLength(7);
    expect(await count('concurrent')).toBe(1);
  });

  it('after 24 hours the key starts again, and the prune deletes dead keys', async () => {
    const body = { workflow: `'SELECT 1'`, label: 'expired' };
    await post('/v1/instances', body, 'key-expired');
    await t.query(`UPDATE df._idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'key-expired'`);
    const again = await post('/v1/instances', body, 'key-expired');
    expect(again.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await count('expired')).toBe(2);
    await t.query(`UPDATE df._idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'key-expired'`);
    const c = await t.owner.connect();
    try {
      await pruneHistory(c as never, { retentionDays: null, keep: 10_000, batch: 100 });
    } finally {
      c.release();
    }
    const left = await t.query(`SELECT key FROM df._idempotency_keys WHERE key IN ('key-expired', 'key-repeat') ORDER BY key`);
    expect(left).toEqual([{ key: 'key-repeat' }]);
  });
});

describe('POST /v1/workflows/{name}/instances with Idempotency-Key', () => {
  it('a repeat returns the first answer; another body is a 422', async () => {
    expect((await call('POST', '/v1/workflows', { token: TOKEN, body: { name: 'idem.flow', workflow: `'SELECT 1'` } })).status).toBe(201);
    const body = { input: { n: 1 }, label: 'by-name' };
    const [a, b] = await Promise.all([post('/v1/workflows/idem.flow/instances', body, 'wf-key'), post('/v1/workflows/idem.flow/instances', body, 'wf-key')]);
    expect(await a.json()).toEqual(await b.json());
    expect(await count('by-name')).toBe(1);
    const other = await post('/v1/workflows/idem.flow/instances', { input: { n: 2 }, label: 'by-name' }, 'wf-key');
    expect(other.status).toBe(422);
    // The key belongs to the request it first came with: the other start route with it is a 422 too.
    expect((await post('/v1/instances', { workflow: `'SELECT 1'`, label: 'by-name' }, 'wf-key')).status).toBe(422);
  });
});
