/**
 * The dashboard's pieces that need no browser: escaping, the Resume capability flag, the
 * "created before" cursor, and the Origin check. The browser tests are in test/ui/.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { instancePage } from './instances.ts';
import { createUi } from './routes.ts';

const failed = { instance_id: 'abcd1234', status: 'failed', label: '<script>alert(1)</script>', nodes: [] };
const render = async (resume: boolean) => String(await instancePage(failed, [], { first: '/ui/instances/x', next: null }, { resume }));

describe('instance page', () => {
  it('escapes what it shows', async () => {
    const page = await render(false);
    expect(page).not.toContain('<script>alert(1)');
    expect(page).toContain('&lt;script&gt;alert(1)');
  });

  it('shows Resume on a failed instance only when the API has the route (capability flag)', async () => {
    expect(await render(false)).not.toContain('/resume');
    expect(await render(true)).toContain('action="/ui/instances/abcd1234/resume"');
  });
});

describe('routes', () => {
  // A stand-in for the API app: these tests look at what the UI asks it, not at the database (the
  // browser tests run the real API on the real database).
  const calls: string[] = [];
  const app = new Hono().route(
    '/ui',
    createUi({
      api: async (path) => {
        calls.push(path);
        return Response.json({ instances: [], next_cursor: null });
      },
    }),
  );
  const signedIn = { Cookie: 'pgflare_token=tok-0123456789abcdef' };

  it('"created before" becomes the list cursor in df._list_cursor\'s format', async () => {
    calls.length = 0;
    expect((await app.request('/ui?before=2026-03-04T05:06', { headers: signedIn })).status).toBe(200);
    const cursor = new URL(calls[0]!, 'http://x').searchParams.get('cursor')!;
    expect(Buffer.from(cursor, 'hex').toString()).toBe('v1|2026-03-04T05:06:00.000000+00|0');
  });

  it('refuses a state-changing POST from another origin before calling the API', async () => {
    calls.length = 0;
    const post = (origin: string) =>
      app.request('http://dash.example/ui/instances/abcd1234/cancel', {
        method: 'POST',
        headers: { ...signedIn, Origin: origin, Host: 'dash.example', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'reason=x',
      });
    expect((await post('https://evil.example')).status).toBe(403);
    expect((await post('null')).status).toBe(403);
    expect(calls).toEqual([]);
    expect((await post('http://dash.example')).status).toBe(303);
    expect(calls).toEqual(['/v1/instances/abcd1234/cancel']);
  });

  it('sends a visitor without the cookie to the sign-in page', async () => {
    const r = await app.request('/ui/instances/abcd1234');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/ui/login');
  });
});
