/**
 * Building blocks of the route definitions (createRoute) shared by the route modules: JSON content,
 * error answers, and the answers every authenticated route can give.
 */
import type { z } from '@hono/zod-openapi';
import { ErrorResponse } from './schemas.ts';

export const json = <S extends z.ZodType>(schema: S) => ({ 'application/json': { schema } });
export const ok = <S extends z.ZodType>(schema: S, description: string) => ({ description, content: json(schema) });
export const error = (description: string) => ({ description, content: json(ErrorResponse) });
export const body = <S extends z.ZodType>(schema: S, required = true) => ({ required, content: json(schema) });

export const authErrors = {
  401: error('Missing, malformed, unknown or revoked token (`unauthorized`)'),
  403: error("The token's role may not be used (`forbidden`)"),
} as const;
export const internal = {
  500: error('Unexpected failure (`internal`); details are logged, never returned'),
  503: error('The request ran longer than the API statement timeout (`statement_timeout`)'),
} as const;
export const badQuery = { 400: error('Bad query parameter or cursor (`invalid_query`)') } as const;
export const badBody = { 400: error('Body is not JSON (`invalid_json`) or does not match the schema (`invalid_body`)') } as const;
export const locationHeader = { Location: { schema: { type: 'string' as const } } };
export const badPage = { 400: error('Bad limit or cursor (`invalid_query`)') } as const;
export const badParam = { 400: error('Bad query parameter (`invalid_query`)') } as const;
export const tooLarge = { 413: error('Body too large (`payload_too_large`)') } as const;
/** The 404 of a route on one of the role's own things, e.g. notFound('schedule'). */
export const notFound = (what: string) => ({ 404: error(`No such ${what}, or it belongs to another role (\`not_found\`)`) }) as const;

type Merged<T extends object[]> = T extends [infer H, ...infer R extends object[]] ? H & Merged<R> : unknown;
/** The error answers of an authenticated route: its own blocks (and single answers) plus authErrors and internal. */
export const routeErrors = <T extends object[]>(...blocks: T) =>
  Object.assign({}, authErrors, internal, ...blocks) as typeof authErrors & typeof internal & Merged<T>;
