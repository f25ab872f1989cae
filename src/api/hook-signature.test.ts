import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deliveryIdOf, parseHexDigest, verifySignature, type HookScheme } from './hook-signature.ts';

const enc = new TextEncoder();
const headers = (h: Record<string, string>) => new Headers(h);
const NOW = Date.UTC(2026, 10, 25, 14, 0, 0);
const T = Math.floor(NOW / 1000);
const SECRET = 'whsec_test_secret_0123456789';
const hmac = (data: string, secret = SECRET) => createHmac('sha256', secret).update(data).digest('hex');

const verify = (scheme: HookScheme, h: Record<string, string>, body: string, secret = SECRET, toleranceSeconds = 300) =>
  verifySignature({ scheme, secret, body: enc.encode(body), headers: headers(h), nowMs: NOW, toleranceSeconds });

describe('GitHub X-Hub-Signature-256', () => {
  it("accepts GitHub's published test vector", async () => {
    // docs.github.com, "Validating webhook deliveries": secret and payload below give this digest.
    const sig = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(await verify('github', { 'X-Hub-Signature-256': sig }, 'Hello, World!', "It's a Secret to Everybody")).toEqual({ ok: true });
  });

  it('refuses a wrong digest, a changed body, a malformed header and a missing one', async () => {
    const body = '{"a":1}';
    const good = `sha256=${hmac(body)}`;
    expect(await verify('github', { 'X-Hub-Signature-256': good }, body)).toEqual({ ok: true });
    expect(await verify('github', { 'X-Hub-Signature-256': good.toUpperCase().replace('SHA256', 'sha256') }, body)).toEqual({ ok: true });
    expect(await verify('github', { 'X-Hub-Signature-256': good }, '{"a":2}')).toMatchObject({ ok: false, code: 'invalid_signature' });
    expect(await verify('github', { 'X-Hub-Signature-256': `sha256=${hmac(body, 'another-secret-0123456')}` }, body)).toMatchObject({
      ok: false,
      code: 'invalid_signature',
    });
    for (const bad of [hmac(body), `sha1=${hmac(body)}`, `sha256=${hmac(body).slice(2)}`, 'sha256=zz']) {
      expect(await verify('github', { 'X-Hub-Signature-256': bad }, body)).toMatchObject({ ok: false, code: 'invalid_signature', message: /malformed/ });
    }
    expect(await verify('github', {}, body)).toMatchObject({ ok: false, code: 'missing_signature', message: 'missing X-Hub-Signature-256 header' });
    // The generic scheme's header does not count for GitHub.
    expect(await verify('github', { 'X-Signature-256': good }, body)).toMatchObject({ ok: false, code: 'missing_signature' });
  });
});

describe('Stripe-Signature', () => {
  const body = '{"id":"evt_1","type":"x"}';
  const sig = (t: number, b = body, secret = SECRET) => `t=${t},v1=${hmac(`${t}.${b}`, secret)}`;

  it('accepts a fresh signature, also among other v1 (rolled secrets) and v0 entries', async () => {
    expect(await verify('stripe', { 'Stripe-Signature': sig(T) }, body)).toEqual({ ok: true });
    const other = hmac(`${T}.${body}`, 'old-secret-old-secret');
    expect(await verify('stripe', { 'Stripe-Signature': `t=${T},v1=${other},v1=${hmac(`${T}.${body}`)},v0=abc` }, body)).toEqual({ ok: true });
  });

  it('refuses a signature over another timestamp or body', async () => {
    const forged = `t=${T},v1=${hmac(`${T - 1}.${body}`)}`;
    expect(await verify('stripe', { 'Stripe-Signature': forged }, body)).toMatchObject({ ok: false, code: 'invalid_signature' });
    expect(await verify('stripe', { 'Stripe-Signature': sig(T) }, `${body} `)).toMatchObject({ ok: false, code: 'invalid_signature' });
  });

  it('refuses timestamps outside the tolerance, either way, once the signature holds', async () => {
    expect(await verify('stripe', { 'Stripe-Signature': sig(T - 300) }, body)).toEqual({ ok: true });
    expect(await verify('stripe', { 'Stripe-Signature': sig(T - 301) }, body)).toMatchObject({
      ok: false,
      code: 'signature_expired',
      message: 'signature timestamp is 301 s old; the tolerance is 300 s',
    });
    expect(await verify('stripe', { 'Stripe-Signature': sig(T + 301) }, body)).toMatchObject({ ok: false, code: 'timestamp_in_future' });
    expect(await verify('stripe', { 'Stripe-Signature': sig(T - 3000) }, body, SECRET, 3600)).toEqual({ ok: true });
    // A bad signature with a stale timestamp is a bad signature.
    expect(await verify('stripe', { 'Stripe-Signature': sig(T - 3000, body, 'not-the-secret-000') }, body)).toMatchObject({ code: 'invalid_signature' });
  });

  it('refuses malformed headers', async () => {
    for (const bad of ['t=1', `v1=${hmac(body)}`, `t=abc,v1=${hmac(body)}`, `t=${T},v1=nothex`, 'garbage']) {
      expect(await verify('stripe', { 'Stripe-Signature': bad }, body)).toMatchObject({ ok: false, code: 'invalid_signature', message: /malformed/ });
    }
    expect(await verify('stripe', {}, body)).toMatchObject({ ok: false, code: 'missing_signature' });
  });
});

describe('generic hmac scheme', () => {
  it('reads X-Signature-256', async () => {
    expect(await verify('hmac', { 'X-Signature-256': `sha256=${hmac('[1,2]')}` }, '[1,2]')).toEqual({ ok: true });
    expect(await verify('hmac', { 'X-Signature-256': `sha256=${hmac('[1,2]')}` }, '[1,3]')).toMatchObject({ code: 'invalid_signature' });
    expect(await verify('hmac', { 'X-Hub-Signature-256': `sha256=${hmac('[1,2]')}` }, '[1,2]')).toMatchObject({ code: 'missing_signature' });
  });
});

describe('delivery ids', () => {
  it('come from each scheme’s header, or a Stripe event’s id', () => {
    expect(deliveryIdOf('github', headers({ 'X-GitHub-Delivery': 'abc-123' }), {})).toBe('abc-123');
    expect(deliveryIdOf('github', headers({}), { id: 'x' })).toBeNull();
    expect(deliveryIdOf('stripe', headers({ 'Idempotency-Key': 'k' }), { id: 'evt_9' })).toBe('evt_9');
    expect(deliveryIdOf('stripe', headers({ 'Idempotency-Key': 'k' }), { id: 7 })).toBe('k');
    expect(deliveryIdOf('stripe', headers({ 'Webhook-Id': 'w' }), [1])).toBe('w');
    expect(deliveryIdOf('stripe', headers({}), {})).toBeNull();
    expect(deliveryIdOf('hmac', headers({ 'X-Delivery-Id': ' d1 ' }), {})).toBe('d1');
    expect(deliveryIdOf('hmac', headers({ 'X-Delivery-Id': '  ' }), {})).toBeNull();
  });
});

describe('parseHexDigest', () => {
  it('takes exactly 64 hex digits', () => {
    expect(parseHexDigest('00'.repeat(32))).toEqual(new Uint8Array(32));
    expect(parseHexDigest('ff'.repeat(32))?.[31]).toBe(255);
    expect(parseHexDigest('0'.repeat(63))).toBeNull();
    expect(parseHexDigest('g'.repeat(64))).toBeNull();
  });
});
