/**
 * REST inputs PostgreSQL cannot hold (U+0000 in text or JSON) or that break a size limit are 4xx JSON
 * errors on every route, never a 500, and leave nothing written. Found by the fuzz suite
 * (GET /v1/instances?label=%00 was a 500).
 */
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { silentLogger } from '../../src/log.ts';
import { useTestDb } from '../helpers/db.ts';
import { start } from '../helpers/engine.ts';

const t = useTestDb();
const TOKEN = 'hostile-static-token-0123456789abcdef';
const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };

async function call(method: string, path: string, body?: string) {
  const app = createApp({ db: t.db, log: silentLogger, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] });
  const res = await app.request(path, { method, headers: auth, body });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

const signals = async () => (await t.query('SELECT count(*)::int AS n FROM df.signals'))[0].n as number;

describe('hostile REST input is a 4xx, not a 500', () => {
  it('a NUL in a list query parameter', async () => {
    expect(await call('GET', '/v1/instances?label=%00')).toMatchObject({ status: 400, body: { error: { code: 'invalid_input' } } });
  });

  it('a NUL in a signal name or a cancel reason; nothing written', async () => {
    const id = await start(t, `df.wait_for_signal('go')`);
    const before = await signals();
    expect(await call('POST', `/v1/instances/${id}/signals/a%00b`, '{}')).toMatchObject({ status: 400, body: { error: { code: 'invalid_input' } } });
    expect(await call('POST', `/v1/instances/${id}/cancel`, JSON.stringify({ reason: 'x\u0000y' }))).toMatchObject({ status: 400, body: { error: { code: 'invalid_input' } } });
    expect(await signals()).toBe(before);
    expect((await t.query('SELECT status FROM df.instances WHERE id = $1', [id]))[0].status).not.toBe('cancelled');
  });

  it('signal data with \\u0000, which jsonb refuses, is kept as text (pg_durable: non-JSON data is a JSON string)', async () => {
    const id = await start(t, `df.wait_for_signal('go')`);
    expect(await call('POST', `/v1/instances/${id}/signals/go`, '{"v":"\\u0000"}')).toMatchObject({ status: 200 });
    const [row] = await t.query('SELECT payload #>> \'{}\' AS text FROM df.signals WHERE instance_id = $1', [id]);
    expect(row.text).toBe('{"v":"\\u0000"}');
  });

  it('signal data over pgflare.max_signal_bytes is a 413 naming the limit, and no signal is stored', async () => {
    const id = await start(t, `df.wait_for_signal('go')`);
    const before = await signals();
    const r = await call('POST', `/v1/instances/${id}/signals/go`, JSON.stringify({ v: 'z'.repeat(1_050_000) }));
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('pgflare.max_signal_bytes') });
    expect(await signals()).toBe(before);
  });
});
