/**
 * An instance's graph as an indented tree: the nodes of GET /v1/instances/{instance_id} linked by
 * left_node/right_node (the shape df.explain prints), each with its live status colour, timings,
 * attempts, result and error (status_details as the engine stamped it).
 */
import { html } from 'hono/html';
import { badge, shown, when, type Html } from './layout.ts';

export interface UiNode {
  node_id: string;
  node_type: string;
  query?: string | null;
  result_name?: string | null;
  left_node?: string | null;
  right_node?: string | null;
  status?: string | null;
  inferred_status?: string | null;
  result?: unknown;
  status_details?: Record<string, unknown> | null;
  updated_at?: string | null;
  [k: string]: unknown;
}

const TIME_KEY = /(_at|time|timestamp)$/;

function details(d: Record<string, unknown> | null | undefined): Html | string {
  if (!d || typeof d !== 'object') return '';
  const rows = Object.entries(d).filter(([, v]) => v !== null && v !== undefined && v !== '');
  if (!rows.length) return '';
  return html`<div class="kv">${rows.map(([k, v]) => {
    const isErr = /error|sqlstate|code/i.test(k);
    const text = TIME_KEY.test(k) && typeof v === 'string' ? when(v) : shown(v);
    return html`<span class="muted">${k}</span><span${isErr ? html` class="error"` : ''}>${text.includes('\n') ? html`<pre>${text}</pre>` : text}</span>`;
  })}</div>`;
}

function nodeItem(n: UiNode, byId: Map<string, UiNode>, seen: Set<string>): Html {
  seen.add(n.node_id);
  const status = n.status ?? n.inferred_status ?? 'pending';
  const kids = [n.left_node, n.right_node].filter((k): k is string => !!k && byId.has(k) && !seen.has(k));
  return html`<li class="n-${status.replace(/[^a-z]/g, '')}" data-node="${n.node_id}" data-status="${status}">
<div class="node-head">${badge(status)}<strong>${n.node_type}</strong>${n.result_name ? html`<span class="muted">→ ${n.result_name}</span>` : ''}<code class="muted">${n.node_id}</code>${n.updated_at ? html`<span class="muted">updated ${when(n.updated_at)}</span>` : ''}</div>
${n.query ? html`<pre>${n.query}</pre>` : ''}
${n.result !== null && n.result !== undefined ? html`<div class="kv"><span class="muted">result</span><pre>${shown(n.result)}</pre></div>` : ''}
${details(n.status_details)}
${kids.length ? html`<ul>${kids.map((k) => nodeItem(byId.get(k)!, byId, seen))}</ul>` : ''}</li>`;
}

export function graphTree(nodes: UiNode[]): Html | string {
  if (!nodes.length) return html`<p class="muted">No nodes.</p>`;
  const byId = new Map(nodes.map((n) => [n.node_id, n]));
  const children = new Set(nodes.flatMap((n) => [n.left_node, n.right_node]).filter((k): k is string => !!k));
  const roots = nodes.filter((n) => !children.has(n.node_id));
  const seen = new Set<string>();
  const items = (roots.length ? roots : [nodes[0]!]).map((r) => nodeItem(r, byId, seen));
  // Nodes no root reaches (loop bodies re-stamped per iteration) still show, flat, after the tree.
  const rest = nodes.filter((n) => !seen.has(n.node_id)).map((n) => nodeItem(n, byId, seen));
  return html`<ul class="tree">${items}${rest}</ul>`;
}
