/**
 * The web dashboard in a real browser (Chromium via playwright-core) against the Node API server that
 * `npm start` serves, on this file's clone database. The engine is driven by hand (drain) between
 * assertions; the page is awaited with Playwright's bounded auto-waiting, never a sleep. Screenshots
 * land in docs/images/ (docs/dashboard.md shows them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Page } from 'playwright-core';
import { silentLogger } from '../../src/log.ts';
import { startApiServer, type ApiServer } from '../../src/runtime/node/serve.ts';
import { asRole, useTestDb } from '../helpers/db.ts';
import { engineFor, later, start } from '../helpers/engine.ts';
import { launch, signIn, skipMessage, type Browser } from './browser.ts';

const skip = skipMessage();
if (skip) console.warn(skip);

const t = useTestDb();
const IMAGES = 'docs/images';
/** docs/images is rewritten only on request (PGFLARE_SCREENSHOTS=1), so a test run leaves the tree clean. */
const shoot = (p: { screenshot(o: { path: string; fullPage: boolean }): Promise<unknown> }, name: string, fullPage = true) =>
  process.env.PGFLARE_SCREENSHOTS === '1' ? p.screenshot({ path: `${IMAGES}/${name}`, fullPage }) : Promise.resolve();
let server: ApiServer;
let browser: Browser;
let page: Page;
let ownerToken: string, aliceToken: string, alice: string;
const drain = () => engineFor(t).drain();
const status = (p: Page, s: string) => p.locator(`#live[data-status="${s}"]`).waitFor();

describe.skipIf(!!skip)('dashboard (Node server, Chromium)', () => {
  beforeAll(async () => {
    alice = t.role('alice');
    await t.superuser.query(`CREATE ROLE ${alice} LOGIN PASSWORD 'pw'`);
    await t.query('SELECT df.grant_usage($1)', [alice]);
    await t.superuser.query(`GRANT ${alice} TO ${inject('pg').owner}`);
    [{ t: ownerToken }] = await t.query('SELECT df.create_api_token($1) AS t', ['owner']);
    [{ t: aliceToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['ui', alice]);
    server = (await startApiServer({ databaseUrl: t.url(), log: silentLogger, defaultPort: 0, defaultHost: '127.0.0.1', env: {} }))!;
    browser = await launch();
    page = await browser.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('refuses a wrong token, then signs in with a right one', async () => {
    await page.goto(`${server.url}/ui/instances/x`);
    await page.locator('input[name=token]').waitFor(); // not signed in: the login form
    await page.locator('input[name=token]').fill('pgf_not-a-real-token');
    await page.locator('form[action="/ui/login"] button').click();
    await page.getByRole('alert').filter({ hasText: 'Token refused' }).waitFor();
    expect((await page.context().cookies()).filter((c) => c.name === 'pgflare_token')).toEqual([]);
    await signIn(page, server.url, ownerToken);
    const [cookie] = (await page.context().cookies()).filter((c) => c.name === 'pgflare_token');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });
  });

  it('shows a run going from running to completed without a reload', async () => {
    const id = await start(t, `df.wait_for_signal('go') ~> 'SELECT 42 AS answer'`, 'live-run');
    await drain();
    await page.goto(`${server.url}/ui/instances/${id}`);
    await status(page, 'running');
    await page.evaluate(() => ((window as any).__same_page = true));
    await shoot(page, 'dashboard-instance-running.png');
    await t.query(`SELECT df.signal($1, 'go', '{"by":"test"}')`, [id]);
    await drain();
    await status(page, 'completed');
    expect(await page.evaluate(() => (window as any).__same_page)).toBe(true);
    await expect(page.getByRole('button', { name: 'Cancel' }).count()).resolves.toBe(0); // finished: no more cancel
    await page.locator('#live li[data-status="completed"] > pre', { hasText: 'SELECT 42 AS answer' }).waitFor();
    await shoot(page, 'dashboard-instance.png');
  });

  it('shows a failure with its SQLSTATE', async () => {
    const id = await start(t, `'SELECT 1/0'`, 'divide');
    await drain();
    await page.goto(`${server.url}/ui/instances/${id}`);
    await status(page, 'failed');
    await page.locator('#live li[data-status="failed"]', { hasText: 'division by zero' }).first().waitFor();
    // The page shows the SQLSTATE from the API's structured `error`.
    const api = await (await fetch(`${server.url}/v1/instances/${id}`, { headers: { Authorization: `Bearer ${ownerToken}` } })).json();
    expect(api.error.code).toBe('22012');
    await page.locator('#error', { hasText: '22012' }).waitFor();
    await shoot(page, 'dashboard-failed.png');
  });

  it('resumes a failed run from the instance page; the completed step is not re-run', async () => {
    await t.query('CREATE TABLE ui_effects (n int); CREATE TABLE ui_fix (x int)');
    const id = await start(t, `'INSERT INTO ui_effects VALUES (1)' ~> 'SELECT 10 / (SELECT count(*) FROM ui_fix) AS q'`, 'to-resume');
    await drain();
    await page.goto(`${server.url}/ui/instances/${id}`);
    await status(page, 'failed');
    await t.query('INSERT INTO ui_fix VALUES (1)'); // the cause, fixed
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('status').filter({ hasText: 'Resumed' }).waitFor();
    await drain();
    await status(page, 'completed'); // live again after the resume
    await page.locator('#live pre', { hasText: '"q": 10' }).first().waitFor();
    expect((await t.query('SELECT count(*)::int AS n FROM ui_effects'))[0].n).toBe(1);
  });

  it('cancels from the instance page', async () => {
    const id = await start(t, `df.wait_for_signal('never')`, 'to-cancel');
    await drain();
    await page.goto(`${server.url}/ui/instances/${id}`);
    await status(page, 'running');
    await page.locator('input[name=reason]').fill('stopped from the dashboard');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('status').filter({ hasText: 'Cancel requested' }).waitFor();
    await drain();
    expect((await t.query('SELECT status FROM df.instances WHERE id = $1', [id]))[0].status).toBe('cancelled');
    await page.reload();
    await status(page, 'cancelled');
  });

  it('signals from the instance page, with JSON data', async () => {
    const id = await start(t, `df.wait_for_signal('approve')`, 'to-signal');
    await drain();
    await page.goto(`${server.url}/ui/instances/${id}`);
    await status(page, 'running');
    await page.locator('input[name=name]').fill('approve');
    await page.locator('input[name=data]').fill('{"approved_by":"ada"}');
    await page.getByRole('button', { name: 'Signal' }).click();
    await page.getByRole('status').filter({ hasText: 'Signal "approve" sent' }).waitFor();
    await drain();
    await status(page, 'completed'); // the live poll picks up the run the signal woke
    await page.locator('#live', { hasText: 'approved_by' }).waitFor();
    // Bad JSON never reaches the API.
    const other = await start(t, `df.wait_for_signal('x')`);
    await drain();
    await page.goto(`${server.url}/ui/instances/${other}`);
    await page.locator('input[name=name]').fill('x');
    await page.locator('input[name=data]').fill('{not json');
    await page.getByRole('button', { name: 'Signal' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid JSON' }).waitFor();
    expect(await t.query('SELECT 1 FROM df.signals WHERE instance_id = $1', [other]).catch(() => [])).toEqual([]);
  });

  it('lists with status and label filters and pages by cursor', async () => {
    for (let i = 0; i < 3; i++) await start(t, `'SELECT ${i}'`, 'paged');
    await drain();
    await page.goto(`${server.url}/ui?label=paged&limit=2`);
    await expect(page.locator('tr[data-instance]').count()).resolves.toBe(2);
    await page.locator('a[rel=next]').click();
    await page.waitForURL(/cursor=/);
    await expect(page.locator('tr[data-instance]').count()).resolves.toBe(1);
    await expect(page.locator('a[rel=next]').count()).resolves.toBe(0);
    await page.goto(`${server.url}/ui`);
    await page.locator('select[name=status]').selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/status=failed/);
    const shown = await page.locator('tr[data-instance] .badge').allTextContents();
    expect(shown.length).toBeGreaterThan(0);
    expect(new Set(shown)).toEqual(new Set(['failed']));
    // "Created before" a time before everything: nothing.
    await page.goto(`${server.url}/ui?before=2000-01-01T00:00`);
    await page.getByText('No instances match.').waitFor();
    await page.goto(`${server.url}/ui`);
    await shoot(page, 'dashboard-list.png');
  });

  it('is usable on a phone', async () => {
    const phone = await browser.newPage({ width: 390, height: 844 });
    await phone.goto(`${server.url}/ui`);
    await phone.locator('tr[data-instance]').first().waitFor();
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await shoot(phone, 'dashboard-mobile.png', false);
    await phone.close();
  });

  it("shows a role only its own instances, as the API does", async () => {
    const [{ id: mine }] = await asRole(t, alice, `SELECT df.start('SELECT 7', 'alices') AS id`);
    const [{ id: theirs }] = await t.query(`SELECT df.start('SELECT 8', 'owners') AS id`);
    const ctx = await browser.context.browser()?.newContext();
    const other = ctx ? await ctx.newPage() : await browser.newPage();
    if (!ctx) await other.context().clearCookies();
    await signIn(other, server.url, aliceToken);
    await other.locator(`tr[data-instance="${mine}"]`).waitFor();
    await expect(other.locator(`tr[data-instance="${theirs}"]`).count()).resolves.toBe(0);
    await expect(other.locator('tr[data-instance]').count()).resolves.toBe(1);
    const res = await other.goto(`${server.url}/ui/instances/${theirs}`);
    expect(res?.status()).toBe(404);
    await other.getByRole('alert').filter({ hasText: 'not found' }).waitFor();
    await other.close();
    await ctx?.close();
  });

  it('refuses a cross-site form post (Origin check)', async () => {
    const id = await start(t, `df.wait_for_signal('never')`);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'pgflare_token')!;
    const r = await fetch(`${server.url}/ui/instances/${id}/cancel`, {
      method: 'POST',
      headers: { Cookie: `pgflare_token=${cookie.value}`, Origin: 'https://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'reason=x',
      redirect: 'manual',
    });
    expect(r.status).toBe(403);
    expect((await t.query('SELECT status FROM df.instances WHERE id = $1', [id]))[0].status).not.toBe('cancelled');
  });

  it('shows named workflows, schedules (pause/resume) and webhooks', async () => {
    await t.query(`SELECT df.define_workflow('nightly', $1, 'first')`, [`'SELECT 1'`]);
    await t.query(`SELECT df.define_workflow('nightly', $1, 'second')`, [`'SELECT 2'`]);
    await t.query(`SELECT df.create_schedule('every-hour', 'nightly', '0 * * * *')`);
    await page.goto(`${server.url}/ui/workflows/nightly`);
    await page.getByText('nightly: versions').waitFor();
    await page.getByRole('cell', { name: 'v2' }).first().waitFor();
    await page.goto(`${server.url}/ui/schedules`);
    const row = page.locator('tr[data-schedule="every-hour"]');
    await row.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('status').filter({ hasText: 'paused' }).waitFor();
    expect((await t.query(`SELECT paused FROM df.list_schedules() WHERE name = 'every-hour'`))[0].paused).toBe(true);
    await row.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('status').filter({ hasText: 'resumed' }).waitFor();
    expect((await t.query(`SELECT paused FROM df.list_schedules() WHERE name = 'every-hour'`))[0].paused).toBe(false);
    await page.goto(`${server.url}/ui/hooks`);
    await page.getByText('No webhooks.').waitFor();
  });

  it('pages workflows, schedules and webhooks by cursor, as it pages instances', async () => {
    for (const n of ['pg_a', 'pg_b', 'pg_c']) {
      await t.query(`SELECT df.define_workflow($1, $2)`, [n, `'SELECT 1'`]);
      await t.query(`SELECT df.create_schedule($1, $2, '0 * * * *')`, [`${n}_hourly`, n]);
    }
    for (const n of ['hook_a', 'hook_b', 'hook_c']) await t.query(`SELECT df.create_hook($1, 'pg_a', 'hmac')`, [n]);
    const wf = (await t.query<{ n: number }>('SELECT count(DISTINCT name)::int AS n FROM df.workflows'))[0]!.n;
    const sc = (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM df.list_schedules()'))[0]!.n;
    const hk = (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM df.list_hooks()'))[0]!.n;
    // Every page but the last is full; following "Next page" to the end shows each row once.
    for (const [path, rows, total] of [
      ['/ui/workflows/pg_b', 'a[href^="/ui/workflows/"]', wf],
      ['/ui/schedules', 'tr[data-schedule]', sc],
      ['/ui/hooks', 'a[href^="/ui/hooks/"]', hk],
    ] as const) {
      await page.goto(`${server.url}${path}?limit=2`);
      const seen: string[] = [];
      let pages = 0;
      for (;;) {
        pages++;
        const names = await page.locator(`table >> nth=0 >> ${rows}`).evaluateAll((els) => els.map((e) => e.textContent ?? ''));
        seen.push(...names);
        if ((await page.locator('a[rel=next]').count()) === 0) break;
        expect(names).toHaveLength(2);
        await page.locator('a[rel=next]').click();
        await page.waitForURL(/cursor=/);
      }
      expect(total).toBeGreaterThan(2);
      expect(pages).toBe(Math.ceil(total / 2));
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      expect(new URL(await page.locator('.pager a', { hasText: 'First page' }).getAttribute('href') ?? '', server.url).pathname).toBe(path);
    }
    await page.goto(`${server.url}/ui/workflows/pg_b?limit=2`);
    await page.getByText('pg_b: versions').waitFor();
  });

  it('pages an instance\'s events oldest first, and the live part keeps the page it is on', async () => {
    // Five failed attempts and the failure: more events than one page of 2.
    const id = await start(t, `df.retry('SELECT 1 / 0 AS x', 5, 0)`);
    await drain();
    await engineFor(t).drain({ now: later(1) });
    const ids = (await t.query<{ id: string }>(`SELECT id::text FROM df.events WHERE instance_id = $1 ORDER BY id`, [id])).map((r) => r.id);
    expect(ids.length).toBeGreaterThan(4);
    await page.goto(`${server.url}/ui/instances/${id}?limit=2`);
    await status(page, 'failed');
    const seen: string[] = [];
    let pages = 0;
    for (;;) {
      pages++;
      const shown = await page.locator('#live table tbody tr td[data-h="#"]').evaluateAll((els) => els.map((e) => e.textContent ?? ''));
      seen.push(...shown);
      if ((await page.locator('#live a[rel=next]').count()) === 0) break;
      expect(shown).toHaveLength(2);
      await page.locator('#live a[rel=next]').click();
      await page.waitForURL(/cursor=/);
    }
    expect(seen).toEqual(ids);
    expect(pages).toBe(Math.ceil(ids.length / 2));
    // The live fragment answers for the page in the address, not the first one.
    const url = new URL(page.url());
    const live = await page.request.get(`${server.url}${url.pathname}/live${url.search}`);
    expect(await live.text()).toContain(`>${ids[ids.length - 1]}</td>`);
    expect(await live.text()).not.toContain(`>${ids[0]}</td>`);
  });

  it('signs out', async () => {
    await page.goto(`${server.url}/ui`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('input[name=token]').waitFor();
    expect((await page.context().cookies()).filter((c) => c.name === 'pgflare_token')).toEqual([]);
    await page.goto(`${server.url}/ui`);
    await page.locator('input[name=token]').waitFor();
  });
});
