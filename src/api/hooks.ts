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
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { Db, DbClient } from '../engine/db.ts';
import type { Logger } from '../log.ts';
import type { ApiEnv, RouteKit } from './kit.ts';
import { ApiError, mapDbError, sqlState, WORKFLOW_ERRORS, type ErrorStatus } from './errors.ts';
import { deliveryIdOf, HOOK_SCHEMES, verifySignature, type HookScheme } from './hook-signature.ts';
import { BodyTooLarge, declaredLength, readCappedBody } from '../util/capped-body.ts';

export const HOOK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

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

// ---- REST shapes (validated here; the OpenAPI document is generated from them) ----

export const CreateHookBody = z.strictObject({
  name: z.string().regex(HOOK_NAME, 'must be 1 to 100 characters A-Z a-z 0-9 _ . -, starting with a letter or digit'),
  workflow: z.string().min(1).max(200).describe('A named workflow (df.define_workflow / POST /v1/workflows) of the same role'),
  scheme: z.enum(HOOK_SCHEMES).describe('github: X-Hub-Signature-256; stripe: Stripe-Signature (timestamped); hmac: X-Signature-256'),
  secret: z.string().min(16).max(512).optional().describe('Generated (whsec_…) when omitted'),
  tolerance_seconds: z.number().int().min(1).max(86_400).optional().describe('stripe: largest accepted timestamp skew (default 300)'),
  max_body_bytes: z.number().int().min(1).max(16_777_216).optional().describe('Largest accepted body (default 1 MiB)'),
});
export const RotateHookBody = z.strictObject({ secret: z.string().min(16).max(512).optional() });

export const HookInfo = z.object({
  name: z.string(),
  url: z.string().describe('Path to POST deliveries to, relative to the API'),
  workflow: z.string(),
  scheme: z.enum(HOOK_SCHEMES),
  tolerance_seconds: z.number().int(),
  max_body_bytes: z.number().int(),
  created_at: z.string(),
  secret_rotated_at: z.string().nullable(),
  deliveries: z.number().int(),
  last_delivery_at: z.string().nullable(),
});
export const HookCreated = HookInfo.extend({ secret: z.string().describe('Shown once: store it in the sender now') });
export const HookDetail = HookInfo.extend({
  recent_deliveries: z.array(z.object({ delivery_id: z.string().nullable(), instance_id: z.string(), received_at: z.string() })),
});
export const HookList = z.object({ hooks: z.array(HookInfo) });
export const HookSecret = z.object({ name: z.string(), secret: z.string() });
export const HookAccepted = z.object({ instance_id: z.string(), redelivered: z.boolean() });

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

const LIST_SQL = `SELECT coalesce(json_agg(json_build_object(
                    'name', h.name, 'url', '/hooks/' || h.name, 'workflow', h.workflow, 'scheme', h.scheme,
                    'tolerance_seconds', h.tolerance_seconds, 'max_body_bytes', h.max_body_bytes,
                    'created_at', h.created_at, 'secret_rotated_at', h.secret_rotated_at,
                    'deliveries', h.deliveries, 'last_delivery_at', h.last_delivery_at) ORDER BY h.name), '[]'::json) AS hooks
                    FROM df.list_hooks() AS h`;

/** Thrown inside the start transaction when a concurrent delivery with the same id won: roll back. */
class Redelivered extends Error {}

export function mountHooks(app: Hono<ApiEnv>, deps: HookDeps): void {
  const { db, log, asRole, parse, jsonBody, ready } = deps;

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

  app.post('/hooks/:name', async (c) => {
    const name = c.req.param('name');
    const hook = HOOK_NAME.test(name) ? await lookup(name) : null;
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
    return c.json({ instance_id: result.id, redelivered: result.redelivered }, result.redelivered ? 200 : 202);
  });

  // ---- management (/v1: the bearer-auth middleware has already set the token's role) ----

  const hookName = (c: Context<ApiEnv>) => {
    const name = c.req.param('name') ?? '';
    if (!HOOK_NAME.test(name)) throw new ApiError(404, 'not_found', `no webhook named "${name.slice(0, 100)}"`);
    return name;
  };
  const oneHook = async (client: DbClient, name: string) => {
    const { rows } = await client.query<{ hooks: z.infer<typeof HookInfo>[] }>(`${LIST_SQL} WHERE h.name = $1`, [name]);
    const hook = rows[0]!.hooks[0];
    if (!hook) throw new ApiError(404, 'not_found', `no webhook named "${name}"`);
    return hook;
  };

  app.post('/v1/hooks', async (c) => {
    const body = parse(CreateHookBody, await jsonBody(c), 'body');
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

  app.get('/v1/hooks', async (c) => {
    const hooks = await asRole(c, async (client) => (await client.query<{ hooks: unknown[] }>(LIST_SQL)).rows[0]!.hooks);
    return c.json({ hooks });
  });

  app.get('/v1/hooks/:name', async (c) => {
    const name = hookName(c);
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
    return c.json(detail);
  });

  app.post('/v1/hooks/:name/rotate', async (c) => {
    const name = hookName(c);
    const body = parse(RotateHookBody, await jsonBody(c, {}), 'body');
    const secret = await asRole(c, async (client) => {
      try {
        return (await client.query<{ s: string }>('SELECT df.rotate_hook_secret($1, $2) AS s', [name, body.secret ?? null])).rows[0]!.s;
      } catch (err) {
        throw mapDbError(err, HOOK_ERRORS) ?? err;
      }
    });
    return c.json({ name, secret });
  });

  app.delete('/v1/hooks/:name', async (c) => {
    const name = hookName(c);
    await asRole(c, (client) => client.query('SELECT df.drop_hook($1)', [name]));
    return c.json({ ok: true });
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
