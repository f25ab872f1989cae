/**
 * Chromium for the dashboard tests, driven by playwright-core. Debian's chromium at /usr/bin/chromium
 * (`.ci/run` installs it when missing). Outside CI a machine without it skips the browser tests with a
 * message; in CI a missing browser fails them.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.PGFLARE_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

export function skipMessage(): string | undefined {
  if (HAVE_CHROMIUM) return undefined;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing and CI is set: the dashboard browser tests must run (.ci/run installs chromium)`);
  return `skipping the dashboard browser tests: ${CHROMIUM} is missing (apt-get install chromium)`;
}

export interface Browser {
  context: BrowserContext;
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

/** A fresh persistent profile (its own --user-data-dir), closed and removed by close(). */
export async function launch(): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'pgflare-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 900 },
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    async newPage(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      return page;
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Signs in through the form; resolves once the instances list shows. */
export async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/ui`);
  await page.locator('input[name=token]').fill(token);
  await page.locator('form[action="/ui/login"] button').click();
  await page.locator('h1', { hasText: 'Instances' }).waitFor();
}
