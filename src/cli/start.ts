/** `pgflare start DSL [--wait]`: starts an instance and prints its id; with --wait, follows it to the end. */
import type { Client } from './db.ts';
import { withClient } from './db.ts';
import { clip, duration, styleFor } from './format.ts';
import { exitCodeOf, follow, outcome } from './follow.ts';
import { EXIT } from './program.ts';

/** How the argument becomes df.start's first argument; the same reading df.explain gives its input. */
export function startStatement(dsl: string): { text: string; params: string[] } {
  const t = dsl.trim();
  if (t.startsWith('{')) return { text: 'SELECT df.start($1::text, $2::text) AS id', params: [t] };
  if (/~>|\|=>|\?>|!>|@>|\bdf\./.test(t) || t.startsWith("'") || t.startsWith('(')) {
    return { text: `SELECT df.start((${t}), $1::text) AS id`, params: [] };
  }
  return { text: 'SELECT df.start($1::text, $2::text) AS id', params: [t] };
}

async function startInstance(client: Client, dsl: string, label: string | undefined): Promise<string> {
  const { text, params } = startStatement(dsl);
  const { rows } = await client.query<{ id: string }>(text, [...params, label ?? null]);
  return rows[0]!.id;
}

export async function start(
  url: string,
  dsl: string,
  opts: { label?: string; wait?: boolean; timeout?: number; interval: number; color?: boolean },
): Promise<number> {
  return withClient(url, async (client) => {
    const id = await startInstance(client, dsl, opts.label);
    if (!opts.wait) {
      process.stdout.write(`${id}\n`);
      return EXIT.ok;
    }
    const live = process.stdout.isTTY === true;
    const s = styleFor(process.stdout, opts.color !== false);
    const began = Date.now();
    let last = '';
    const result = await follow(client, id, {
      intervalMs: opts.interval,
      timeoutMs: opts.timeout === undefined ? undefined : opts.timeout * 1000,
      onSnapshot: (snap) => {
        const done = snap.steps.filter((n) => n.status === 'completed' || n.status === 'failed').length;
        const line = `${id} ${snap.status} ${done}/${snap.steps.length} steps`;
        // On a terminal one line rewritten in place; otherwise a line per change.
        if (live) process.stdout.write(`\r\x1b[K${s.bold(id)} ${snap.status}  ${done}/${snap.steps.length} steps  ${s.dim(duration(Date.now() - began))}`);
        else if (line !== last) process.stdout.write(`${line}\n`);
        last = line;
      },
    });
    if (live) process.stdout.write('\n');
    if (result.timedOut) {
      process.stdout.write(`${id}: still ${result.status} after ${opts.timeout} s (--timeout)\n`);
      return EXIT.timeout;
    }
    const end = await outcome(client, id);
    const paint = result.status === 'completed' ? s.green : result.status === 'failed' ? s.red : s.yellow;
    const took = end.durationMs === null ? '' : ` in ${duration(end.durationMs)}`;
    process.stdout.write(`${id} ${paint(result.status)}${took}${end.output ? `: ${clip(end.output, 200)}` : ''}\n`);
    return exitCodeOf(result.status);
  });
}
