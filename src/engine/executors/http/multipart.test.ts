import { describe, expect, it } from 'vitest';
import { mimeTypeProblem } from './multipart.ts';

describe('mimeTypeProblem', () => {
  it.each([
    ['text/plain', null],
    ['application/vnd.api+json', null],
    ['text/plain; charset=utf-8', null],
    ['text/plain;charset="utf-8"; format=flowed', null],
    ['image/png', null],
  ])('%s is valid', (ct, expected) => {
    expect(mimeTypeProblem(ct)).toBe(expected);
  });
  it.each(['', 'text', 'text/', '/plain', 'text/pl ain', 'text/plain\r\nX-Evil: 1', 'text/plain; charset', 'a/b; c="d'])(
    '%j is invalid',
    (ct) => {
      expect(mimeTypeProblem(ct)).not.toBeNull();
    },
  );
});
