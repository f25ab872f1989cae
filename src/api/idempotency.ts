/**
 * `Idempotency-Key` on the routes that start instances: the first answer to a (role, key) is stored
 * (df._idempotency_keys, migrations/0028) in the same transaction as the start, and for 24 hours a
 * repeat of the same request gets that answer back instead of a second instance; the same key with a
 * different request is a 422 `idempotency_key_reused`. Two identical requests at once queue on a
 * transaction-scoped advisory lock on the (role, key), so the second sees the first's committed answer.
 *
 * The table is internal: the API reads and writes it as its own role (the owner of df), dropping the
 * token's role for those two statements and taking it back before the caller's SQL runs.
 */
import type { Context } from 'hono';
import type { DbClient } from '../engine/db.ts';
import { ApiError } from './errors.ts';
import type { ApiEnv, RouteKit } from './kit.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** How long an answer is replayed; rows older than this are dead (ignored, overwritten, pruned). */
export const IDEMPOTENCY_TTL_HOURS = 24;
const KEY = /^[\x21-\x7e]{1,255}$/;

export interface Answer<T> {
  status: 201;
  body: T;
}

/** The request's Idempotency-Key, or undefined; a malformed one is a 400. */
export function idempotencyKey(c: Context<ApiEnv>): string | undefined {
  const key = c.req.header(IDEMPOTENCY_HEADER);
  if (key === undefined) return undefined;
  if (!KEY.test(key)) throw new ApiError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces');
  return key;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Runs `act` (a start, in the request's transaction as the token's role) at most once per
 * Idempotency-Key: returns its answer and whether it is a replay. Without a key it just runs `act`.
 */
export async function idempotent<T>(
  c: Context<ApiEnv>,
  kit: Pick<RouteKit, 'asRole'>,
  request: unknown,
  act: (client: DbClient) => Promise<Answer<T>>,
): Promise<Answer<T> & { replayed: boolean }> {
  const key = idempotencyKey(c);
  if (key === undefined) return { ...(await kit.asRole(c, act)), replayed: false };
  const role = c.get('role');
  const hash = await sha256Hex(`${c.req.method} ${c.req.path}\n${JSON.stringify(request ?? null)}`);
  return kit.asRole(c, async (client) => {
    const prior = await asApi(client, role, async () => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 31638886994244031))', [`${role}\n${key}`]);
      const { rows } = await client.query<{ request_hash: string; status: 201; response: T }>(
        `SELECT request_hash, status, response FROM df._idempotency_keys
          WHERE role = $1 AND key = $2 AND created_at > now() - make_interval(hours => $3)`,
        [role, key, IDEMPOTENCY_TTL_HOURS],
      );
      return rows[0];
    });
    if (prior) {
      if (prior.request_hash !== hash) {
        throw new ApiError(422, 'idempotency_key_reused', `Idempotency-Key "${key}" was used for a different request in the last ${IDEMPOTENCY_TTL_HOURS} hours`);
      }
      return { status: prior.status, body: prior.response, replayed: true };
    }
    const answer = await act(client);
    await asApi(client, role, () =>
      client.query(
        `INSERT INTO df._idempotency_keys (role, key, request_hash, status, response) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (role, key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,
                                              response = excluded.response, created_at = excluded.created_at`,
        [role, key, hash, answer.status, JSON.stringify(answer.body)],
      ),
    );
    return { ...answer, replayed: false };
  });
}

/** Runs fn as the API's own role (the session's), then acts as `role` again. */
async function asApi<R>(client: DbClient, role: string, fn: () => Promise<R>): Promise<R> {
  await client.query(`SELECT pg_catalog.set_config('role', 'none', true)`);
  const out = await fn();
  await client.query(`SELECT pg_catalog.set_config('role', $1, true)`, [role]);
  return out;
}
