/** `pgflare list | status | show | events | cancel | resume | restart | signal`: one SQL call each, printed. */
import { requireStatus, withClient } from './db.ts';
import { clip, iso, table } from './format.ts';
import { EXIT } from './program.ts';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

interface ListRow {
  instance_id: string;
  label: string | null;
  status: string;
  execution_count: string;
  output: string | null;
  created_at: Date;
  completed_at: Date | null;
}

export async function list(url: string, opts: { status?: string; label?: string; limit: number; json?: boolean }): Promise<number> {
  const rows = await withClient(url, async (c) => {
    const r = await c.query<ListRow>(
      `SELECT instance_id, label, status, execution_count, output, created_at, completed_at
         FROM df.list_instances($1::text, $2::integer, $3::text, NULL::text)`,
      [opts.status ?? null, opts.limit, opts.label ?? null],
    );
    return r.rows;
  });
  if (opts.json) {
    for (const r of rows) out(JSON.stringify({ ...r, execution_count: Number(r.execution_count) }));
    return EXIT.ok;
  }
  if (rows.length === 0) {
    out('no instances');
    return EXIT.ok;
  }
  out(
    table(
      ['ID', 'STATUS', 'LABEL', 'CREATED', 'COMPLETED', 'OUTPUT'],
      rows.map((r) => [r.instance_id, r.status, r.label ?? '', iso(r.created_at), iso(r.completed_at), clip(r.output, 60)]),
    ),
  );
  return EXIT.ok;
}

interface Info {
  instance_id: string;
  label: string | null;
  status: string;
  output: string | null;
  steps: number;
  done: number;
}

const LEAVES = `('SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL')`;

export async function status(url: string, id: string, opts: { json?: boolean }): Promise<number> {
  const info = await withClient(url, async (c) => {
    await requireStatus(c, id);
    const { rows } = await c.query<Info>(
      `SELECT i.instance_id, i.label, i.status, i.output,
              (SELECT count(*)::int FROM df.instance_nodes($1) n WHERE n.node_type IN ${LEAVES}) AS steps,
              (SELECT count(*)::int FROM df.instance_nodes($1) n
                WHERE n.node_type IN ${LEAVES} AND n.status IN ('completed', 'failed')) AS done
         FROM df.instance_info($1) i`,
      [id],
    );
    return rows[0]!;
  });
  if (opts.json) {
    out(JSON.stringify(info));
    return EXIT.ok;
  }
  out(
    [
      `instance  ${info.instance_id}`,
      `label     ${info.label ?? ''}`,
      `status    ${info.status}`,
      `steps     ${info.done}/${info.steps} finished`,
      `output    ${info.output ?? ''}`,
    ].join('\n'),
  );
  return EXIT.ok;
}

export async function show(url: string, id: string): Promise<number> {
  const text = await withClient(url, async (c) => {
    await requireStatus(c, id);
    const { rows } = await c.query<{ tree: string }>('SELECT df.explain($1) AS tree', [id]);
    return rows[0]!.tree;
  });
  // df.explain right-pads every line; the padding is noise on a terminal.
  out(text.split('\n').map((l) => l.trimEnd()).join('\n'));
  return EXIT.ok;
}

interface EventRow {
  event_id: string;
  node_id: string | null;
  kind: string;
  attempt: number | null;
  detail: string | null;
  created_at: Date;
}

export async function events(url: string, id: string, opts: { json?: boolean }): Promise<number> {
  const rows = await withClient(url, async (c) => {
    await requireStatus(c, id);
    return (await c.query<EventRow>('SELECT event_id, node_id, kind, attempt, detail, created_at FROM df.instance_events($1)', [id])).rows;
  });
  if (opts.json) {
    for (const r of rows) out(JSON.stringify({ ...r, event_id: Number(r.event_id) }));
    return EXIT.ok;
  }
  if (rows.length === 0) {
    out(`no events for ${id} (events record failed attempts, failures and leases)`);
    return EXIT.ok;
  }
  out(table(['TIME', 'NODE', 'KIND', 'ATTEMPT', 'DETAIL'], rows.map((r) => [iso(r.created_at), r.node_id ?? '', r.kind, r.attempt === null ? '' : String(r.attempt), clip(r.detail, 80)])));
  return EXIT.ok;
}

export async function cancel(url: string, id: string, reason: string): Promise<number> {
  const message = await withClient(url, async (c) => (await c.query<{ m: string }>('SELECT df.cancel($1, $2) AS m', [id, reason])).rows[0]!.m);
  out(message);
  return EXIT.ok;
}

export async function resume(url: string, id: string): Promise<number> {
  out(await withClient(url, async (c) => (await c.query<{ m: string }>('SELECT df.resume($1) AS m', [id])).rows[0]!.m));
  return EXIT.ok;
}

export async function restart(url: string, id: string): Promise<number> {
  out(await withClient(url, async (c) => (await c.query<{ id: string }>('SELECT df.restart($1) AS id', [id])).rows[0]!.id));
  return EXIT.ok;
}

export async function signal(url: string, id: string, name: string, payload: string): Promise<number> {
  await withClient(url, (c) => c.query('SELECT df.signal($1, $2, $3)', [id, name, payload]));
  out(`signal "${name}" sent to ${id}`);
  return EXIT.ok;
}
