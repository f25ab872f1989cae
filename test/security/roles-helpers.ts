/** Roles for the security tests: created by the superuser, set up with df.grant_usage by the df owner. */
import pg from 'pg';
import { afterAll } from 'vitest';
import { createRole, type TestDb } from '../helpers/db.ts';

export interface RoleHandle {
  name: string;
  /** The name as a quoted identifier. */
  id: string;
  pool: pg.Pool;
  /** Runs one statement as this role. */
  query<R = any>(text: string, params?: unknown[]): Promise<R[]>;
  /** df.start as this role; returns the instance id. */
  start(dsl: string): Promise<string>;
}

/** Creates a LOGIN role (password 'pw'), optionally runs df.grant_usage for it as the df owner. */
export function useRoles(t: TestDb) {
  const pools: pg.Pool[] = [];
  afterAll(async () => {
    for (const p of pools) if (!p.ended) await p.end();
  });
  return async function role(base: string, opts: { grant?: boolean; http?: boolean; create?: string } = {}): Promise<RoleHandle> {
    const name = t.role(base);
    await createRole(t, ident(name), `LOGIN PASSWORD 'pw' ${opts.create ?? ''}`);
    if (opts.grant !== false) await t.query(`SELECT df.grant_usage($1, include_http => $2)`, [name, !!opts.http]);
    const pool = new pg.Pool({ connectionString: t.url(name, 'pw'), max: 2 });
    pool.on('error', () => undefined);
    pools.push(pool);
    const query = async (text: string, params?: unknown[]) => (await pool.query(text, params)).rows;
    return {
      name,
      id: ident(name),
      pool,
      query,
      start: async (dsl: string) => (await query(`SELECT df.start(${dsl}) AS id`))[0].id,
    };
  };
}

export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
