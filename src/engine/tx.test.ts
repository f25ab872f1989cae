/** What a claim transaction owes (tx.ts Owed): rendered once, in order, then cleared. No database. */
import { describe, expect, it } from 'vitest';
import { RESTORE_SESSION } from './executors/sql.ts';
import { Owed } from './tx.ts';

describe('Owed', () => {
  it('renders the savepoint release before the session restore, and owes nothing after take()', () => {
    const owes = new Owed();
    expect(owes.pending).toBe(false);
    expect(owes.take()).toBe('');
    owes.releaseSavepoint('pgflare_step');
    expect(owes.pending).toBe(true);
    expect(owes.take()).toBe('RELEASE SAVEPOINT pgflare_step; ');
    expect(owes.pending).toBe(false);
    owes.restoreSession().releaseSavepoint('pgflare_step_2');
    expect(owes.take()).toBe(`RELEASE SAVEPOINT pgflare_step_2; ${RESTORE_SESSION}; `);
    expect(owes.take()).toBe('');
  });

  it('a later release replaces the earlier one (the claim opens one step savepoint at a time)', () => {
    const owes = new Owed().releaseSavepoint('pgflare_step');
    owes.releaseSavepoint('pgflare_step').restoreSession();
    expect(owes.take()).toBe(`RELEASE SAVEPOINT pgflare_step; ${RESTORE_SESSION}; `);
  });
});
