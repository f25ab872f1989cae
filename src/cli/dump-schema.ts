import pg from 'pg';
import { dumpSchema } from '../migrate/dump.ts';

export async function runDumpSchema(opts: { databaseUrl: string }): Promise<number> {
  const client = new pg.Client({ connectionString: opts.databaseUrl });
  await client.connect();
  try {
    process.stdout.write(await dumpSchema(client));
    return 0;
  } finally {
    await client.end();
  }
}
