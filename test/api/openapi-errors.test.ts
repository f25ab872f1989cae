/**
 * The error answers of every route in the OpenAPI document: each is the Error object (ErrorResponse), and the
 * set of them (status and description per operation) is pinned in a snapshot, so folding the route
 * definitions' error blocks (src/api/openapi-kit.ts) cannot change the document unseen.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();

describe('OpenAPI error responses', () => {
  it('every 4xx/5xx answer of every operation is the Error object, as pinned', async () => {
    const doc = (await (await createApp({ db: t.db }).request('/v1/openapi.json')).json()) as {
      paths: Record<string, Record<string, { operationId: string; responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }> }>>;
    };
    const errors: Record<string, Record<string, string>> = {};
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, r] of Object.entries(op.responses)) {
          if (Number(status) < 400) continue;
          expect(r.content?.['application/json']?.schema, `${method} ${path} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
          (errors[`${method.toUpperCase()} ${path}`] ??= {})[status] = r.description;
        }
      }
    }
    expect(Object.keys(errors).length).toBeGreaterThan(20);
    await expect(JSON.stringify(errors, null, 2) + '\n').toMatchFileSnapshot('__snapshots__/openapi-errors.json');
  });
});
