/**
 * dbOverPool (src/engine/db.ts), the one withClient all three adapters share: which sessions go back
 * to the pool and which are destroyed, on a real PostgreSQL.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { dbOverPool } from '../../src/engine/db.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();

function pool(): pg.Pool {
  const p = new pg.Pool({ connectionString: t.url(), max: 2 });
  p.on('error', () => undefined);
  return p;
}

describe('dbOverPool', () => {
  it('pools a session again after fn returns or throws, by default (the Node adapter)', async () => {
    const db = dbOverPool(pool());
    try {
      const pid = await db.withClient(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      await expect(db.withClient(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      const again = await db.withClient(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      expect(again).toBe(pid);
      expect(db.pool.totalCount).toBe(1);
    } finally {
      await db.end();
    }
  });

  it('destroys a session fn threw out of with dropOnThrow (the Worker adapters)', async () => {
    const db = dbOverPool(pool(), { dropOnThrow: true });
    try {
      const pid = await db.withClient(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      expect(db.pool.totalCount).toBe(1);
      await expect(db.withClient(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expect(db.pool.totalCount).toBe(0);
      const again = await db.withClient(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      expect(again).not.toBe(pid);
    } finally {
      await db.end();
    }
  });

  it('passes sessions through adapt', async () => {
    const seen: string[] = [];
    const db = dbOverPool(pool(), {
      adapt: (s: pg.PoolClient) => ({ query: ((text: string, params?: unknown[]) => (seen.push(text), s.query(text, params))) as never }),
    });
    try {
      await db.withTransaction((c) => c.query('SELECT 1'));
      expect(seen).toEqual(['BEGIN', 'SELECT 1', 'COMMIT']);
    } finally {
      await db.end();
    }
  });

  it('survives a lent session losing its connection and does not pool it again', async () => {
    const db = createPgDb({ connectionString: t.url(), max: 2 });
    try {
      const pid = await db.withClient(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      await expect(
        db.withClient(async (c) => {
          // Waits until the backend has exited (PG 14+), so the lent session loses its socket, not just
          // its next query: the case of a worker loop holding a session while the server goes away.
          await t.superuser.query('SELECT pg_terminate_backend($1, 10000)', [pid]);
          return c.query('SELECT 1');
        }),
      ).rejects.toThrow();
      expect(db.pool.totalCount).toBe(0);
      const again = await db.withClient(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      expect(again).not.toBe(pid);
    } finally {
      await db.end();
    }
  });
});
