import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { bearerToken, createTokenResolver, parseStaticTokens, sha256, timingSafeEqual, toHex } from './auth.ts';

describe('bearerToken', () => {
  it('takes the token of a Bearer header', () => {
    expect(bearerToken('Bearer pgf_abc-_')).toBe('pgf_abc-_');
    expect(bearerToken('bearer  abc==')).toBe('abc==');
  });
  it.each([undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearer a;b', `Bearer ${'a'.repeat(513)}`])('401 for %j', (h) => {
    expect(() => bearerToken(h)).toThrow(ApiError);
    try {
      bearerToken(h);
    } catch (e) {
      expect((e as ApiError).status).toBe(401);
    }
  });
});

describe('parseStaticTokens', () => {
  it('parses token=role pairs', () => {
    expect(parseStaticTokens(' abcdefghijklmnop=app , qrstuvwxyz012345=Other Role')).toEqual([
      { token: 'abcdefghijklmnop', role: 'app' },
      { token: 'qrstuvwxyz012345', role: 'Other Role' },
    ]);
    expect(parseStaticTokens(undefined)).toEqual([]);
    expect(parseStaticTokens('  ')).toEqual([]);
  });
  it('keeps base64 padding in the token', () => {
    expect(parseStaticTokens('abcdefghijklmnop==app')).toEqual([{ token: 'abcdefghijklmnop=', role: 'app' }]);
  });
  it('rejects malformed entries without echoing the token', () => {
    expect(() => parseStaticTokens('secret-token-value')).toThrow(/entry 1 is not "token=role"/);
    expect(() => parseStaticTokens('abcdefghijklmnop=app,=x')).toThrow(/entry 2/);
    expect(() => parseStaticTokens('short=app')).toThrow(/shorter than 16/);
    try {
      parseStaticTokens('secret-token-value');
    } catch (e) {
      expect((e as Error).message).not.toContain('secret');
    }
  });
});

describe('hashing', () => {
  it('sha256 hex matches the known vector', async () => {
    expect(toHex(await sha256('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('timingSafeEqual', () => {
    expect(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(timingSafeEqual(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false);
  });
});

describe('createTokenResolver', () => {
  const noDb = () => {
    throw new Error('no database expected');
  };
  it('resolves static tokens without the database', async () => {
    const r = createTokenResolver([
      { token: 'aaaaaaaaaaaaaaaa', role: 'a' },
      { token: 'bbbbbbbbbbbbbbbb', role: 'b' },
    ]);
    expect(await r.resolve('bbbbbbbbbbbbbbbb', noDb)).toBe('b');
  });
  it('asks the database by hash, and 401s when it does not know the token', async () => {
    const seen: unknown[] = [];
    const r = createTokenResolver([]);
    const lookup = async (hash: string) => (seen.push(hash), null);
    await expect(r.resolve('pgf_x', lookup)).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    expect(seen).toEqual([toHex(await sha256('pgf_x'))]);
  });
});
