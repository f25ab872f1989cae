import { createHash } from 'node:crypto';

/** One forward-only migration: `migrations/NNNN_name.sql`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** sha256 of the file as written, so an edited, already-applied migration is caught. */
  checksum: string;
}

export const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** Turns `{file name → text}` into ordered migrations, refusing gaps and duplicates. */
export function parseMigrationFiles(files: Record<string, string>): Migration[] {
  const migrations = Object.entries(files)
    .map(([file, sql]) => {
      const m = MIGRATION_FILE.exec(file);
      if (!m) throw new Error(`migration file name "${file}" must look like 0001_some_name.sql`);
      return { version: Number(m[1]), name: `${m[1]}_${m[2]}`, sql, checksum: checksumOf(sql) };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 0001, 0002, … without gaps; found ${m.name}`);
  });
  return migrations;
}
