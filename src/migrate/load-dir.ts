import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATION_FILE, parseMigrationFiles, type Migration } from './migrations.ts';

/** Reads `migrations/` from disk (scripts and tests; runtimes use the generated bundle). */
export function loadMigrationsFromDir(dir: string): Migration[] {
  const files: Record<string, string> = {};
  for (const file of readdirSync(dir)) {
    if (MIGRATION_FILE.test(file)) files[file] = readFileSync(join(dir, file), 'utf8');
  }
  return parseMigrationFiles(files);
}
