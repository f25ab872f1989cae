/**
 * The instances pages: the list (status, label and time filters, cursor paging) and one instance (its
 * graph, events timeline and the cancel / signal / resume forms). The live part of the instance page
 * is a fragment the inline script re-fetches every second while the instance is pending or running.
 */
import { html } from 'hono/html';
import { graphTree, type UiNode } from './graph.ts';
import { badge, notice, page, pager, qs, shown, when, type Html, type Pager } from './layout.ts';

export const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export const ACTIVE = new Set(['pending', 'running']);

export interface ListFilters {
  status?: string;
  label?: string;
  /** Newest creation time shown (ISO); becomes the first page's cursor. */
  before?: string;
  /** Oldest creation time shown (ISO); paging stops at it. */
  since?: string;
  /** Page size when not the default (kept across pages). */
  limit?: string;
}

export interface ListRow {
  instance_id: string;
  label: string | null;
  status: string;
  execution_count?: number;
  created_at: string | null;
  completed_at: string | null;
}

const localInput = (iso: string | undefined) => (iso ? iso.slice(0, 16) : '');

export function listPage(f: ListFilters, rows: ListRow[], nextCursor: string | null, msg?: string, error?: string): Html {
  const next = nextCursor ? `/ui${qs({ status: f.status, label: f.label, since: f.since, limit: f.limit, cursor: nextCursor })}` : null;
  return page(
    'Instances',
    html`<h1>Instances</h1>${notice(msg)}
<form class="inline card" method="get" action="/ui">
<label>Status<select name="status"><option value="">any</option>${STATUSES.map((s) => html`<option${s === f.status ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>Label<input name="label" value="${f.label ?? ''}" maxlength="256"></label>
<label>Created since (UTC)<input type="datetime-local" name="since" value="${localInput(f.since)}"></label>
<label>Created before (UTC)<input type="datetime-local" name="before" value="${localInput(f.before)}"></label>
<button type="submit">Filter</button> <a href="/ui">Clear</a></form>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<div class="card"><table class="stack"><thead><tr><th>Instance</th><th>Status</th><th>Label</th><th>Created</th><th>Finished</th></tr></thead>
<tbody>${rows.length
      ? rows.map(
          (r) => html`<tr data-instance="${r.instance_id}"><td data-h="Instance"><a href="/ui/instances/${r.instance_id}"><code>${r.instance_id}</code></a></td>
<td data-h="Status">${badge(r.status)}</td><td data-h="Label">${r.label ?? ''}</td><td data-h="Created">${when(r.created_at)}</td><td data-h="Finished">${when(r.completed_at)}</td></tr>`,
        )
      : html`<tr><td colspan="5" class="muted">No instances match.</td></tr>`}</tbody></table>
${pager({ first: `/ui${qs({ status: f.status, label: f.label, since: f.since, before: f.before, limit: f.limit })}`, next })}</div>`,
    { signedIn: true },
  );
}

export interface UiInstance {
  instance_id: string;
  label?: string | null;
  status: string;
  result?: unknown;
  output?: unknown;
  error?: unknown;
  created_at?: string | null;
  started_at?: string | null;
  completed_at?: string | null;
  finished_at?: string | null;
  nodes?: UiNode[];
}

export interface UiEvent {
  event_id: number | string;
  node_id: string | null;
  kind: string;
  attempt: number | null;
  detail: unknown;
  created_at: string;
}

/** The part of the instance page that changes while it runs. */
export function instanceLive(inst: UiInstance, events: UiEvent[], paging: Pager): Html {
  const err = inst.error;
  const errObj = err && typeof err === 'object' ? (err as Record<string, unknown>) : null;
  return html`<div id="live" data-status="${inst.status}">
<div class="card kv"><span class="muted">status</span><span id="status">${badge(inst.status)}</span>
<span class="muted">label</span><span>${inst.label ?? ''}</span>
<span class="muted">created</span><span>${when(inst.created_at)}</span>
${inst.started_at ? html`<span class="muted">started</span><span>${when(inst.started_at)}</span>` : ''}
<span class="muted">finished</span><span>${when(inst.finished_at ?? inst.completed_at)}</span>
${errObj
    ? html`<span class="muted">error</span><span class="error" id="error">${errObj.code ? html`<code>${String(errObj.code)}</code> ` : ''}${shown(errObj.message ?? errObj)}${errObj.detail ? html`<br>detail: ${shown(errObj.detail)}` : ''}${errObj.hint ? html`<br>hint: ${shown(errObj.hint)}` : ''}${errObj.node_id ? html`<br>node ${shown(errObj.node_id)}` : ''}${errObj.attempt ? html`, attempt ${shown(errObj.attempt)}` : ''}</span>`
    : ''}
${inst.result !== undefined && inst.result !== null ? html`<span class="muted">result</span><pre id="result">${shown(inst.result)}</pre>` : ''}
${inst.output !== undefined && inst.output !== null && inst.output !== '' ? html`<span class="muted">output</span><pre id="output">${shown(inst.output)}</pre>` : ''}
</div>
<h2>Graph</h2><div class="card">${graphTree(inst.nodes ?? [])}</div>
<h2>Events</h2><div class="card"><table class="stack"><thead><tr><th>#</th><th>Time</th><th>Node</th><th>Kind</th><th>Attempt</th><th>Detail</th></tr></thead>
<tbody>${events.length
    ? events.map(
        (e) => html`<tr><td data-h="#">${e.event_id}</td><td data-h="Time">${when(e.created_at)}</td><td data-h="Node"><code>${e.node_id ?? ''}</code></td><td data-h="Kind">${e.kind}</td><td data-h="Attempt">${e.attempt ?? ''}</td><td data-h="Detail"><pre>${shown(e.detail)}</pre></td></tr>`,
      )
    : html`<tr><td colspan="6" class="muted">No events yet.</td></tr>`}</tbody></table>${pager(paging)}</div></div>`;
}

// Polls the fragment once a second while the instance is active; stops once it is finished (or the
// session ends), so an idle open tab costs nothing.
const LIVE_SCRIPT = `(function(){var live=document.getElementById('live');var url=location.pathname+'/live'+location.search;
function active(){var s=document.getElementById('live').dataset.status;return s==='pending'||s==='running';}
function tick(){if(!active())return;fetch(url,{credentials:'same-origin',headers:{Accept:'text/html'}}).then(function(r){
if(r.status===401){location.href='/ui/login';return null;}return r.ok?r.text():null;}).then(function(t){
if(t){var cur=document.getElementById('live');var d=document.createElement('div');d.innerHTML=t;var n=d.firstElementChild;
if(n){cur.replaceWith(n);}if(!active()){document.querySelectorAll('.while-active').forEach(function(f){f.remove();});}}}).catch(function(){}).then(function(){setTimeout(tick,1000);});}
if(live)setTimeout(tick,1000);})();`;

export function instancePage(inst: UiInstance, events: UiEvent[], paging: Pager, opts: { resume: boolean; msg?: string; error?: string }): Html {
  const id = inst.instance_id;
  const actions = ACTIVE.has(inst.status)
    ? html`<form method="post" action="/ui/instances/${id}/cancel" class="inline while-active"><label>Reason<input name="reason" placeholder="Cancelled by user" maxlength="1000"></label><button class="danger" type="submit">Cancel</button></form>
<form method="post" action="/ui/instances/${id}/signal" class="inline while-active"><label>Signal name<input name="name" required maxlength="200"></label><label>Data (JSON)<input name="data" value="{}"></label><button type="submit">Signal</button></form>`
    : '';
  const resume = opts.resume && inst.status === 'failed'
    ? html`<form method="post" action="/ui/instances/${id}/resume" class="inline"><button type="submit">Resume</button><span class="muted">re-runs the failed steps; completed steps keep their results</span></form>`
    : '';
  return page(
    `Instance ${id}`,
    html`<p><a href="/ui">← Instances</a></p><h1>Instance <code>${id}</code></h1>${notice(opts.msg)}
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
${actions || resume ? html`<div class="card" id="actions">${actions}${resume}</div>` : ''}
${instanceLive(inst, events, paging)}`,
    { signedIn: true, script: LIVE_SCRIPT },
  );
}
