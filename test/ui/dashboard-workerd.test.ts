/**
 * The same dashboard served by the Worker in real workerd (Miniflare): Chromium signs in, lists and
 * opens an instance that goes from running to completed while the page is open. Chromium reaches
 * workerd through a small local HTTP server that hands each request to Miniflare's dispatchFetch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Page } from 'playwright-core';
import { serveFetch, type ApiServer } from '../../src/runtime/node/serve.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, start } from '../helpers/engine.ts';
import { useWorkerd } from '../workerd/harness.ts';
import { launch, signIn, skipMessage, type Browser } from './browser.ts';

const skip = skipMessage();
const TOKEN = 'dashboard-workerd-token-0123456789';
const t = useTestDb();
const w = useWorkerd(t, { bindings: { PGFLARE_API_TOKENS: `${TOKEN}=${inject('pg').owner}` } });
let server: ApiServer;
let browser: Browser;
let page: Page;
const drain = () => engineFor(t).drain();

describe.skipIf(!!skip)('dashboard (Worker in workerd, Chromium)', () => {
  beforeAll(async () => {
    server = await serveFetch(
      async (req) => {
        const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await req.arrayBuffer();
        const res = await w.mf.dispatchFetch(req.url, { method: req.method, headers: req.headers as never, body, redirect: 'manual' } as never);
        // dispatchFetch has already decoded the body: drop the headers that describe the encoded one.
        const headers = new Headers(res.headers as never);
        headers.delete('content-encoding');
        headers.delete('content-length');
        return new Response(res.body as never, { status: res.status, headers });
      },
      { port: 0 },
    );
    browser = await launch();
    page = await browser.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('signs in, lists, and shows an instance completing live', async () => {
    const id = await start(t, `df.wait_for_signal('go') ~> 'SELECT 1 AS done'`, 'on-workers');
    await drain();

    await signIn(page, server.url, TOKEN);
    await page.locator(`tr[data-instance="${id}"]`, { hasText: 'on-workers' }).waitFor();
    await page.locator(`tr[data-instance="${id}"] a`).click();
    await page.locator('#live[data-status="running"]').waitFor();
    await page.evaluate(() => ((window as any).__same_page = true));
    await t.query(`SELECT df.signal($1, 'go', '{}')`, [id]);
    await drain();
    await page.locator('#live[data-status="completed"]').waitFor();
    expect(await page.evaluate(() => (window as any).__same_page)).toBe(true);
    await page.locator('#live pre', { hasText: 'SELECT 1 AS done' }).waitFor();
  });

  it('refuses a wrong token', async () => {
    const other = await browser.newPage();
    await other.context().clearCookies();
    await other.goto(`${server.url}/ui/login`);
    await other.locator('input[name=token]').fill('dashboard-wrong-token-0123456789');
    await other.locator('form[action="/ui/login"] button').click();
    await other.getByRole('alert').filter({ hasText: 'Token refused' }).waitFor();
    await other.close();
  });
});
