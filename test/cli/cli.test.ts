/**
 * The compiled `pgflare` binary (test/helpers/cli.ts builds it once), run as a process against this
 * file's clone. Instances are started with df.start or the CLI and driven by hand with the engine.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useEmptyDatabases, useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome, start } from '../helpers/engine.ts';
import { ROOT, useCli } from '../helpers/cli.ts';

const t = useTestDb();
const cli = useCli();
const empty = useEmptyDatabases();
const engine = () => engineFor(t);
const db = () => ({ DATABASE_URL: t.url() });
const ANSI = /\x1b\[/;
/** A duration as the CLI prints it (src/cli/format.ts): under a second in ms, else seconds or minutes. */
const DUR = String.raw`(?:\d+ ms|[\d.]+ s|\d+ min \d+ s)`;

describe('usage', () => {
  const COMMANDS = ['migrate', 'worker', 'up', 'dump-schema', 'list', 'status', 'show', 'events', 'start', 'cancel', 'resume', 'restart', 'signal', 'tail', 'help'];

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-v']) expect(await cli.run([flag])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('--help, -h and help list every command with exit 0; no command prints the help and exits 2', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await cli.run(args);
      expect(r.code).toBe(0);
      for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
      expect(r.stdout).toContain('Exit codes:');
    }
    const bare = await cli.run([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: pgflare');
  });

  it('every command has its own help (help COMMAND and COMMAND --help)', async () => {
    const commands = COMMANDS.filter((c) => c !== 'help');
    const helps = await Promise.all(commands.map(async (c) => [c, await cli.run(['help', c]), await cli.run([c, '--help'])] as const));
    for (const [c, a, b] of helps) {
      expect(a.code, c).toBe(0);
      expect(a.stdout, c).toMatch(new RegExp(`^Usage: pgflare ${c} `));
      expect(b.stdout, c).toBe(a.stdout);
    }
    expect((await cli.run(['help', 'tail'])).stdout).toContain('4 the instance was cancelled');
  });

  it('rejects unknown commands, unknown options, bad arguments and a missing DATABASE_URL with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['frob'], /unknown command 'frob'/],
      [['status', '--bogus', '1a2b3c4d'], /unknown option '--bogus'/],
      [['list', '--limit', 'ten'], /--limit must be an integer/],
      [['list', '--status', 'done'], /Allowed choices are pending, running, completed, failed, cancelled/],
      [['status', 'xyz'], /an instance id is 8 hex characters/],
      [['signal', '1a2b3c4d'], /missing required argument 'name'/],
      [['status', '1a2b3c4d', 'extra'], /too many arguments/],
      [['worker', '--concurrency', '0'], /--concurrency must be an integer from 1 to 256/],
      [['status', '1a2b3c4d'], /set DATABASE_URL or pass --database-url/],
    ];
    for (const [args, message] of cases) {
      const r = await cli.run(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
    }
  });

  it('an unreachable database is a runtime error (exit 1), not a usage error', async () => {
    const r = await cli.run(['list', '--database-url', 'postgres://nobody:x@127.0.0.1:1/none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgflare list: could not connect to the database/);
  });
});

describe('migrate', () => {
  it('installs schema df into an empty database as its non-superuser owner, then reports it up to date', async () => {
    const url = await empty.create();
    const first = await cli.run(['migrate'], { DATABASE_URL: url, PGFLARE_LOG_LEVEL: 'info' });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('schema df migrated');
    const second = await cli.run(['migrate', '--database-url', url]);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('schema df is up to date');
  });
});

describe('operating instances', () => {
  it('start prints the new id for a DSL expression, a single SQL step and a graph as JSON', async () => {
    const a = await cli.run(['start', `'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'`, '--label', 'cli-dsl'], db());
    const b = await cli.run(['start', 'SELECT 7 AS seven'], db());
    const [env] = await t.query(`SELECT ('SELECT 1 AS one' ~> 'SELECT 2 AS two')::text AS g`);
    const c = await cli.run(['start', env.g, '--label', 'cli-json'], db());
    for (const r of [a, b, c]) expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/^[0-9a-f]{8}\n$/) });
    const [idA, idB, idC] = [a, b, c].map((r) => r.stdout.trim());
    await engine().drain();
    expect(await outcome(t, idA!)).toMatchObject({ status: 'completed', result: { rows: [{ answer: 42 }] } });
    expect(await outcome(t, idB!)).toMatchObject({ status: 'completed', result: { rows: [{ seven: 7 }] } });
    expect(await outcome(t, idC!)).toMatchObject({ status: 'completed', result: { rows: [{ two: 2 }] } });
    const [labels] = await t.query(`SELECT array_agg(label ORDER BY label) AS l FROM df.instances WHERE id = ANY($1)`, [[idA, idB, idC]]);
    expect(labels.l).toEqual(['cli-dsl', 'cli-json', null]);
  });

  it('start with an SQL error exits 1 and names the SQLSTATE; nothing is started', async () => {
    const [before] = await t.query('SELECT count(*)::int AS n FROM df.instances');
    const r = await cli.run(['start', `'SELECT 1' ~> df.sleep(-1)`], db());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgflare start: Sleep duration must be non-negative \(SQLSTATE 22023\)/);
    const [after] = await t.query('SELECT count(*)::int AS n FROM df.instances');
    expect(after.n).toBe(before.n);
  });

  it('list prints a table, filters by status and label, honours --limit, and --json gives one object a line', async () => {
    const done = await start(t, `'SELECT 1'`, 'list-a');
    await engine().drain();
    const waiting = await start(t, `df.wait_for_signal('never')`, 'list-b');
    await engine().drain();
    const table = await cli.run(['list', '--limit', '50'], db());
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID {8}STATUS {5}LABEL/);
    expect(table.stdout).toMatch(new RegExp(`^${done}  completed  list-a `, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${waiting}  running    list-b `, 'm'));

    const byLabel = await cli.run(['list', '--label', 'list-b', '--json'], db());
    expect(byLabel.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ instance_id: waiting, label: 'list-b', status: 'running' }),
    ]);
    const byStatus = await cli.run(['list', '--status', 'completed', '--json'], db());
    const statuses = byStatus.stdout.trim().split('\n').map((l) => JSON.parse(l).status);
    expect(new Set(statuses)).toEqual(new Set(['completed']));
    const one = await cli.run(['list', '--limit', '1', '--json'], db());
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    expect((await cli.run(['list', '--label', 'no-such-label'], db())).stdout).toBe('no instances\n');
  });

  it('status, show and events describe an instance; an unknown id exits 1', async () => {
    const id = await start(t, `'SELECT 1 AS a' ~> df.retry('SELECT 1/0', 2, 0, 0)`, 'described');
    await engine().drain();
    await engine().drain({ now: later(5) });
    expect((await outcome(t, id)).status).toBe('failed');

    const status = await cli.run(['status', id], db());
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^instance  ${id}\nlabel     described\nstatus    failed\nsteps     2/2 finished\noutput    .*division by zero`));
    expect(JSON.parse((await cli.run(['status', id, '--json'], db())).stdout)).toMatchObject({ instance_id: id, status: 'failed', steps: 2, done: 2 });

    const show = await cli.run(['show', id], db());
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('✓');
    expect(show.stdout).toContain('✗');
    expect(show.stdout).not.toMatch(/ +$/m);

    const events = await cli.run(['events', id, '--json'], db());
    const kinds = events.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((e) => [e.kind, e.attempt]);
    expect(kinds).toEqual([['attempt_failed', 1], ['failed', 2]]);
    expect((await cli.run(['events', id], db())).stdout).toMatch(/^TIME +NODE +KIND +ATTEMPT +DETAIL\n.*attempt_failed +1 +SQL execution failed: .*division by zero/);

    const unknown = await cli.run(['status', '00000000'], db());
    expect(unknown).toMatchObject({ code: 1, stderr: 'pgflare status: instance 00000000 not found (or not visible to this role)\n' });
  });

  it('signal wakes a waiting instance with its JSON payload; cancel cancels with a reason', async () => {
    const waiting = await start(t, `df.wait_for_signal('go')`);
    await engine().drain();
    const sent = await cli.run(['signal', waiting, 'go', '{"x":1}'], db());
    expect(sent).toMatchObject({ code: 0, stdout: `signal "go" sent to ${waiting}\n` });
    await engine().drain();
    expect(await outcome(t, waiting)).toMatchObject({ status: 'completed', result: { signal_name: 'go', timed_out: false, data: { x: 1 } } });

    const sleeping = await start(t, `df.wait_for_signal('never')`);
    await engine().drain();
    const cancelled = await cli.run(['cancel', sleeping, '--reason', 'not needed'], db());
    expect(cancelled).toMatchObject({ code: 0, stdout: `Instance ${sleeping} cancelled: not needed\n` });
    expect((await outcome(t, sleeping)).status).toBe('cancelled');
    expect((await cli.run(['signal', '00000000', 'go'], db())).code).toBe(1);
  });
});

describe('tail and start --wait', () => {
  it('tail follows each step as it starts and finishes, with durations and a progress count, and exits 0 on completion', async () => {
    const id = await start(t, `'SELECT 1 AS a' ~> 'SELECT 2 AS b' ~> 'SELECT 3 AS c'`, 'tailed');
    const tail = cli.spawn(['tail', id, '--interval', '20'], db());
    await tail.waitFor(/: pending, 3 steps\n/);
    const e = engineFor(t);
    // One step at a time; each time the tail shows the finish and the next start before the next step.
    await e.runOnce();
    await tail.waitFor(/done +SQL .* SELECT 1 AS a  \[1\/3\]\n  started  SQL  [0-9a-f]{8} SELECT 2 AS b\n/);
    await e.runOnce();
    await tail.waitFor(new RegExp(`done +SQL .* SELECT 2 AS b  ${DUR}  \\[2/3\\]\\n  started  SQL  [0-9a-f]{8} SELECT 3 AS c\\n`));
    await e.runOnce();
    const r = await tail.exit();
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${id}: pending, 3 steps`);
    expect(lines.slice(1, -1).map((l) => l.replace(/[0-9a-f]{8}/, 'ID').replace(new RegExp(`  ${DUR}`), '  N ms'))).toEqual([
      '  done     SQL  ID SELECT 1 AS a  [1/3]',
      '  started  SQL  ID SELECT 2 AS b',
      '  done     SQL  ID SELECT 2 AS b  N ms  [2/3]',
      '  started  SQL  ID SELECT 3 AS c',
      '  done     SQL  ID SELECT 3 AS c  N ms  [3/3]',
    ]);
    expect(lines.at(-1)).toMatch(new RegExp(`^completed in ${DUR}: \\{"rows":\\[\\{"c":3\\}\\],"row_count":1\\}$`));
    expect(r.stdout).not.toMatch(ANSI);
  });

  it('tail exits 3 when the instance fails, 4 when it is cancelled, 5 when --timeout passes first', async () => {
    const failing = await start(t, `'SELECT 1/0'`);
    const tail = cli.spawn(['tail', failing, '--interval', '20'], db());
    await tail.waitFor(/pending, 1 step\n/);
    await engine().drain();
    const failed = await tail.exit();
    expect(failed.code).toBe(3);
    expect(failed.stdout).toMatch(/  failed   SQL .*\[1\/1\]\nfailed.*: SQL execution failed: .*division by zero\n$/);

    const sleeping = await start(t, `df.sleep(3600)`);
    await engine().drain();
    const tail2 = cli.spawn(['tail', sleeping, '--interval', '20'], db());
    await tail2.waitFor(/started  SLEEP/);
    await t.query('SELECT df.cancel($1)', [sleeping]);
    const cancelled = await tail2.exit();
    expect(cancelled.code).toBe(4);
    expect(cancelled.stdout).toMatch(/  started  SLEEP [0-9a-f]{8} 3600\ncancelled\n$/);

    const other = await start(t, `df.wait_for_signal('never')`);
    const timedOut = await cli.run(['tail', other, '--interval', '20', '--timeout', '0.2'], db());
    expect(timedOut.code).toBe(5);
    expect(timedOut.stdout).toContain(`${other}: still pending after 0.2 s (--timeout)`);
  });

  it('start --wait prints plain progress lines off a terminal and exits with the outcome', async () => {
    const run = cli.spawn(['start', `'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'`, '--wait', '--interval', '20'], db());
    const first = await run.waitFor(/^[0-9a-f]{8} pending 0\/2 steps\n/);
    const id = first.slice(0, 8);
    await engine().drain();
    const r = await run.exit();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`\\n${id} completed in ${DUR}: \\{"rows":\\[\\{"answer":42\\}\\],"row_count":1\\}\\n$`));
    expect(r.stdout).not.toMatch(ANSI);
  });
});
