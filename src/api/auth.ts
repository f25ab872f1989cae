/**
 * Bearer tokens → database roles. Web-standard crypto only (crypto.subtle), so this runs on Workers.
 *
 * Two sources, checked in this order:
 *   1. static tokens from the runtime's configuration (PGFLARE_API_TOKENS="token=role,token2=role2");
 *      compared by SHA-256 digest in constant time, every configured token every time;
 *   2. tokens stored in Postgres (df.create_api_token): only their SHA-256 is stored, looked up by
 *      df._api_token_role(hash) as the connecting role (the owner of schema df reads every role's).
 * The role is then applied per request with SET LOCAL ROLE (app.ts).
 */
import { ApiError } from './errors.ts';

export interface StaticToken {
  token: string;
  role: string;
}

const encoder = new TextEncoder();

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

export const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Equal-length byte arrays compared without an early exit. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// RFC 6750 token68 characters.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer <token>` header; 401 when missing or malformed. */
export function bearerToken(header: string | undefined | null): string {
  if (!header) throw new ApiError(401, 'unauthorized', 'missing Authorization: Bearer <token> header');
  const m = BEARER.exec(header);
  if (!m || m[1]!.length > 512) throw new ApiError(401, 'unauthorized', 'malformed Authorization header: expected "Bearer <token>"');
  return m[1]!;
}

/**
 * Parses PGFLARE_API_TOKENS: comma-separated `token=role` pairs (whitespace around items ignored). The
 * role is an exact role name. Throws on a malformed entry, naming its position, never its token.
 */
export function parseStaticTokens(value: string | undefined): StaticToken[] {
  if (!value || !value.trim()) return [];
  return value.split(',').map((item, i) => {
    const entry = item.trim();
    const eq = entry.lastIndexOf('=');
    const token = eq > 0 ? entry.slice(0, eq).trim() : '';
    const role = eq > 0 ? entry.slice(eq + 1).trim() : '';
    if (!token || !role || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
      throw new Error(`PGFLARE_API_TOKENS: entry ${i + 1} is not "token=role" (token characters: A-Z a-z 0-9 - . _ ~ + /)`);
    }
    if (token.length < 16) throw new Error(`PGFLARE_API_TOKENS: the token of entry ${i + 1} is shorter than 16 characters`);
    return { token, role };
  });
}

/** Looks a token's SHA-256 (hex) up in Postgres: the role name, or null when unknown or revoked. */
export type StoredTokenLookup = (hashHex: string) => Promise<string | null>;

export interface TokenResolver {
  /** The role a token acts as; 401 when the token is unknown or revoked. */
  resolve(token: string, lookup: StoredTokenLookup): Promise<string>;
}

export function createTokenResolver(staticTokens: StaticToken[] = []): TokenResolver {
  const digests = Promise.all(staticTokens.map(async (t) => ({ digest: await sha256(t.token), role: t.role })));
  return {
    async resolve(token, lookup) {
      const digest = await sha256(token);
      let role: string | undefined;
      for (const s of await digests) {
        // No early exit: the time taken does not depend on which (if any) token matched.
        if (timingSafeEqual(digest, s.digest) && role === undefined) role = s.role;
      }
      if (role !== undefined) return role;
      const stored = await lookup(toHex(digest));
      if (!stored) throw new ApiError(401, 'unauthorized', 'unknown or revoked token');
      return stored;
    },
  };
}
