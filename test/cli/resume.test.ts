/**
 * `pgflare resume ID` and `pgflare restart ID`, run as the compiled binary against this file's clone; the
 * instances are driven by hand with the engine.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';
import { useCli } from '../helpers/cli.ts';

const t = useTestDb();
const cli = useCli();
const db = () => ({ DATABASE_URL: t.url() });

describe('pgflare resume and restart', () => {
  it('resume runs a failed instance again from its failed step; a second resume is refused with PF020', async () => {
    await t.query('CREATE TABLE effects (n int)');
    const id = await start(t, `'INSERT INTO effects VALUES (1)' ~> 'SELECT * FROM fix'`);
    await engineFor(t).drain();
    expect((await outcome(t, id)).status).toBe('failed');
    await t.query('CREATE TABLE fix AS SELECT 6 AS x');

    expect(await cli.run(['resume', id], db())).toMatchObject({ code: 0, stdout: `Instance ${id} resumed\n` });
    const again = await cli.run(['resume', id], db());
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`Instance ${id} is running: only a failed instance can be resumed (SQLSTATE PF020)`);
    await engineFor(t).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ x: 6 }] } });
    expect(await t.query('SELECT count(*)::int AS n FROM effects')).toEqual([{ n: 1 }]);
  });

  it('restart prints the new instance id; an unknown id exits 1', async () => {
    const id = await start(t, `'SELECT 1/0'`);
    await engineFor(t).drain();
    const r = await cli.run(['restart', id], db());
    expect(r.code).toBe(0);
    const again = r.stdout.trim();
    expect(again).toMatch(/^[0-9a-f]{8}$/);
    expect(again).not.toBe(id);
    expect(await t.query(`SELECT status FROM df.instances WHERE id = $1`, [again])).toEqual([{ status: 'pending' }]);
    expect((await cli.run(['restart', '00000000'], db())).code).toBe(1);
    expect((await cli.run(['resume', 'nothex'], db())).code).toBe(2);
  });
});
