/**
 * Building blocks of the OpenAPI document shared by its pieces (openapi.ts, hooks-openapi.ts), so
 * neither imports the other's values: zod → JSON Schema, references, and the common error answers.
 */
import { z } from 'zod';

export const schema = (t: z.ZodType, io: 'input' | 'output' = 'output') => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(t, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
export const error = (description: string) => ({ description, content: json('Error') });

export const authErrors = { 401: error('Missing, malformed, unknown or revoked token (`unauthorized`)'), 403: error("The token's role may not be used (`forbidden`)") };
export const internal = {
  500: error('Unexpected failure (`internal`); details are logged, never returned'),
  503: error('The request ran longer than the API statement timeout (`statement_timeout`)'),
};
