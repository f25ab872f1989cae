/**
 * The dashboard's page shell: one inline stylesheet (no framework, no build step), the navigation and
 * small formatting helpers shared by the pages. Everything is rendered with hono/html, which escapes
 * every interpolated value; `raw` is used only for the constant CSS and script text below.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const CSS = `
:root{--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#dde1e8;--accent:#2456c9;
--pending:#7a8394;--running:#1f6fd1;--completed:#1b8a4b;--failed:#c62828;--cancelled:#b26a00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center}
header a{color:#fff;text-decoration:none}header .brand{font-weight:700;margin-right:auto}
header form{margin:0}header button{background:none;border:1px solid #fff6;color:#fff;padding:.2rem .6rem}
main{max-width:1100px;margin:0 auto;padding:1rem}
h1{font-size:1.3rem;margin:.2rem 0 1rem;word-break:break-all}h2{font-size:1.05rem;margin:1.2rem 0 .5rem}
a{color:var(--accent)}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.8rem;margin-bottom:1rem;overflow-x:auto}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{white-space:pre-wrap;word-break:break-word;margin:.2rem 0}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;color:#fff;font-size:.8rem;font-weight:600}
.s-pending{background:var(--pending)}.s-running{background:var(--running)}.s-completed{background:var(--completed)}
.s-failed{background:var(--failed)}.s-cancelled{background:var(--cancelled)}
.muted{color:var(--muted)}.error{color:var(--failed);font-weight:600}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted);gap:.15rem}
input,select,textarea,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:4px;background:#fff;color:var(--fg)}
button{cursor:pointer;background:var(--accent);color:#fff;border-color:var(--accent)}button.danger{background:var(--failed);border-color:var(--failed)}
.tree,.tree ul{list-style:none;margin:0;padding-left:1.1rem}.tree{padding-left:0}
.tree li{border-left:3px solid var(--line);margin:.3rem 0;padding:.3rem .5rem;background:var(--card)}
.tree li.n-running{border-left-color:var(--running)}.tree li.n-completed{border-left-color:var(--completed)}
.tree li.n-failed{border-left-color:var(--failed)}.tree li.n-cancelled{border-left-color:var(--cancelled)}
.node-head{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;font-size:.9rem}
.pager{display:flex;gap:1rem;margin-top:.6rem}
.notice{background:#fff3cd;border:1px solid #e8d08a;padding:.5rem .8rem;border-radius:4px;margin-bottom:1rem}
@media (max-width:640px){main{padding:.5rem}
 table.stack thead{display:none}table.stack tr{display:block;border-bottom:2px solid var(--line);padding:.3rem 0}
 table.stack td{display:flex;gap:.5rem;border:0;padding:.15rem .3rem}
 table.stack td::before{content:attr(data-h);min-width:6.5rem;color:var(--muted);font-size:.8rem}
 form.inline>*{flex:1 1 100%}}
`;

export function page(title: string, body: Html | Html[], opts: { signedIn?: boolean; script?: string } = {}): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · pgflare</title><style>${raw(CSS)}</style></head>
<body><header><a class="brand" href="/ui">pgflare</a>${opts.signedIn
    ? html`<a href="/ui">Instances</a><a href="/ui/workflows">Workflows</a><a href="/ui/schedules">Schedules</a><a href="/ui/hooks">Webhooks</a>
<form method="post" action="/ui/logout"><button type="submit">Sign out</button></form>`
    : ''}</header>
<main>${body}</main>${opts.script ? html`<script>${raw(opts.script)}</script>` : ''}</body></html>`;
}

export const badge = (status: unknown) => {
  const s = String(status ?? 'unknown');
  return html`<span class="badge s-${s.replace(/[^a-z]/g, '')}">${s}</span>`;
};

/** A timestamp as UTC, second precision; empty for null. */
export function when(value: unknown): string {
  if (value === null || value === undefined || value === '') return '';
  const d = new Date(String(value));
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** A JSON value for display: strings as they are, everything else pretty-printed. */
export function shown(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

export const notice = (text: string | undefined) => (text ? html`<div class="notice" role="status">${text}</div>` : '');

/** Query string of the set values, with its `?` (empty when none is set). */
export const qs = (params: Record<string, string | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

/** The links under a paged list: back to its first page, and on to the next while there is one. */
export interface Pager {
  first: string;
  next: string | null;
}
export const pager = (p: Pager) =>
  html`<div class="pager"><a href="${p.first}">First page</a>${p.next ? html`<a rel="next" href="${p.next}">Next page →</a>` : ''}</div>`;
