/**
 * test/helpers/pgbouncer.ts waits for PgBouncer's "listening on" log line, not for a port to answer:
 * a started one takes connections at once, and one that cannot listen fails fast with its own words.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { pgbouncerAvailable, startPgBouncer } from '../helpers/pgbouncer.ts';

const t = useTestDb();

describe.skipIf(!pgbouncerAvailable)('startPgBouncer', () => {
  it('resolves once PgBouncer listens: the first connection goes through', async () => {
    const b = await startPgBouncer();
    try {
      const c = new pg.Client({ connectionString: t.url().replace(`:${t.port}/`, `:${b.port}/`) });
      await c.connect();
      expect((await c.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      await c.end();
    } finally {
      await b.stop();
    }
  });

  it('rejects with PgBouncer\'s output when it cannot listen (the port is taken)', async () => {
    const first = await startPgBouncer();
    try {
      await expect(startPgBouncer({ port: first.port })).rejects.toThrow(/pgbouncer exited \(\d+\) before listening on \d+:[\s\S]*Address already in use/);
    } finally {
      await first.stop();
    }
  });
});
