/** GET /healthz reports the newest worker heartbeat, and with a threshold is a 503 without a recent one. */
import { beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { heartbeat } from '../../src/engine/maintenance.ts';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();
const health = async (maxAge?: number) => {
  const res = await createApp({ db: t.db, healthWorkerMaxAgeS: maxAge }).request('/healthz');
  return { status: res.status, body: (await res.json()) as any };
};

beforeEach(async () => {
  await t.query('DELETE FROM df._worker_epoch');
});

describe('GET /healthz', () => {
  it('is a 503 when no worker ever beat, and says so', async () => {
    expect(await health(180)).toEqual({
      status: 503,
      body: { ok: false, database: 'ok', worker: { seen: false, last_seen_at: null, age_s: null, max_age_s: 180 } },
    });
  });

  it('is a 200 with a heartbeat just now (the Node worker heartbeat)', async () => {
    await t.db.withClient((c) => heartbeat(c, '00000000-0000-4000-8000-000000000001'));
    const h = await health(180);
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ ok: true, database: 'ok', worker: { seen: true, max_age_s: 180 } });
    expect(h.body.worker.age_s).toBeLessThanOrEqual(5);
    expect(Date.parse(h.body.worker.last_seen_at)).not.toBeNaN();
  });

  it('is a 503 when the newest heartbeat is older than the threshold (backdated)', async () => {
    await t.query(`INSERT INTO df._worker_epoch (epoch_id, last_seen_at) VALUES (gen_random_uuid(), now() - interval '4 minutes')`);
    const h = await health(180);
    expect(h.status).toBe(503);
    expect(h.body.worker).toMatchObject({ seen: false, max_age_s: 180 });
    expect(h.body.worker.age_s).toBeGreaterThanOrEqual(240);
    // Two minutes old is within three: the Workers cron beats once a minute.
    await t.query(`UPDATE df._worker_epoch SET last_seen_at = now() - interval '2 minutes'`);
    expect((await health(180)).status).toBe(200);
  });

  it('without a threshold reports the worker but answers 200', async () => {
    const h = await health(undefined);
    expect(h).toMatchObject({ status: 200, body: { ok: true, worker: { seen: false, max_age_s: null } } });
  });
});
