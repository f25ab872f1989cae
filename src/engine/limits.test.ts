import { describe, expect, it } from 'vitest';
import { capStepResult, DEFAULT_MAX_RESULT_BYTES, resultTooLargeError, utf8Length } from './limits.ts';

describe('utf8Length', () => {
  it.each(['', 'abc', 'é', '€', '😀', 'a\u0000b', '\ud800', '\udc00x', 'x😀é€'])('%j matches TextEncoder', (s) => {
    expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
  });
});

describe('capStepResult', () => {
  it('passes failures and results up to the limit through, byte-exact at the edge', () => {
    expect(capStepResult({ ok: false, error: 'x' }, 1)).toEqual({ ok: false, error: 'x' });
    expect(capStepResult({ ok: true, resultText: 'abcd' }, 4)).toEqual({ ok: true, resultText: 'abcd' });
    expect(capStepResult({ ok: true, resultText: 'éé' }, 4)).toEqual({ ok: true, resultText: 'éé' });
  });

  it('fails a result one byte over with an error naming the limit', () => {
    expect(capStepResult({ ok: true, resultText: 'abcde' }, 4)).toEqual({ ok: false, error: resultTooLargeError(5, 4) });
    expect(capStepResult({ ok: true, resultText: 'ééé' }, 5)).toEqual({ ok: false, error: resultTooLargeError(6, 5) });
    expect(resultTooLargeError(6, 5)).toContain('PGFLARE_MAX_RESULT_BYTES');
  });

  it('defaults to 16 MiB', () => {
    expect(DEFAULT_MAX_RESULT_BYTES).toBe(16 * 1024 * 1024);
    expect(capStepResult({ ok: true, resultText: 'x'.repeat(DEFAULT_MAX_RESULT_BYTES + 1) }).ok).toBe(false);
    expect(capStepResult({ ok: true, resultText: 'x'.repeat(DEFAULT_MAX_RESULT_BYTES) }).ok).toBe(true);
  });
});
