/**
 * A signed webhook through the real Worker (workerd via Miniflare, Neon driver through the ws proxy):
 * Web Crypto HMAC in workerd, 202 with the instance id, the instance's step run after the response in the
 * request's waitUntil reading $input (no queue message); a redelivery starts nothing new.
 */
import { createHmac } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { eventually, useWorkerd } from './harness.ts';

const t = useTestDb();
const w = useWorkerd(t);
const SECRET = 'workerd-hook-secret-0123456789';

beforeAll(async () => {
  await t.query('CREATE TABLE pushes (ref text NOT NULL)');
  await t.query(`SELECT df.define_workflow('on_push', 'INSERT INTO pushes (ref) VALUES ($input.ref) RETURNING ref')`);
  await t.query(`SELECT df.create_hook('gh', 'on_push', 'github', $1)`, [SECRET]);
});

const post = (body: string, headers: Record<string, string>) =>
  w.fetch('/hooks/gh', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('webhooks on the Workers runtime', () => {
  it('a signed delivery starts the workflow, whose step runs after the response in the request\'s waitUntil', async () => {
    await w.sent();
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const headers = { 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, 'x-github-delivery': 'wd-1' };
    const res = await post(body, headers);
    expect(res.status).toBe(202);
    const { instance_id: id } = (await res.json()) as { instance_id: string };

    await eventually(async () => (await outcome(t, id)).status === 'completed', `instance ${id} completed`);
    expect((await w.sent()).filter((m) => m.body.instanceId === id)).toEqual([]);
    expect(await t.query('SELECT ref FROM pushes')).toEqual([{ ref: 'refs/heads/main' }]);

    const again = await post(body, headers);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ instance_id: id, redelivered: true });
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE label = 'hook:gh'`)).toEqual([{ n: 1 }]);
  });

  it('a bad signature is a 401 JSON error', async () => {
    const res = await post('{}', { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 'invalid_signature', message: 'X-Hub-Signature-256 does not match the body' } });
  });
});
