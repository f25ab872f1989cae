import { describe, expect, it } from 'vitest';
import { decodeBase64Strict, encodeBase64 } from './base64.ts';

describe('base64', () => {
  it('decodes standard padded base64, stripping ASCII whitespace (PostgreSQL wraps at 76)', () => {
    const bytes = new Uint8Array(200).map((_, i) => i);
    const wrapped = encodeBase64(bytes).replace(/(.{76})/g, '$1\n');
    expect(wrapped).toContain('\n');
    expect([...decodeBase64Strict(wrapped)]).toEqual([...bytes]);
    expect([...decodeBase64Strict(` \r\n${encodeBase64(bytes)}\r\n\t`)]).toEqual([...bytes]);
    expect(decodeBase64Strict('')).toEqual(new Uint8Array(0));
    expect(new TextDecoder().decode(decodeBase64Strict('aGVsbG8='))).toBe('hello');
    expect(new TextDecoder().decode(decodeBase64Strict('aGk='))).toBe('hi');
    expect(new TextDecoder().decode(decodeBase64Strict('aGlp'))).toBe('hii');
  });

  it.each([
    ['aGVsbG8', 'Invalid padding'],
    ['aGVsbG8===', 'Invalid padding'],
    ['aGVs====', 'Invalid padding'],
    ['a', 'Invalid input length: 1'],
    ['aGVsb', 'Invalid input length: 5'],
    ['aGVs!G8=', 'Invalid symbol 33, offset 4.'],
    ['aG=sbG8=', 'Invalid symbol 61, offset 2.'],
    ['aGVsbG9=', 'Invalid last symbol 57, offset 6.'],
    ['aR==', 'Invalid last symbol 82, offset 1.'],
    ['aGVsbG8-', 'Invalid symbol 45, offset 7.'],
  ])('%s → %s', (input, message) => {
    expect(() => decodeBase64Strict(input)).toThrow(message);
  });

  it('encodes like the standard padded alphabet', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 100, 30000]) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 7919) & 0xff);
      expect(encodeBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    }
  });
});
