/**
 * The definition pages: named workflows (with their versions), schedules (next and last fire,
 * pause/resume) and webhooks (recent deliveries). Each renders what the matching /v1 route returns.
 */
import { html } from 'hono/html';
import { badge, notice, page, pager, shown, when, type Html, type Pager } from './layout.ts';

type Row = Record<string, any>;

export function workflowsPage(list: Row[], paging: Pager, detail: Row | null): Html {
  return page(
    'Workflows',
    html`<h1>Named workflows</h1>
<div class="card"><table class="stack"><thead><tr><th>Name</th><th>Latest version</th><th>Description</th><th>Defined</th></tr></thead><tbody>
${list.length
      ? list.map((w) => html`<tr><td data-h="Name"><a href="/ui/workflows/${w.name}">${w.name}</a></td><td data-h="Latest">v${w.latest_version}</td><td data-h="Description">${w.description ?? ''}</td><td data-h="Defined">${when(w.created_at)}</td></tr>`)
      : html`<tr><td colspan="4" class="muted">No named workflows.</td></tr>`}</tbody></table>${pager(paging)}</div>
${detail
      ? html`<h2>${detail.name}: versions</h2><div class="card"><table class="stack"><thead><tr><th>Version</th><th>Description</th><th>Defined</th></tr></thead><tbody>
${(detail.versions ?? []).map((v: Row) => html`<tr><td data-h="Version">v${v.version}</td><td data-h="Description">${v.description ?? ''}</td><td data-h="Defined">${when(v.created_at)}</td></tr>`)}</tbody></table>
<h2>Latest graph</h2><pre>${shown(detail.graph)}</pre></div>`
      : ''}`,
    { signedIn: true },
  );
}

export function schedulesPage(list: Row[], paging: Pager, msg?: string, error?: string): Html {
  return page(
    'Schedules',
    html`<h1>Schedules</h1>${notice(msg)}${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<div class="card"><table class="stack"><thead><tr><th>Name</th><th>Workflow</th><th>Cron</th><th>State</th><th>Next fire</th><th>Last fire</th><th></th></tr></thead><tbody>
${list.length
      ? list.map((s) => {
          const paused = s.paused === true || s.enabled === false;
          return html`<tr data-schedule="${s.name}"><td data-h="Name">${s.name}</td><td data-h="Workflow">${s.workflow ?? s.workflow_name ?? ''}</td>
<td data-h="Cron"><code>${s.cron ?? ''}</code> <span class="muted">${s.timezone ?? ''}</span></td><td data-h="State">${paused ? badge('paused') : badge('active')}</td>
<td data-h="Next fire">${when(s.next_fire_at ?? s.next_fire)}</td><td data-h="Last fire">${when(s.last_fire_at ?? s.last_fired_at ?? s.last_fire)}${s.last_instance_id ? html` <a href="/ui/instances/${s.last_instance_id}">instance</a>` : ''}</td>
<td><form method="post" action="/ui/schedules/${s.name}/${paused ? 'resume' : 'pause'}"><button type="submit">${paused ? 'Resume' : 'Pause'}</button></form></td></tr>`;
        })
      : html`<tr><td colspan="7" class="muted">No schedules.</td></tr>`}</tbody></table>${pager(paging)}</div>`,
    { signedIn: true },
  );
}

export function hooksPage(list: Row[], paging: Pager, detail: Row | null): Html {
  return page(
    'Webhooks',
    html`<h1>Webhooks</h1>
<div class="card"><table class="stack"><thead><tr><th>Name</th><th>Workflow</th><th>Scheme</th><th>Created</th></tr></thead><tbody>
${list.length
      ? list.map((h) => html`<tr><td data-h="Name"><a href="/ui/hooks/${h.name}">${h.name}</a></td><td data-h="Workflow">${h.workflow ?? ''}</td><td data-h="Scheme">${h.scheme ?? ''}</td><td data-h="Created">${when(h.created_at)}</td></tr>`)
      : html`<tr><td colspan="4" class="muted">No webhooks.</td></tr>`}</tbody></table>${pager(paging)}</div>
${detail
      ? html`<h2>${detail.name}: recent deliveries</h2><div class="card"><table class="stack"><thead><tr><th>Delivery</th><th>Instance</th><th>Received</th></tr></thead><tbody>
${(detail.recent_deliveries ?? []).length
          ? (detail.recent_deliveries as Row[]).map((d) => html`<tr><td data-h="Delivery"><code>${d.delivery_id}</code></td><td data-h="Instance">${d.instance_id ? html`<a href="/ui/instances/${d.instance_id}">${d.instance_id}</a>` : ''}</td><td data-h="Received">${when(d.received_at)}</td></tr>`)
          : html`<tr><td colspan="3" class="muted">No deliveries yet.</td></tr>`}</tbody></table></div>`
      : ''}`,
    { signedIn: true },
  );
}

export function loginPage(error?: string): Html {
  return page(
    'Sign in',
    html`<h1>Sign in</h1><div class="card"><form method="post" action="/ui/login" class="inline">
<label>API token<input type="password" name="token" autocomplete="current-password" required size="48"></label><button type="submit">Sign in</button></form>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<p class="muted">A token from <code>SELECT df.create_api_token('name')</code> or PGFLARE_API_TOKENS. You see what its role sees through the API.</p></div>`,
  );
}
