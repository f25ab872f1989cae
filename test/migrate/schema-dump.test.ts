import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { dumpSchema } from '../../src/migrate/dump.ts';

const t = useTestDb();
const file = join(import.meta.dirname, '../schema.sql');

// The installed schema is a reviewed artifact: regenerate with `UPDATE_SCHEMA=1 npx vitest run test/migrate/schema-dump`.
// It is the dump of PostgreSQL 15 (the default test server): catalog text differs between majors (17 adds
// MAINTAIN to table ACLs), so other versions check the schema by comparing installs (test/migrate/migrate.test.ts).
const major = Math.floor(inject('pg').serverVersionNum / 10000);
it.skipIf(major !== 15)('the installed schema matches test/schema.sql (PostgreSQL 15)', async () => {
  const client = await t.owner.connect();
  try {
    const actual = await dumpSchema(client);
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(file, actual);
    expect(actual).toBe(readFileSync(file, 'utf8'));
  } finally {
    client.release();
  }
});
