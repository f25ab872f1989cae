import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();

describe('template', () => {
  it('has schema df installed', async () => {
    const rows = await t.query(`SELECT count(*)::int AS n FROM df._migrations`);
    expect(rows[0].n).toBeGreaterThan(0);
  });
});
