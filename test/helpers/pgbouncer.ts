/**
 * PgBouncer in transaction mode (Debian's `pgbouncer` package) in front of the test PostgreSQL, for the
 * suites in test/pooler/. Its config lives in a temp dir of its own; it runs as user `postgres` when the
 * tests run as root (PgBouncer refuses to run as root). A small pool (default_pool_size 3) makes clients
 * share server sessions, so anything that leans on session state breaks here as it would on Neon's or
 * Supabase's pooled connection strings.
 *
 * Skipped (with a message) only when pgbouncer is not installed and CI is unset; `.ci/run` installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import type { TestDb } from './db.ts';

const BIN = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p)) ?? (spawnSync('sh', ['-c', 'command -v pgbouncer']).stdout?.toString().trim() || null);

/** Whether the pooler suites run: pgbouncer is installed, or CI requires it (and then fails if it is not). */
export const pgbouncerAvailable = BIN !== null || !!process.env.CI;
if (!pgbouncerAvailable) console.warn('test/pooler: skipped, pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)');

export interface PgBouncer {
  port: number;
  /** A connection string for `user` through the pooler, to the test file's database. */
  url(user?: string, password?: string): string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface StartedPgBouncer {
  port: number;
  child: ChildProcess;
  dir: string;
  stop(): Promise<void>;
}

/** Starts PgBouncer in front of the test server (on `opts.port`, else a free one); resolves once it listens. */
export async function startPgBouncer(opts: { poolSize?: number; port?: number } = {}): Promise<StartedPgBouncer> {
  const cfg = inject('pg');
  if (!BIN) throw new Error('pgbouncer is not installed (CI is set, so the pooler suites must run): apt-get install -y pgbouncer');
  const dir = mkdtempSync(join(tmpdir(), 'pgflare-pgbouncer-'));
  const port = opts.port ?? (await freePort());
  // Plain-text passwords: PgBouncer answers the client's SCRAM with them and logs in to the server with SCRAM.
  const users: [string, string][] = [
    [cfg.owner, cfg.ownerPassword],
    ['postgres', 'postgres'],
  ];
  writeFileSync(join(dir, 'userlist.txt'), users.map(([u, p]) => `"${u}" "${p}"\n`).join(''));
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${cfg.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize ?? 3}`,
      'max_client_conn = 500',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      // node-postgres and the Neon driver send these startup parameters; PgBouncer refuses unknown ones.
      'ignore_startup_parameters = extra_float_digits,options',
      'server_check_delay = 0',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const pgUser = spawnSync('id', ['-u', 'postgres']).stdout.toString().trim();
    const pgGroup = spawnSync('id', ['-g', 'postgres']).stdout.toString().trim();
    chmodSync(dir, 0o755);
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), Number(pgUser), Number(pgGroup));
  }
  const child = spawn(BIN, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForListening(child, port);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, child, dir, stop };
}

export function usePgBouncer(t: TestDb, opts: { poolSize?: number } = {}): PgBouncer {
  const cfg = inject('pg');
  const h = {} as PgBouncer;
  let started: StartedPgBouncer | undefined;
  beforeAll(async () => {
    started = await startPgBouncer(opts);
    h.port = started.port;
  });
  afterAll(async () => {
    await started?.stop();
  });
  h.url = (user = cfg.owner, password = user === cfg.owner ? cfg.ownerPassword : user === 'postgres' ? 'postgres' : 'pw') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${h.port}/${t.name}`;
  return h;
}

/**
 * Resolves when PgBouncer logs that it listens on `port` (it logs to stderr as well as to its logfile, once
 * listen() has succeeded); rejects, with its output, when it exits first or has not listened within `ms`.
 */
export function waitForListening(child: ChildProcess, port: number, ms = 15_000): Promise<void> {
  const line = `listening on 127.0.0.1:${port}`;
  let output = '';
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      child.off('close', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes(line)) done();
    };
    const onExit = (code: number | null) => done(new Error(`pgbouncer exited (${code}) before listening on ${port}:\n${output}`));
    const timer = setTimeout(() => done(new Error(`pgbouncer did not log "${line}" within ${ms} ms:\n${output}`)), ms);
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('close', onExit);
  });
}
