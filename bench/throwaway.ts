/**
 * A throwaway embedded PostgreSQL with one migrated database owned by a non-superuser role, for the
 * single-build tools (profile.ts, claim-cold.ts). `npm run bench` (run.ts) sets up its own server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../src/runtime/node/embedded.ts';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { migrate } from '../src/migrate/runner.ts';
import { connect } from './common.ts';

export interface Throwaway {
  dataDir: string;
  /** The owner role's connection string (role and database both named `name`). */
  url: string;
  /** The superuser's, same database. */
  superUrl: string;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

export async function throwawayDatabase(
  name: string,
  settings: Record<string, string> = {},
  onLog?: (line: string) => void,
): Promise<Throwaway> {
  const dataDir = mkdtempSync(join(tmpdir(), `pgflare-${name}-`));
  const server = await startEmbeddedPostgres({ dataDir, settings: { synchronous_commit: 'off', ...settings }, onLog });
  const stop = async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const admin = await connect(server.superuserUrl);
    await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${name}'`);
    await admin.query(`CREATE DATABASE ${name} OWNER ${name}`);
    await admin.end();
    const url = server.urlFor(name, name, name);
    const mdb = createPgDb({ connectionString: url, max: 1 });
    await migrate(mdb);
    await mdb.end();
    return { dataDir, url, superUrl: server.urlFor(name), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
