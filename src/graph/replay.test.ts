import { describe, expect, it } from 'vitest';
import { recordedText, replayOf } from './replay.ts';

describe('recordedText', () => {
  it('prefers the text a scope still holds when it is the same value (jsonb reorders keys and adds spaces)', () => {
    const exact = '{"rows":[{"zeta":1,"a":2}],"row_count":1}';
    const stored = '{"rows": [{"a": 2, "zeta": 1}], "row_count": 1}';
    expect(recordedText(stored, [exact])).toBe(exact);
  });

  it('ignores a held text of another value and falls back to the stored JSON, compact', () => {
    const stored = '{"rows": [{"a": 2}], "row_count": 1}';
    expect(recordedText(stored, ['{"rows":[{"a":3}],"row_count":1}'])).toBe('{"rows":[{"a":2}],"row_count":1}');
  });

  it('a JSON string holding no JSON was a plain text; a JSON string holding JSON stays a string', () => {
    expect(recordedText('"done"')).toBe('done');
    expect(recordedText('"[1]"')).toBe('"[1]"');
    expect(recordedText('12345678901234567890')).toBe('12345678901234567890');
  });
});

describe('replayOf', () => {
  const nodes = [
    { id: 'a', status: 'completed' as const, stamp: 'i::1::l::3', state: null },
    { id: 'b', status: 'completed' as const, stamp: 'i::1::l::2', state: null },
    { id: 'c', status: 'pending' as const, stamp: null, state: null },
  ];
  const done = new Map([
    ['a', 'A'],
    ['b', 'B'],
  ]);

  it('replays a leaf once, only under the stamp it completed with', () => {
    const r = replayOf(nodes, done);
    expect(r.take('b', 'i::1::l::3')).toBeUndefined();
    expect(r.take('a', 'i::1::l::3')).toBe('A');
    expect(r.take('a', 'i::1::l::3')).toBeUndefined();
    expect(r.take('c', 'i::1::l::3')).toBeUndefined();
  });

  it('reopens a scope in the newest generation its rows were stamped with', () => {
    const r = replayOf(nodes, done);
    expect(r.generation('i::1::l')).toBe(3);
    expect(r.generation('i::1::x')).toBeUndefined();
  });
});
