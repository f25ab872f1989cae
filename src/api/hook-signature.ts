/**
 * Webhook signatures (docs/WEBHOOKS.md): HMAC-SHA256 over the raw body bytes with Web Crypto only, so
 * the same code runs on Node 20 and workerd. Pure: no database, time passed in.
 *
 *   github  X-Hub-Signature-256: sha256=<hex of HMAC(secret, body)>; delivery id X-GitHub-Delivery
 *   stripe  Stripe-Signature: t=<unix seconds>,v1=<hex of HMAC(secret, "<t>.<body>")>[,v1=…];
 *           the timestamp must be within the hook's tolerance of now, both ways; delivery id = the
 *           event's top-level "id", else Idempotency-Key or Webhook-Id
 *   hmac    X-Signature-256: sha256=<hex of HMAC(secret, body)>; delivery id X-Delivery-Id
 *
 * The key is the secret's UTF-8 bytes as given (GitHub and Stripe both sign with the secret string,
 * `whsec_` prefix included). Digests are compared with a length-safe loop that has no early exit.
 */
import { timingSafeEqual } from './auth.ts';

export const HOOK_SCHEMES = ['github', 'stripe', 'hmac'] as const;
export type HookScheme = (typeof HOOK_SCHEMES)[number];

export type SignatureFailure = 'missing_signature' | 'invalid_signature' | 'signature_expired' | 'timestamp_in_future';

export type Verdict = { ok: true } | { ok: false; code: SignatureFailure; message: string };

export interface HeaderSource {
  get(name: string): string | null | undefined;
}

export interface VerifyInput {
  scheme: HookScheme;
  secret: string;
  body: Uint8Array;
  headers: HeaderSource;
  /** Milliseconds since the epoch. */
  nowMs: number;
  /** Stripe-style timestamps further than this from now (either way) are refused. */
  toleranceSeconds: number;
}

const encoder = new TextEncoder();

export async function hmacSha256(secret: string, ...parts: Uint8Array[]): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, concat(parts)));
}

/** 64 hex digits → 32 bytes; null for anything else. */
export function parseHexDigest(hex: string): Uint8Array | null {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The header each scheme's signature travels in. */
export const SIGNATURE_HEADER: Record<HookScheme, string> = {
  github: 'X-Hub-Signature-256',
  stripe: 'Stripe-Signature',
  hmac: 'X-Signature-256',
};

export async function verifySignature(input: VerifyInput): Promise<Verdict> {
  const header = SIGNATURE_HEADER[input.scheme];
  const value = input.headers.get(header)?.trim();
  if (!value) return fail('missing_signature', `missing ${header} header`);
  return input.scheme === 'stripe' ? verifyStripe(input, value) : verifySha256Header(input, header, value);
}

async function verifySha256Header(input: VerifyInput, header: string, value: string): Promise<Verdict> {
  const given = value.startsWith('sha256=') ? parseHexDigest(value.slice(7)) : null;
  if (!given) return fail('invalid_signature', `malformed ${header} header: expected "sha256=<64 hex digits>"`);
  const expected = await hmacSha256(input.secret, input.body);
  return timingSafeEqual(given, expected) ? { ok: true } : fail('invalid_signature', `${header} does not match the body`);
}

async function verifyStripe(input: VerifyInput, value: string): Promise<Verdict> {
  let t: string | undefined;
  const v1: Uint8Array[] = [];
  for (const item of value.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const k = item.slice(0, eq).trim();
    const v = item.slice(eq + 1).trim();
    if (k === 't') t ??= v;
    else if (k === 'v1') {
      const d = parseHexDigest(v);
      if (d) v1.push(d);
    }
  }
  if (t === undefined || !/^[0-9]{1,12}$/.test(t) || v1.length === 0 || v1.length > 8) {
    return fail('invalid_signature', 'malformed Stripe-Signature header: expected "t=<unix seconds>,v1=<64 hex digits>"');
  }
  const expected = await hmacSha256(input.secret, encoder.encode(`${t}.`), input.body);
  let match = false;
  // Every candidate is compared (no early exit): the time does not say which one matched.
  for (const d of v1) match = timingSafeEqual(d, expected) || match;
  if (!match) return fail('invalid_signature', 'Stripe-Signature does not match the body');
  // Checked only once the signature holds: a stale answer confirms nothing to a forger.
  const age = Math.floor(input.nowMs / 1000) - Number(t);
  if (age > input.toleranceSeconds) {
    return fail('signature_expired', `signature timestamp is ${age} s old; the tolerance is ${input.toleranceSeconds} s`);
  }
  if (-age > input.toleranceSeconds) {
    return fail('timestamp_in_future', `signature timestamp is ${-age} s in the future; the tolerance is ${input.toleranceSeconds} s`);
  }
  return { ok: true };
}

/**
 * The sender's delivery id, for deduplication; null when it gave none. `json` is the verified, parsed
 * body (Stripe-style events carry their id inside the signed body, which also makes it tamper-proof).
 */
export function deliveryIdOf(scheme: HookScheme, headers: HeaderSource, json: unknown): string | null {
  const header = (name: string) => headers.get(name)?.trim() || null;
  switch (scheme) {
    case 'github':
      return header('X-GitHub-Delivery');
    case 'stripe': {
      const id = json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as { id?: unknown }).id : undefined;
      return (typeof id === 'string' && id.trim()) || header('Idempotency-Key') || header('Webhook-Id');
    }
    case 'hmac':
      return header('X-Delivery-Id');
  }
}

function fail(code: SignatureFailure, message: string): Verdict {
  return { ok: false, code, message };
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
