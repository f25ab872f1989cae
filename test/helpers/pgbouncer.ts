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
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

export function usePgBouncer(t: TestDb, opts: { poolSize?: number } = {}): PgBouncer {
  const cfg = inject('pg');
  const h = {} as PgBouncer;
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    if (!BIN) throw new Error('pgbouncer is not installed (CI is set, so the pooler suites must run): apt-get install -y pgbouncer');
    dir = mkdtempSync(join(tmpdir(), 'pgflare-pgbouncer-'));
    const port = await freePort();
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
    child = spawn(BIN, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    await waitForPort(port, () => output + (existsSync(join(dir!, 'pgbouncer.log')) ? readFileSync(join(dir!, 'pgbouncer.log'), 'utf8') : ''), child);
    h.port = port;
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  h.url = (user = cfg.owner, password = user === cfg.owner ? cfg.ownerPassword : user === 'postgres' ? 'postgres' : 'pw') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${h.port}/${t.name}`;
  return h;
}

async function waitForPort(port: number, log: () => string, child: ChildProcess): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`pgbouncer did not listen on ${port}:\n${log()}`);
}
