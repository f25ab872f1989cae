/**
 * Cursor pagination of every list route: workflows, schedules, hooks, a hook's deliveries, an
 * instance's events (instances: api.test.ts and test/sql/monitoring/list-pagination.test.ts). Each is
 * paged through with more rows than `limit` while rows are inserted between pages: every row that was
 * there at the start is seen exactly once, in the list's order, and a cursor is refused by another list.
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const TOKEN = 'static-token-for-paging-0123456789';
let call: ReturnType<typeof client>;
const byteOrder = (a: string, b: string) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0);

/** Every page of `path` (limit `limit`), calling `between` after each page; the rows of `key` and the page sizes. */
async function walk(path: string, key: string, limit: number, between: (page: number) => Promise<void> = async () => {}) {
  const rows: any[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const r: any = await call('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { token: TOKEN });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.next_cursor === null || /^[0-9a-f]+$/.test(r.body.next_cursor)).toBe(true);
    rows.push(...r.body[key]);
    sizes.push(r.body[key].length);
    cursor = r.body.next_cursor;
    if (!cursor) return { rows, sizes };
    await between(page);
  }
  throw new Error('more than 100 pages');
}

beforeAll(async () => {
  call = client(createApp({ db: t.db, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] }));
});

const define = async (name: string, version = 1) => {
  for (let v = 0; v < version; v++) {
    const r = await call('POST', '/v1/workflows', { token: TOKEN, body: { name, workflow: `'SELECT ${v}'` } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
};

describe('GET /v1/workflows', () => {
  it('pages by name through more rows than the limit; names added between pages neither repeat nor hide one', async () => {
    // Mixed case and digits: byte order (not the database's collation) is the order.
    const names = ['b-2', 'B-1', 'a.1', 'c:3', 'a_0', 'Z9', 'd4', 'e5', 'a-9'];
    for (const n of names) await define(n, n === 'd4' ? 3 : 1);
    let added = 0;
    const { rows, sizes } = await walk('/v1/workflows', 'workflows', 2, async () => {
      // One name before every cursor, one after: the first is not on a later page, the second is.
      await define(`0-before-${added}`);
      await define(`zz-after-${added++}`);
    });
    const got = rows.map((w) => w.name);
    expect(new Set(got).size).toBe(got.length);
    expect(got.filter((n) => names.includes(n))).toEqual([...names].sort(byteOrder));
    expect(got.filter((n) => n.startsWith('0-before-'))).toEqual([]);
    expect(got.filter((n) => n.startsWith('zz-after-'))).toEqual(Array.from({ length: added }, (_, i) => `zz-after-${i}`));
    expect(sizes.slice(0, -1).every((n) => n === 2)).toBe(true);
    // One row per name, its latest version.
    expect(rows.find((w) => w.name === 'd4')).toMatchObject({ latest_version: 3 });
  });

  it('the last page has a null next_cursor, also when it is exactly full', async () => {
    const all = (await call('GET', '/v1/workflows?limit=1000', { token: TOKEN })).body;
    expect(all.next_cursor).toBeNull();
    const exact = (await call('GET', `/v1/workflows?limit=${all.workflows.length}`, { token: TOKEN })).body;
    expect(exact).toEqual(all);
  });
});

describe('GET /v1/schedules and GET /v1/hooks', () => {
  beforeAll(async () => {
    await define('sched-target');
    for (let i = 0; i < 7; i++) {
      expect((await call('POST', '/v1/schedules', { token: TOKEN, body: { name: `s${i}`, workflow: 'sched-target', cron: '0 3 * * *' } })).status).toBe(201);
      expect((await call('POST', '/v1/hooks', { token: TOKEN, body: { name: `h${i}`, workflow: 'sched-target', scheme: 'hmac' } })).status).toBe(201);
    }
  });

  it('schedules: every one once, by name, with new ones after the cursor on later pages', async () => {
    let n = 0;
    const { rows, sizes } = await walk('/v1/schedules', 'schedules', 3, async () => {
      await call('POST', '/v1/schedules', { token: TOKEN, body: { name: `t${n++}`, workflow: 'sched-target', cron: '0 3 * * *' } });
    });
    expect(rows.map((s) => s.name)).toEqual([...['s0', 's1', 's2', 's3', 's4', 's5', 's6'], ...Array.from({ length: n }, (_, i) => `t${i}`)]);
    expect(sizes[0]).toBe(3);
  });

  it('hooks: every one once, by name, while one is deleted between pages', async () => {
    const { rows } = await walk('/v1/hooks', 'hooks', 2, async (page) => {
      if (page === 0) expect((await call('DELETE', '/v1/hooks/h5', { token: TOKEN })).status).toBe(200);
    });
    expect(rows.map((h) => h.name)).toEqual(['h0', 'h1', 'h2', 'h3', 'h4', 'h6']);
    expect(rows[0]).not.toHaveProperty('secret');
  });
});

describe('GET /v1/hooks/{name}/deliveries', () => {
  it('newest first, every delivery once, while new ones arrive between pages', async () => {
    const [{ id: hookId }] = await t.query(`SELECT id FROM df._hooks WHERE name = 'h0'`);
    const deliver = async (n: number, at: string) => {
      const [{ id }] = await t.query(`SELECT df.start('SELECT 1') AS id`);
      await t.query(`INSERT INTO df.hook_deliveries (hook_id, delivery_id, instance_id, received_at) VALUES ($1, $2, $3, $4)`, [hookId, `d${n}`, id, at]);
    };
    // Five of them received at the same microsecond: the instance id breaks the tie.
    for (let i = 0; i < 5; i++) await deliver(i, '2026-01-01T00:00:00.123456Z');
    for (let i = 5; i < 9; i++) await deliver(i, `2026-01-0${i - 3}T00:00:00Z`);
    const before = (await t.query(`SELECT instance_id FROM df.hook_deliveries WHERE hook_id = $1 ORDER BY received_at DESC, instance_id COLLATE "C" DESC`, [hookId])).map(
      (r) => r.instance_id,
    );
    let n = 100;
    const { rows } = await walk('/v1/hooks/h0/deliveries', 'deliveries', 2, () => deliver(n++, new Date().toISOString()));
    expect(rows.map((d) => d.instance_id)).toEqual(before);
    expect(rows[0]).toEqual({ delivery_id: 'd8', instance_id: expect.any(String), received_at: expect.any(String) });
    expect((await call('GET', '/v1/hooks/nope/deliveries', { token: TOKEN })).status).toBe(404);
  });
});

describe('GET /v1/instances/{instance_id}/events', () => {
  it('oldest first, every event once, events appended between pages on later pages', async () => {
    const [{ id }] = await t.query(`SELECT df.start('SELECT 1/0') AS id`);
    await engineFor(t).drain();
    const note = (detail: string) =>
      t.query(`INSERT INTO df.events (instance_id, node_id, kind, detail, submitted_by) SELECT id, NULL, 'note', $2, submitted_by FROM df.instances WHERE id = $1`, [id, detail]);
    for (let i = 0; i < 4; i++) await note(`before ${i}`);
    const all = (await call('GET', `/v1/instances/${id}/events?limit=1000`, { token: TOKEN })).body.events;
    expect(all.length).toBeGreaterThan(4);
    expect(all[0].kind).not.toBe('note');
    let extra = 0;
    const { rows, sizes } = await walk(`/v1/instances/${id}/events`, 'events', 2, async () => {
      await note(`extra ${extra++}`);
    });
    const ids = rows.map((e) => e.event_id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(rows.slice(0, all.length)).toEqual(all);
    expect(rows.slice(all.length).map((e) => e.detail)).toEqual(Array.from({ length: extra }, (_, i) => `extra ${i}`));
    expect(sizes[0]).toBe(2);
  });
});

describe('cursors', () => {
  it('a cursor of one list, or a made-up one, is a 400 invalid_query on another', async () => {
    const wf = (await call('GET', '/v1/workflows?limit=1', { token: TOKEN })).body.next_cursor;
    for (const path of ['/v1/schedules', '/v1/hooks', '/v1/hooks/h0/deliveries']) {
      expect(await call('GET', `${path}?cursor=${wf}`, { token: TOKEN }), path).toMatchObject({ status: 400, body: { error: { code: 'invalid_query' } } });
    }
    for (const bad of ['zz', 'abc', 'ff', 'c3']) {
      expect((await call('GET', `/v1/workflows?cursor=${bad}`, { token: TOKEN })).body.error.code, bad).toBe('invalid_query');
    }
    expect((await call('GET', '/v1/workflows?limit=0', { token: TOKEN })).body.error.code).toBe('invalid_query');
    expect((await call('GET', '/v1/workflows?other=1', { token: TOKEN })).body.error.code).toBe('invalid_query');
  });
});
