import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { dumpSchema } from '../../src/migrate/dump.ts';

const t = useTestDb();
const file = join(import.meta.dirname, '../schema.sql');

// The installed schema is a reviewed artifact: regenerate with `UPDATE_SCHEMA=1 npx vitest run test/migrate/schema-dump`.
it('the installed schema matches test/schema.sql', async () => {
  const client = await t.owner.connect();
  try {
    const actual = await dumpSchema(client);
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(file, actual);
    expect(actual).toBe(readFileSync(file, 'utf8'));
  } finally {
    client.release();
  }
});
