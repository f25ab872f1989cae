import { createEngine, type Engine, type EngineOptions } from '../../src/engine/engine.ts';
import type { TestDb } from './db.ts';

/** An engine on the test database, driven by hand (runOnce/drain), never by a background loop. */
export function engineFor(t: TestDb, opts: Partial<EngineOptions> = {}): Engine {
  return createEngine({ db: t.db, ...opts });
}

export async function start(t: TestDb, dsl: string, label?: string): Promise<string> {
  const [r] = await t.query(`SELECT df.start(${dsl}${label ? `, ${quote(label)}` : ''}) AS id`);
  return r.id;
}

export async function outcome(t: TestDb, id: string): Promise<{ status: string; result: unknown; output: string | null }> {
  const [r] = await t.query(`SELECT df.status($1) AS status, df.result($1)::jsonb AS result, output FROM df.instances WHERE id = $1`, [id]);
  return r;
}

/** Seconds after now, for moving time forward instead of waiting. */
export const later = (seconds: number, from = new Date()) => new Date(from.getTime() + seconds * 1000);

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
