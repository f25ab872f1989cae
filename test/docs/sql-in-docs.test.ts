/**
 * Every SQL call the docs show runs as printed (extract.ts says what counts as one). Each document runs in a
 * fresh clone of the migrated template, statement by statement in order, on one session of the owner (the
 * role `npm start` gives you), so a `SET` or `BEGIN` carries on to the next block as it would in psql.
 *
 * Conventions:
 * - `SELECT df.start(…);   -- 1404acde`: the comment is the id the docs printed; later statements of the
 *   same document that mention it get the id this run returned instead.
 * - ```sql norun <reason>: not run (see docs/README.md, "Conventions in these pages").
 * - An example directory runs as one document: setup.sql, then workflow.sql, then its README's SQL.
 * - A document may need roles that exist cluster-wide; they are created here, by SETUP, as the superuser.
 * Nothing here needs a worker: df.start returns at once, and the instances simply wait.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { blocksOf, statementsOf, type Statement } from './extract.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const cfg = inject('pg');

function walk(dir: string, ext: string): string[] {
  return readdirSync(dir)
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p, ext) : p.endsWith(ext) ? [p] : [];
    })
    .sort();
}

interface Doc {
  name: string;
  files: string[];
}

const docs: Doc[] = [
  { name: 'README.md', files: [join(ROOT, 'README.md')] },
  ...walk(join(ROOT, 'docs'), '.md').map((f) => ({ name: relative(ROOT, f), files: [f] })),
  ...readdirSync(join(ROOT, 'examples'))
    .filter((d) => statSync(join(ROOT, 'examples', d)).isDirectory())
    .map((d) => {
      const dir = join(ROOT, 'examples', d);
      const sql = ['setup.sql', 'workflow.sql'].map((f) => join(dir, f)).filter((f) => exists(f));
      const rest = walk(dir, '.sql').filter((f) => !sql.includes(f));
      return { name: `examples/${d}`, files: [...sql, ...rest, ...walk(dir, '.md')] };
    }),
];

function exists(f: string): boolean {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
}

/**
 * What a document assumes before its first statement: roles it names (cluster-wide, so created once by the
 * superuser and kept), and session settings its text tells the reader to make outside SQL blocks.
 */
const TENANT = `DO $$ BEGIN CREATE ROLE tenant_a LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`;
const SETUP: Record<string, { superuser?: string[]; session?: string[] }> = {
  'docs/SECURITY.md': { superuser: [TENANT] },
  'docs/SQL.md': { superuser: [TENANT] },
  // Their READMEs load workflow.sql with PGOPTIONS='-c pg_durable.http_policy=all' (df.http is checked
  // when the step is built).
  'examples/embeddings': { session: [`SET pg_durable.http_policy = 'all'`] },
  'examples/order-shipping': { session: [`SET pg_durable.http_policy = 'all'`] },
};

const admin = () => new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${cfg.port}/postgres` });
let counted = 0;
let skipped = 0;

afterAll(() => {
  console.log(`sql-in-docs: ${counted} statements run, ${skipped} blocks marked norun`);
});

describe('every SQL call in the docs runs as printed', () => {
  it.each(docs.map((d) => [d.name, d] as const))('%s', async (_name, doc) => {
    const statements: (Statement & { file: string })[] = [];
    for (const f of doc.files) {
      for (const b of blocksOf(f, readFileSync(f, 'utf8'))) {
        if (b.norun) {
          skipped++;
          continue;
        }
        statements.push(...statementsOf(b).map((s) => ({ ...s, file: relative(ROOT, f) })));
      }
    }
    if (statements.length === 0) return;

    const db = `d_${Math.random().toString(16).slice(2, 12)}`;
    const a = admin();
    await a.connect();
    await a.query(`CREATE DATABASE ${db} TEMPLATE ${cfg.template} OWNER ${cfg.owner}`);
    for (const s of SETUP[doc.name]?.superuser ?? []) await a.query(s);
    const c = new pg.Client({
      connectionString: `postgres://${cfg.owner}:${encodeURIComponent(cfg.ownerPassword)}@127.0.0.1:${cfg.port}/${db}`,
    });
    await c.connect();
    for (const s of SETUP[doc.name]?.session ?? []) await c.query(s);
    const ids = new Map<string, string>();
    const failures: string[] = [];
    try {
      for (const s of statements) {
        let sql = s.sql;
        for (const [printed, actual] of ids) sql = sql.replaceAll(printed, actual);
        let res: pg.QueryResult;
        try {
          res = await c.query(sql);
        } catch (e: any) {
          // Report every failing statement of the document, not only the first.
          failures.push(`${s.file}:${s.line}: ${e.code} ${e.message}\n  ${sql.replace(/\n/g, '\n  ')}`);
          await c.query('ROLLBACK').catch(() => undefined); // leave an aborted transaction, if any
          continue;
        }
        counted++;
        const printed = s.note?.match(/^[0-9a-f]{8}$/)?.[0];
        if (printed && /\bdf\.start(_workflow)?\s*\(/.test(sql)) {
          const value = res!.rows[0] && Object.values(res!.rows[0])[0];
          expect(value, `${s.file}:${s.line}: expected an instance id`).toMatch(/^[0-9a-f]{8}$/);
          ids.set(printed, value as string);
        }
      }
      expect(failures, failures.join('\n')).toEqual([]);
    } finally {
      await c.end();
      await a.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await a.end();
    }
  });
});
