/**
 * The webhook routes' shapes (zod) and definitions (createRoute), implemented by hooks.ts: one
 * definition validates requests and makes the OpenAPI document.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { HOOK_SCHEMES } from './hook-signature.ts';
import { badBody, badPage, body, error, internal, json, locationHeader, notFound, ok, routeErrors } from './openapi-kit.ts';
import { Cursor, Limit, NextCursor, Ok, PageQuery } from './schemas.ts';

export const HOOK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export const CreateHookBody = z
  .strictObject({
    name: z.string().regex(HOOK_NAME, 'must be 1 to 100 characters A-Z a-z 0-9 _ . -, starting with a letter or digit'),
    workflow: z.string().min(1).max(200).describe('A named workflow (df.define_workflow / POST /v1/workflows) of the same role'),
    scheme: z.enum(HOOK_SCHEMES).describe('github: X-Hub-Signature-256; stripe: Stripe-Signature (timestamped); hmac: X-Signature-256'),
    secret: z.string().min(16).max(512).optional().describe('Generated (whsec_…) when omitted'),
    tolerance_seconds: z.number().int().min(1).max(86_400).optional().describe('stripe: largest accepted timestamp skew (default 300)'),
    max_body_bytes: z.number().int().min(1).max(16_777_216).optional().describe('Largest accepted body (default 1 MiB)'),
  })
  .openapi('CreateHookRequest');
export const RotateHookBody = z.strictObject({ secret: z.string().min(16).max(512).optional() }).openapi('RotateHookRequest');

export const HookInfo = z
  .object({
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
  })
  .openapi('Hook');
export const HookCreated = HookInfo.extend({ secret: z.string().describe('Shown once: store it in the sender now') }).openapi('HookCreated');
export const HookDelivery = z
  .object({ delivery_id: z.string().nullable(), instance_id: z.string(), received_at: z.string() })
  .openapi('HookDelivery');
export const HookDetail = HookInfo.extend({ recent_deliveries: z.array(HookDelivery).describe('The newest 20') }).openapi('HookDetail');
export const HookList = z.object({ hooks: z.array(HookInfo), next_cursor: NextCursor }).openapi('HookList');
export const HookDeliveries = z.object({ deliveries: z.array(HookDelivery), next_cursor: NextCursor }).openapi('HookDeliveries');
export const HookSecret = z.object({ name: z.string(), secret: z.string() }).openapi('HookSecret');
export const HookAccepted = z.object({ instance_id: z.string(), redelivered: z.boolean() }).openapi('HookAccepted');

const Params = z.object({
  name: z.string().regex(HOOK_NAME).openapi({ param: { name: 'name', in: 'path' }, description: 'Webhook name' }),
});
const hookNotFound = notFound('webhook');

export const deliverWebhook = createRoute({
  method: 'post',
  path: '/hooks/{name}',
  operationId: 'deliverWebhook',
  summary: 'Deliver a signed webhook: starts the hook’s workflow with the JSON body as $input (docs/WEBHOOKS.md)',
  description:
    'No bearer token: the signature is the authentication. github: `X-Hub-Signature-256: sha256=<hex>` (delivery id ' +
    '`X-GitHub-Delivery`); stripe: `Stripe-Signature: t=<unix>,v1=<hex>` over `<t>.<body>` (delivery id = the event `id`, ' +
    'else `Idempotency-Key` or `Webhook-Id`); hmac: `X-Signature-256: sha256=<hex>` (delivery id `X-Delivery-Id`).',
  security: [],
  // The body is a plain JSON Schema, not zod: the route reads the raw bytes and verifies the signature
  // over them before anything parses them (hooks.ts).
  request: { params: Params, body: { required: true, content: { 'application/json': { schema: { type: 'object' as const } } } } },
  responses: {
    202: ok(HookAccepted, 'Started; steps run later'),
    200: ok(HookAccepted, 'A delivery id seen before: nothing started, the first instance id (`redelivered: true`)'),
    400: error('Signed body is not a JSON object or array (`invalid_json`), or the delivery id is too long (`invalid_delivery_id`)'),
    401: error('`missing_signature`, `invalid_signature`, `signature_expired` (stripe timestamp too old), `timestamp_in_future`'),
    403: error("The hook's owner cannot start workflows (`forbidden`; details in the server log)"),
    404: error('No such webhook (`not_found`), or its workflow was dropped (`workflow_not_found`)'),
    413: error("Body larger than the hook's max_body_bytes (`payload_too_large`)"),
    415: error('Content-Type is not JSON (`unsupported_media_type`)'),
    422: error('The workflow cannot start (`invalid_workflow`)'),
    ...internal,
  },
});

export const createHook = createRoute({
  method: 'post',
  path: '/v1/hooks',
  operationId: 'createHook',
  summary: 'Register a webhook; the answer is the only place its secret is ever shown',
  request: { body: body(CreateHookBody) },
  responses: {
    201: { description: 'Created', content: json(HookCreated), headers: locationHeader },
    409: error('The name is taken, by this or another role (`conflict`)'),
    422: error('No workflow of that name for this role (`workflow_not_found`)'),
    ...routeErrors(badBody),
  },
});

export const listHooks = createRoute({
  method: 'get',
  path: '/v1/hooks',
  operationId: 'listHooks',
  summary: "The role's webhooks, without secrets, by name, a page at a time",
  request: { query: PageQuery },
  responses: {
    200: ok(HookList, 'One page of webhooks by name; pass next_cursor as cursor for the next (null on the last page)'),
    ...routeErrors(badPage),
  },
});

export const getHook = createRoute({
  method: 'get',
  path: '/v1/hooks/{name}',
  operationId: 'getHook',
  summary: 'One webhook (no secret) with its 20 latest deliveries',
  request: { params: Params },
  responses: { 200: ok(HookDetail, 'The webhook'), ...routeErrors(hookNotFound) },
});

export const hookDeliveries = createRoute({
  method: 'get',
  path: '/v1/hooks/{name}/deliveries',
  operationId: 'hookDeliveries',
  summary: 'Deliveries of one webhook, newest first, a page at a time',
  request: { params: Params, query: z.strictObject({ limit: Limit, cursor: Cursor }) },
  responses: {
    200: ok(HookDeliveries, 'One page of deliveries, newest first; pass next_cursor as cursor for the next (null on the last page)'),
    ...routeErrors(badPage, hookNotFound),
  },
});

export const deleteHook = createRoute({
  method: 'delete',
  path: '/v1/hooks/{name}',
  operationId: 'deleteHook',
  summary: 'Remove a webhook and its delivery records (started instances stay)',
  request: { params: Params },
  responses: { 200: ok(Ok, 'Removed'), ...routeErrors(hookNotFound) },
});

export const rotateHook = createRoute({
  method: 'post',
  path: '/v1/hooks/{name}/rotate',
  operationId: 'rotateHookSecret',
  summary: 'Replace the secret (generated unless given); the old one stops working at once',
  request: { params: Params, body: body(RotateHookBody, false) },
  responses: { 200: ok(HookSecret, 'The new secret, shown once'), ...routeErrors(badBody, hookNotFound) },
});
