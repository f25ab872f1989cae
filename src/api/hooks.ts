/**
 * Webhooks (docs/WEBHOOKS.md).
 *
 * `POST /hooks/:name` is outside /v1 bearer auth: the signature is the authentication. It looks the hook
 * up (as the API's connecting role, the only one that reads secrets), reads the raw body up to the hook's
 * limit, verifies the signature over those exact bytes BEFORE parsing anything, then in ONE transaction
 * as the hook's owner records the delivery and calls df.start_workflow(workflow, body, 'hook:<name>').
 * It answers at once: 202 {instance_id} for a new instance, 200 {instance_id, redelivered: true} when
 * the (hook, delivery id) pair was seen before. Steps never run inside the request: df.start_workflow
 * makes the root node ready and NOTIFYs the Node worker; the Workers runtime sends the queue message
 * from the app's onReady port after the response (src/runtime/worker/handlers.ts).
 *
 * `/v1/hooks` (bearer auth, as the token's role) manages them: create (the secret is in the 201 answer
 * and nowhere else, ever), list, get, rotate the secret, delete.
 */
import type { z } from '@hono/zod-openapi';
import type { Db, DbClient } from '../engine/db.ts';
import type { Logger } from '../log.ts';
import type { ApiApp, RouteKit } from './kit.ts';
import { ApiError, mapDbError, sqlState, WORKFLOW_ERRORS, type ErrorStatus } from './errors.ts';
import { deliveryIdOf, verifySignature, type HookScheme } from './hook-signature.ts';
import * as r from './hooks-openapi.ts';
import { decodeCursor, pageOf } from './paging.ts';

import { BodyTooLarge, declaredLength, readCappedBody } from '../util/capped-body.ts';


export interface HookDeps extends RouteKit {
  db: Db;
  log?: Logger;
  /** The clock signatures' timestamps are checked against (ms since the epoch); tests move it. */
  now: () => number;
}

interface HookRow {
  id: string;
  owner: string;
  workflow: string;
  scheme: HookScheme;
  secret: string;
  tolerance_seconds: number;
  max_body_bytes: number;
}

const HOOK_ERRORS: Record<string, [ErrorStatus, string]> = {
  '22023': [400, 'invalid_body'],
  '22004': [400, 'invalid_body'],
};

const START_ERRORS: Record<string, [ErrorStatus, string]> = {
  ...WORKFLOW_ERRORS,
  P0002: [404, 'workflow_not_found'],
  // Valid JSON that jsonb refuses (a \u0000 in a string).
  '22P05': [400, 'invalid_json'],
  '22P02': [400, 'invalid_json'],
};

/** The hooks of `h` (a subquery over df.list_hooks()) as one JSON array, by name in byte order. */
const hooksJson = (from: string) => `SELECT coalesce(json_agg(json_build_object(
                    'name', h.name, 'url', '/hooks/' || h.name, 'workflow', h.workflow, 'scheme', h.scheme,
                    'tolerance_seconds', h.tolerance_seconds, 'max_body_bytes', h.max_body_bytes,
                    'created_at', h.created_at, 'secret_rotated_at', h.secret_rotated_at,
                    'deliveries', h.deliveries, 'last_delivery_at', h.last_delivery_at) ORDER BY h.name COLLATE "C"), '[]'::json) AS hooks
                    FROM ${from} AS h`;

/** Thrown inside the start transaction when a concurrent delivery with the same id won: roll back. */
class Redelivered extends Error {}

export function mountHooks(app: ApiApp, deps: HookDeps): void {
  const { db, log, asRole, ready } = deps;

  const lookup = (name: string) =>
    db.withClient(async (client) => {
      try {
        return (await client.query<HookRow>('SELECT * FROM df._hook_for_delivery($1)', [name])).rows[0] ?? null;
      } catch (err) {
        // Only the owner of schema df reads hook secrets: a deployment problem, not the caller's.
        if (sqlState(err) === '42501') throw new Error(`the API's database role cannot read df._hooks (connect as the owner of schema df): ${(err as Error).message}`);
        throw err;
      }
    });

  const priorInstance = async (client: DbClient, hookId: string, deliveryId: string) =>
    (await client.query<{ instance_id: string }>('SELECT instance_id FROM df.hook_deliveries WHERE hook_id = $1 AND delivery_id = $2', [hookId, deliveryId]))
      .rows[0]?.instance_id;

  app.openapi(r.deliverWebhook, async (c) => {
    const { name } = c.req.valid('param');
    const hook = await lookup(name);
    if (!hook) throw new ApiError(404, 'not_found', `no webhook named "${name.slice(0, 100)}"`);

    const type = c.req.header('Content-Type');
    if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
      throw new ApiError(415, 'unsupported_media_type', 'webhook bodies must be JSON: send Content-Type: application/json');
    }
    const body = await readBody(c.req.raw, hook.max_body_bytes);

    const verdict = await verifySignature({
      scheme: hook.scheme,
      secret: hook.secret,
      body,
      headers: c.req.raw.headers,
      nowMs: deps.now(),
      toleranceSeconds: hook.tolerance_seconds,
    });
    if (!verdict.ok) throw new ApiError(401, verdict.code, verdict.message);

    const { text, value } = parseJson(body);
    const deliveryId = deliveryIdOf(hook.scheme, c.req.raw.headers, value);
    if (deliveryId !== null && deliveryId.length > 200) throw new ApiError(400, 'invalid_delivery_id', 'the delivery id is longer than 200 characters');

    c.set('role', hook.owner);
    const asOwner = <T>(fn: (client: DbClient) => Promise<T>) =>
      asRole(c, fn).catch((err: unknown) => {
        const api = err instanceof ApiError ? err : mapDbError(err, START_ERRORS);
        // The owner cannot act (role gone, no LOGIN, not grantable to the API): the operator's problem;
        // the sender gets no role names.
        if (api?.status === 403) {
          c.var.log?.warn('webhook: its owner cannot start workflows', { hook: name, error: api.message });
          throw new ApiError(403, 'forbidden', `webhook "${name}" cannot start its workflow; see the server log`);
        }
        throw api ?? err;
      });

    let result: { id: string; redelivered: boolean };
    try {
      result = await asOwner(async (client) => {
        if (deliveryId !== null) {
          const prior = await priorInstance(client, hook.id, deliveryId);
          if (prior) return { id: prior, redelivered: true };
        }
        const { rows } = await client.query<{ id: string }>('SELECT df.start_workflow($1, $2::jsonb, $3) AS id', [hook.workflow, text, `hook:${name}`]);
        const id = rows[0]!.id;
        // A concurrent delivery of the same id waits here for the first to commit, then inserts nothing.
        const ins = await client.query(
          `INSERT INTO df.hook_deliveries (hook_id, delivery_id, instance_id) VALUES ($1, $2, $3)
           ON CONFLICT (hook_id, delivery_id) DO NOTHING`,
          [hook.id, deliveryId, id],
        );
        if (!ins.rowCount) throw new Redelivered();
        return { id, redelivered: false };
      });
    } catch (err) {
      if (!(err instanceof Redelivered)) throw err;
      // The instance started above was rolled back with the transaction; answer with the winner's.
      const prior = await asOwner((client) => priorInstance(client, hook.id, deliveryId!));
      if (!prior) throw new Error('webhook: a concurrent delivery won, but its row is gone');
      result = { id: prior, redelivered: true };
    }
    if (!result.redelivered) ready(result.id, c.var.log);
    const accepted = { instance_id: result.id, redelivered: result.redelivered };
    return result.redelivered ? c.json(accepted, 200) : c.json(accepted, 202);
  });

  // ---- management (/v1: the bearer-auth middleware has already set the token's role) ----

  const oneHook = async (client: DbClient, name: string) => {
    const { rows } = await client.query<{ hooks: z.infer<typeof r.HookInfo>[] }>(`${hooksJson('df.list_hooks()')} WHERE h.name = $1`, [name]);
    const hook = rows[0]!.hooks[0];
    if (!hook) throw new ApiError(404, 'not_found', `no webhook named "${name}"`);
    return hook;
  };

  app.openapi(r.createHook, async (c) => {
    const body = c.req.valid('json');
    const created = await asRole(c, async (client) => {
      try {
        const { rows } = await client.query<{ secret: string }>('SELECT df.create_hook($1, $2, $3, $4, $5, $6) AS secret', [
          body.name,
          body.workflow,
          body.scheme,
          body.secret ?? null,
          body.tolerance_seconds ?? 300,
          body.max_body_bytes ?? 1_048_576,
        ]);
        return { ...(await oneHook(client, body.name)), secret: rows[0]!.secret };
      } catch (err) {
        throw mapDbError(err, { ...HOOK_ERRORS, P0002: [422, 'workflow_not_found'] }) ?? err;
      }
    });
    return c.json(created, 201, { Location: `/v1/hooks/${created.name}` });
  });

  // Keyset on the name (unique across roles), in byte order as the cursor compares it.
  app.openapi(r.listHooks, async (c) => {
    const q = c.req.valid('query');
    const after = decodeCursor('hooks', q.cursor, 1)?.[0] ?? null;
    const page = await asRole(c, async (client) => {
      const from = `(SELECT * FROM df.list_hooks() AS x WHERE $1::text IS NULL OR x.name COLLATE "C" > $1 ORDER BY x.name COLLATE "C" LIMIT $2)`;
      const { rows } = await client.query<{ hooks: z.infer<typeof r.HookInfo>[] }>(hooksJson(from), [after, q.limit + 1]);
      return pageOf(rows[0]!.hooks, q.limit, 'hooks', (h) => [h.name]);
    });
    return c.json({ hooks: page.rows, next_cursor: page.next_cursor }, 200);
  });

  // Keyset on (received_at, instance_id) descending: one instance per delivery, so the pair is unique.
  app.openapi(r.hookDeliveries, async (c) => {
    const { name } = c.req.valid('param');
    const q = c.req.valid('query');
    const after = decodeCursor('deliveries', q.cursor, 2);
    const page = await asRole(c, async (client) => {
      await oneHook(client, name);
      const { rows } = await client.query<{ list: { delivery_id: string | null; instance_id: string; received_at: string; at: string }[] }>(
        `SELECT coalesce(json_agg(json_build_object('delivery_id', r.delivery_id, 'instance_id', r.instance_id,
                                                    'received_at', r.received_at, 'at', r.at)
                                  ORDER BY r.received_at DESC, r.instance_id COLLATE "C" DESC), '[]'::json) AS list
           FROM (SELECT d.delivery_id, d.instance_id, d.received_at, to_char(d.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS at
                   FROM df.hook_deliveries AS d JOIN df._hooks AS h ON h.id = d.hook_id
                  WHERE h.name = $1
                    AND ($2::text IS NULL OR (d.received_at, d.instance_id COLLATE "C") < (($2::text || 'Z')::timestamptz, $3::text COLLATE "C"))
                  ORDER BY d.received_at DESC, d.instance_id COLLATE "C" DESC LIMIT $4) AS r`,
        [name, after?.[0] ?? null, after?.[1] ?? null, q.limit + 1],
      );
      return pageOf(rows[0]!.list, q.limit, 'deliveries', (d) => [d.at, d.instance_id]);
    });
    return c.json({ deliveries: page.rows.map(({ at: _at, ...d }) => d), next_cursor: page.next_cursor }, 200);
  });

  app.openapi(r.getHook, async (c) => {
    const { name } = c.req.valid('param');
    const detail = await asRole(c, async (client) => {
      const hook = await oneHook(client, name);
      const { rows } = await client.query<{ recent: unknown[] }>(
        `SELECT coalesce(json_agg(json_build_object('delivery_id', r.delivery_id, 'instance_id', r.instance_id,
                                                    'received_at', r.received_at) ORDER BY r.received_at DESC), '[]'::json) AS recent
           FROM (SELECT d.delivery_id, d.instance_id, d.received_at
                   FROM df.hook_deliveries AS d JOIN df._hooks AS h ON h.id = d.hook_id
                  WHERE h.name = $1 ORDER BY d.received_at DESC LIMIT 20) AS r`,
        [name],
      );
      return { ...hook, recent_deliveries: rows[0]!.recent };
    });
    return c.json(detail as never, 200);
  });

  app.openapi(r.rotateHook, async (c) => {
    const { name } = c.req.valid('param');
    const body = c.req.valid('json');
    const secret = await asRole(c, async (client) => {
      try {
        return (await client.query<{ s: string }>('SELECT df.rotate_hook_secret($1, $2) AS s', [name, body.secret ?? null])).rows[0]!.s;
      } catch (err) {
        throw mapDbError(err, HOOK_ERRORS) ?? err;
      }
    });
    return c.json({ name, secret }, 200);
  });

  app.openapi(r.deleteHook, async (c) => {
    const { name } = c.req.valid('param');
    await asRole(c, (client) => client.query('SELECT df.drop_hook($1)', [name]));
    return c.json({ ok: true as const }, 200);
  });
}

/**
 * The raw body, refused with 413 past `max` bytes: by Content-Length before reading, and while
 * streaming (a missing or lying Content-Length reads at most max + one chunk).
 */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  try {
    return await readCappedBody(req.body, max, declaredLength(req.headers));
  } catch (e) {
    if (e instanceof BodyTooLarge) throw new ApiError(413, 'payload_too_large', `request body larger than this webhook's limit of ${max} bytes`);
    throw e;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The verified body as a JSON object or array (the workflow's $input); 400 for anything else. */
export function parseJson(body: Uint8Array): { text: string; value: unknown } {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(body);
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'webhook body is not valid UTF-8 JSON');
  }
  if (value === null || typeof value !== 'object') {
    throw new ApiError(400, 'invalid_json', 'webhook body must be a JSON object or array');
  }
  return { text, value };
}
