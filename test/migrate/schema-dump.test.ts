import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { dumpSchema } from '../../src/migrate/dump.ts';

const t = useTestDb();
const file = join(import.meta.dirname, '../schema.sql');

// The installed schema is a reviewed artifact: regenerate with `UPDATE_SCHEMA=1 npx vitest run test/migrate/schema-dump`
// (any version). Every major installs the same schema; their catalogs differ only in what `normalize`
// leaves out: PostgreSQL 17's MAINTAIN privilege ('m'), which every table owner holds, and 18's NOT NULL
// constraints in pg_constraint (the columns section shows them as "not null" on every version).
const major = Math.floor(inject('pg').serverVersionNum / 10000);
const normalize = (dump: string) => {
  let s = dump;
  if (major >= 17) s = s.replaceAll('=arwdDxtm/', '=arwdDxt/');
  if (major >= 18) s = s.replace(/^constraint \S+ on df\.\S+: NOT NULL \S+\n/gm, '');
  return s;
};
it('the installed schema matches test/schema.sql', async () => {
  const client = await t.owner.connect();
  try {
    const actual = normalize(await dumpSchema(client));
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(file, actual);
    expect(actual).toBe(readFileSync(file, 'utf8'));
  } finally {
    client.release();
  }
});
