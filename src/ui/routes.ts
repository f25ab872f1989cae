/**
 * The web dashboard (/ui): server-rendered pages over the API's own routes (see session.ts for why
 * and how the token is carried). Mounted by createApp (src/api/app.ts), so both runtimes serve it.
 */
import { Hono, type Context } from 'hono';
import { hooksPage, loginPage, schedulesPage, workflowsPage } from './catalog.ts';
import { instanceLive, instancePage, listPage, STATUSES, type ListFilters } from './instances.ts';
import { qs, type Pager } from './layout.ts';
import { apiMessage, callApi, dropToken, keepToken, sameOrigin, tokenOf, type ApiAnswer, type ApiFetch } from './session.ts';

export interface UiOptions {
  /** Calls the API app in-process. */
  api: ApiFetch;
  /** The API has POST /v1/instances/{instance_id}/resume: show the Resume button on failed instances. */
  resume?: boolean;
}

type UiEnv = { Variables: { token: string } };

const PAGE_SIZE = 50;
const ID = /^[A-Za-z0-9._:-]{1,200}$/;
const NAME = /^[A-Za-z0-9._-]{1,200}$/;

/** The page size a list asks for: `?limit=` when 1–200, else PAGE_SIZE. */
const pageLimit = (v: string | undefined) => (/^\d{1,3}$/.test(v ?? '') && Number(v) >= 1 && Number(v) <= 200 ? Number(v) : PAGE_SIZE);

/**
 * One page of a keyset-paged list route (/v1/workflows, /v1/schedules, /v1/hooks, an instance's events):
 * the API path for the `?cursor=`/`?limit=` of this request, and the pager links of the page at `base`
 * once it has answered.
 */
function pagedList(c: Context<UiEnv>, list: string, base: string) {
  const q = c.req.query();
  const limit = pageLimit(q.limit);
  const cursor = q.cursor && /^[0-9a-f]{2,512}$/.test(q.cursor) ? q.cursor : undefined;
  const size = limit === PAGE_SIZE ? undefined : String(limit);
  return {
    path: `/v1/${list}${qs({ limit: String(limit), cursor })}`,
    pager: (a: ApiAnswer): Pager => {
      const next = a.ok ? (a.body.next_cursor as string | null | undefined) : null;
      return { first: `${base}${qs({ limit: size })}`, next: next ? `${base}${qs({ limit: size, cursor: next })}` : null };
    },
  };
}

/** A datetime-local value (taken as UTC) or ISO time → ISO, or undefined when not a time. */
function isoTime(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** The list cursor (df._list_cursor's format) that starts a page just after `iso`: "created before". */
function cursorBefore(iso: string): string {
  const ts = iso.replace(/\.(\d{3})Z$/, '.$1000+00');
  return Array.from(new TextEncoder().encode(`v1|${ts}|0`), (b) => b.toString(16).padStart(2, '0')).join('');
}

const back = (path: string, key: 'msg' | 'err', text: string) => `${path}?${key}=${encodeURIComponent(text.slice(0, 300))}`;

export function createUi(opts: UiOptions): Hono<UiEnv> {
  const ui = new Hono<UiEnv>();
  const api = <T = any>(c: Context<UiEnv>, path: string, init?: { method?: string; body?: unknown }) =>
    callApi<T>(opts.api, c.get('token'), path, init);

  /** An API refusal of the token itself ends the session. */
  const signedOut = (c: Context<UiEnv>, a: ApiAnswer) => {
    if (a.status !== 401) return null;
    dropToken(c);
    return c.redirect('/ui/login', 303);
  };

  ui.get('/login', (c) => c.html(loginPage()));

  ui.post('/login', async (c) => {
    if (!sameOrigin(c)) return c.text('cross-site request refused', 403);
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    // The token is checked the way every page uses it: one API call.
    const a = token ? await callApi(opts.api, token, '/v1/instances?limit=1') : null;
    if (!a || !a.ok) return c.html(loginPage(a ? `Token refused (${apiMessage(a)})` : 'Enter a token'), a?.status === 403 ? 403 : 401);
    keepToken(c, token);
    return c.redirect('/ui', 303);
  });

  ui.post('/logout', (c) => {
    if (!sameOrigin(c)) return c.text('cross-site request refused', 403);
    dropToken(c);
    return c.redirect('/ui/login', 303);
  });

  // Everything else needs the session; every state-changing request must come from this site.
  ui.use('*', async (c, next) => {
    const token = tokenOf(c);
    if (!token) return c.redirect('/ui/login', 303);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !sameOrigin(c)) return c.text('cross-site request refused', 403);
    c.set('token', token);
    await next();
    c.header('Cache-Control', 'no-store');
  });

  ui.get('/', async (c) => {
    const q = c.req.query();
    const f: ListFilters = {
      status: (STATUSES as readonly string[]).includes(q.status ?? '') ? q.status : undefined,
      label: q.label?.trim() || undefined,
      since: isoTime(q.since),
      before: isoTime(q.before),
    };
    const cursor = q.cursor && /^[0-9a-f]{2,512}$/.test(q.cursor) ? q.cursor : f.before ? cursorBefore(f.before) : undefined;
    const limit = pageLimit(q.limit);
    const params = new URLSearchParams({ limit: String(limit) });
    if (f.status) params.set('status', f.status);
    if (f.label) params.set('label', f.label);
    if (cursor) params.set('cursor', cursor);
    const a = await api(c, `/v1/instances?${params}`);
    const out = signedOut(c, a);
    if (out) return out;
    if (!a.ok) return c.html(listPage(f, [], null, undefined, apiMessage(a)), a.status === 400 ? 400 : 502);
    let rows = (a.body.instances ?? []) as { created_at: string | null }[];
    let next: string | null = a.body.next_cursor ?? null;
    // "Since" needs no query of its own: pages are newest first, so the first older row ends the listing.
    if (f.since) {
      const since = Date.parse(f.since);
      const kept = rows.filter((r) => r.created_at && Date.parse(r.created_at) >= since);
      if (kept.length < rows.length) next = null;
      rows = kept;
    }
    return c.html(listPage({ ...f, limit: limit === PAGE_SIZE ? undefined : String(limit) }, rows as never, next, q.msg));
  });

  // The events timeline is paged like the lists (oldest first, PAGE_SIZE a page); the live fragment
  // re-fetches the page the reader is on.
  const loadInstance = async (c: Context<UiEnv>, id: string) => {
    const events = pagedList(c, `instances/${id}/events`, `/ui/instances/${id}`);
    const [inst, ev] = await Promise.all([api(c, `/v1/instances/${id}`), api(c, events.path)]);
    return { inst, ev, paging: events.pager(ev) };
  };

  ui.get('/instances/:id', async (c) => {
    const id = c.req.param('id');
    if (!ID.test(id)) return c.notFound();
    const { inst, ev, paging } = await loadInstance(c, id);
    const out = signedOut(c, inst);
    if (out) return out;
    if (!inst.ok) return c.html(listPage({}, [], null, undefined, `Instance ${id}: ${apiMessage(inst)}`), inst.status === 404 ? 404 : 502);
    return c.html(instancePage(inst.body, ev.ok ? ev.body.events ?? [] : [], paging, { resume: !!opts.resume, msg: c.req.query('msg'), error: c.req.query('err') }));
  });

  ui.get('/instances/:id/live', async (c) => {
    const id = c.req.param('id');
    if (!ID.test(id)) return c.notFound();
    const { inst, ev, paging } = await loadInstance(c, id);
    if (!inst.ok) return c.text(apiMessage(inst), inst.status === 401 ? 401 : inst.status === 404 ? 404 : 502);
    return c.html(instanceLive(inst.body, ev.ok ? ev.body.events ?? [] : [], paging));
  });

  /** Runs one state-changing API call for a form and redirects back with its outcome. */
  const act = async (c: Context<UiEnv>, to: string, path: string, body: unknown, done: string) => {
    const a = await api(c, path, { method: 'POST', body });
    const out = signedOut(c, a);
    if (out) return out;
    return c.redirect(a.ok ? back(to, 'msg', done) : back(to, 'err', apiMessage(a)), 303);
  };

  ui.post('/instances/:id/cancel', async (c) => {
    const id = c.req.param('id');
    if (!ID.test(id)) return c.notFound();
    const form = await c.req.parseBody();
    const reason = typeof form.reason === 'string' && form.reason.trim() ? form.reason.trim() : undefined;
    return act(c, `/ui/instances/${id}`, `/v1/instances/${id}/cancel`, reason ? { reason } : {}, 'Cancel requested');
  });

  ui.post('/instances/:id/signal', async (c) => {
    const id = c.req.param('id');
    if (!ID.test(id)) return c.notFound();
    const form = await c.req.parseBody();
    const name = typeof form.name === 'string' ? form.name.trim() : '';
    const raw = typeof form.data === 'string' && form.data.trim() ? form.data : '{}';
    let data: unknown;
    try {
      data = JSON.parse(raw);
    } catch {
      return c.redirect(back(`/ui/instances/${id}`, 'err', 'Signal data is not valid JSON'), 303);
    }
    if (!name) return c.redirect(back(`/ui/instances/${id}`, 'err', 'Signal name is required'), 303);
    return act(c, `/ui/instances/${id}`, `/v1/instances/${id}/signals/${encodeURIComponent(name)}`, data, `Signal "${name}" sent`);
  });

  if (opts.resume) {
    ui.post('/instances/:id/resume', async (c) => {
      const id = c.req.param('id');
      if (!ID.test(id)) return c.notFound();
      return act(c, `/ui/instances/${id}`, `/v1/instances/${id}/resume`, {}, 'Resumed');
    });
  }

  // Workflows and webhooks: one page of the list, and the one named in the path (if any) below it.
  for (const [list, render] of [
    ['workflows', workflowsPage],
    ['hooks', hooksPage],
  ] as const) {
    ui.get(`/${list}/:name?`, async (c) => {
      const raw = c.req.param('name');
      const name = raw && NAME.test(raw) ? raw : undefined;
      const paged = pagedList(c, list, name ? `/ui/${list}/${name}` : `/ui/${list}`);
      const [rows, one] = await Promise.all([api(c, paged.path), name ? api(c, `/v1/${list}/${name}`) : Promise.resolve(null)]);
      const out = signedOut(c, rows);
      if (out) return out;
      return c.html(render(rows.ok ? rows.body[list] ?? [] : [], paged.pager(rows), one?.ok ? one.body : null));
    });
  }

  ui.get('/schedules', async (c) => {
    const paged = pagedList(c, 'schedules', '/ui/schedules');
    const list = await api(c, paged.path);
    const out = signedOut(c, list);
    if (out) return out;
    return c.html(schedulesPage(list.ok ? list.body.schedules ?? [] : [], paged.pager(list), c.req.query('msg'), list.ok ? c.req.query('err') : apiMessage(list)));
  });

  for (const action of ['pause', 'resume'] as const) {
    ui.post(`/schedules/:name/${action}`, async (c) => {
      const name = c.req.param('name');
      if (!NAME.test(name)) return c.notFound();
      return act(c, '/ui/schedules', `/v1/schedules/${name}/${action}`, undefined, `Schedule "${name}" ${action}d`);
    });
  }

  return ui;
}
