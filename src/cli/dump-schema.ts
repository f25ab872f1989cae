import pg from 'pg';
import { dumpSchema } from '../migrate/dump.ts';

export async function runDumpSchema(opts: { databaseUrl?: string }): Promise<number> {
  if (!opts.databaseUrl) {
    process.stderr.write('pgflare dump-schema: set DATABASE_URL\n');
    return 2;
  }
  const client = new pg.Client({ connectionString: opts.databaseUrl });
  await client.connect();
  try {
    process.stdout.write(await dumpSchema(client));
    return 0;
  } finally {
    await client.end();
  }
}
