import type { DbClient } from '../engine/db.ts';

/**
 * A deterministic text dump of everything pgflare installs (schema df and its operators), built from
 * the catalogs so it needs no pg_dump binary. test/schema.sql holds the reviewed copy; a test diffs it,
 * so every change to a table, function body, grant or policy shows up in review.
 */
export async function dumpSchema(client: DbClient, operatorSchema = 'public'): Promise<string> {
  const sections: string[] = [];
  const add = async (title: string, sql: string, params: unknown[] = []) => {
    const { rows } = await client.query<{ line: string }>(sql, params);
    sections.push(`-- ${title}\n${rows.map((r) => r.line).join('\n')}`);
  };
  // The owner's name differs between installs, so ACLs name it "<owner>".
  const owner = `(SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'df')`;
  const acl = (col: string) => `replace(coalesce(${col}::text, 'default'), ${owner} || '=', '<owner>=')`;

  await add('schema', `SELECT 'schema df acl ' || replace(${acl('nspacl')}, '/' || ${owner}, '/<owner>') AS line FROM pg_namespace WHERE nspname = 'df'`);
  await add(
    'tables and columns',
    `SELECT format('%s %s.%s %s%s%s', CASE c.relkind WHEN 'r' THEN 'table' ELSE c.relkind::text END, n.nspname, c.relname,
              a.attnum || ':' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod),
              CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
              coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) AS line
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
      WHERE n.nspname = 'df' AND c.relkind IN ('r', 'v', 'p')
      ORDER BY c.relname, a.attnum`,
  );
  await add(
    'table options and grants',
    `SELECT format('table df.%s rls=%s force=%s acl=%s options=%s', c.relname, c.relrowsecurity, c.relforcerowsecurity,
              replace(${acl('c.relacl')}, '/' || ${owner}, '/<owner>'), coalesce(c.reloptions::text, '{}')) AS line
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'df' AND c.relkind IN ('r', 'v', 'p') ORDER BY c.relname`,
  );
  await add(
    'constraints',
    `SELECT format('constraint %s on df.%s: %s%s', co.conname, c.relname, pg_get_constraintdef(co.oid),
              CASE WHEN co.convalidated THEN '' ELSE ' (not validated)' END) AS line
       FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'df' ORDER BY c.relname, co.conname`,
  );
  await add(
    'indexes',
    `SELECT pg_get_indexdef(i.indexrelid) AS line
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'df' ORDER BY c.relname`,
  );
  await add(
    'policies',
    `SELECT format('policy %s on df.%s for %s using (%s) with check (%s)', policyname, tablename, cmd, qual, with_check) AS line
       FROM pg_policies WHERE schemaname = 'df' ORDER BY tablename, policyname`,
  );
  await add(
    'operators',
    `SELECT format('operator %s.%s(%s, %s) -> %s', n.nspname, o.oprname,
              coalesce(format_type(nullif(o.oprleft, 0), NULL), 'none'), format_type(o.oprright, NULL), o.oprcode::regproc) AS line
       FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace JOIN pg_proc p ON p.oid = o.oprcode
       JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE n.nspname = $1 AND pn.nspname = 'df' ORDER BY 1`,
    [operatorSchema],
  );
  await add(
    'functions',
    `SELECT format(E'-- acl %s\\n%s%s', replace(replace(${acl('p.proacl')}, '/' || ${owner}, '/<owner>'), '"' || ${owner} || '"', '<owner>'),
              coalesce(E'-- comment ' || replace(obj_description(p.oid, 'pg_proc'), E'\\n', ' ') || E'\\n', ''),
              pg_get_functiondef(p.oid)) AS line
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'df' ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)`,
  );
  return sections.join('\n\n') + '\n';
}
