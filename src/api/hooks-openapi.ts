/** OpenAPI entries for webhooks (merged into openapi.ts), generated from the zod shapes in hooks.ts. */
import { CreateHookBody, HookAccepted, HookCreated, HookDetail, HookInfo, HookList, HookSecret, RotateHookBody } from './hooks.ts';
import { authErrors as auth, error, internal, json, schema } from './openapi-kit.ts';

const nameParam = { name: 'name', in: 'path', required: true, description: 'Webhook name', schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$' } };

/** The webhook schemas and paths, merged into the document by openapi.ts. */
export function hookOpenApi(): { schemas: Record<string, unknown>; paths: Record<string, unknown> } {
  const notFound = { 404: error('No such webhook, or it belongs to another role (`not_found`)') };
  return {
    schemas: {
      CreateHookRequest: schema(CreateHookBody, 'input'),
      RotateHookRequest: schema(RotateHookBody, 'input'),
      Hook: schema(HookInfo),
      HookCreated: schema(HookCreated),
      HookDetail: schema(HookDetail),
      HookList: schema(HookList),
      HookSecret: schema(HookSecret),
      HookAccepted: schema(HookAccepted),
    },
    paths: {
      '/hooks/{name}': {
        post: {
          operationId: 'deliverWebhook',
          summary: 'Deliver a signed webhook: starts the hook’s workflow with the JSON body as $input (docs/WEBHOOKS.md)',
          description:
            'No bearer token: the signature is the authentication. github: `X-Hub-Signature-256: sha256=<hex>` (delivery id ' +
            '`X-GitHub-Delivery`); stripe: `Stripe-Signature: t=<unix>,v1=<hex>` over `<t>.<body>` (delivery id = the event `id`, ' +
            'else `Idempotency-Key` or `Webhook-Id`); hmac: `X-Signature-256: sha256=<hex>` (delivery id `X-Delivery-Id`).',
          security: [],
          parameters: [nameParam],
          requestBody: { required: true, content: { 'application/json': { schema: { type: ['object', 'array'] } } } },
          responses: {
            202: { description: 'Started; steps run later', content: json('HookAccepted') },
            200: { description: 'A delivery id seen before: nothing started, the first instance id (`redelivered: true`)', content: json('HookAccepted') },
            400: error('Signed body is not a JSON object or array (`invalid_json`), or the delivery id is too long (`invalid_delivery_id`)'),
            401: error('`missing_signature`, `invalid_signature`, `signature_expired` (stripe timestamp too old), `timestamp_in_future`'),
            403: error("The hook's owner cannot start workflows (`forbidden`; details in the server log)"),
            404: error('No such webhook (`not_found`), or its workflow was dropped (`workflow_not_found`)'),
            413: error("Body larger than the hook's max_body_bytes (`payload_too_large`)"),
            415: error('Content-Type is not JSON (`unsupported_media_type`)'),
            422: error('The workflow cannot start (`invalid_workflow`)'),
            ...internal,
          },
        },
      },
      '/v1/hooks': {
        post: {
          operationId: 'createHook',
          summary: 'Register a webhook; the answer is the only place its secret is ever shown',
          requestBody: { required: true, content: json('CreateHookRequest') },
          responses: {
            201: { description: 'Created', content: json('HookCreated'), headers: { Location: { schema: { type: 'string' } } } },
            400: error('Bad body (`invalid_json`, `invalid_body`)'),
            ...auth,
            409: error('The name is taken, by this or another role (`conflict`)'),
            422: error('No workflow of that name for this role (`workflow_not_found`)'),
            ...internal,
          },
        },
        get: {
          operationId: 'listHooks',
          summary: "The role's webhooks, without secrets",
          responses: { 200: { description: 'Webhooks by name', content: json('HookList') }, ...auth, ...internal },
        },
      },
      '/v1/hooks/{name}': {
        get: {
          operationId: 'getHook',
          summary: 'One webhook (no secret) with its 20 latest deliveries',
          parameters: [nameParam],
          responses: { 200: { description: 'The webhook', content: json('HookDetail') }, ...auth, ...notFound, ...internal },
        },
        delete: {
          operationId: 'deleteHook',
          summary: 'Remove a webhook and its delivery records (started instances stay)',
          parameters: [nameParam],
          responses: { 200: { description: 'Removed', content: json('Ok') }, ...auth, ...notFound, ...internal },
        },
      },
      '/v1/hooks/{name}/rotate': {
        post: {
          operationId: 'rotateHookSecret',
          summary: 'Replace the secret (generated unless given); the old one stops working at once',
          parameters: [nameParam],
          requestBody: { required: false, content: json('RotateHookRequest') },
          responses: {
            200: { description: 'The new secret, shown once', content: json('HookSecret') },
            400: error('Bad body (`invalid_json`, `invalid_body`)'),
            ...auth,
            ...notFound,
            ...internal,
          },
        },
      },
    },
  };
}
