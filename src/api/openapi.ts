/**
 * The OpenAPI 3.1 document served at /v1/openapi.json and the interactive reference at /docs. Every
 * route defines itself with createRoute (the *-openapi.ts files) on the OpenAPIHono app, so the
 * document is generated from the same definitions that validate requests; this adds what is global:
 * the description, the bearer scheme, and the two routes outside any module (/healthz, this document).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import type { ApiApp } from './kit.ts';
import { error, ok } from './openapi-kit.ts';
import { Health } from './schemas.ts';

export const healthz = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'healthz',
  summary: 'Liveness: the API reaches the database, and whether a worker was seen recently',
  security: [],
  responses: { 200: ok(Health, 'Healthy'), 503: error('Database unreachable (`unavailable`), or no worker seen within PGFLARE_HEALTH_WORKER_MAX_AGE') },
});

const documentRoute = createRoute({
  method: 'get',
  path: '/v1/openapi.json',
  operationId: 'openapi',
  summary: 'This document',
  security: [],
  responses: { 200: ok(z.record(z.string(), z.unknown()), 'OpenAPI 3.1 document') },
});

const INFO = {
  title: 'pgflare API',
  version: '0.1.0',
  description:
    'Durable SQL workflows in PostgreSQL. Every /v1 route except this document needs `Authorization: Bearer <token>`; ' +
    'the token acts as a database role (row-level security: a role sees only its own instances). ' +
    'Errors are `{"error":{"code","message"}}`. Every answer carries `X-Request-Id` (the client\'s, when it sent one); ' +
    'a known path with a method it does not have is a 405 `method_not_allowed` with `Allow`. ' +
    'Lists are paged: `limit` rows and `next_cursor`, passed back as `cursor` for the next page. ' +
    'Interactive reference: /docs.',
};

/** Serves the document (generated once, on first request) and /docs; call after every route is defined. */
export function mountOpenApi(app: ApiApp): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A token from df.create_api_token() or PGFLARE_API_TOKENS',
  });
  let cached: unknown;
  app.openapi(documentRoute, (c) => {
    cached ??= app.getOpenAPI31Document({ openapi: '3.1.0', info: INFO, security: [{ bearer: [] }] });
    return c.json(cached as Record<string, unknown>, 200);
  });
  // The interactive reference (Swagger UI) over that document; the page loads its script and styles
  // from a CDN in the reader's browser, the server serves only this small HTML.
  app.get('/docs', swaggerUI({ url: '/v1/openapi.json', title: 'pgflare API' }));
}
