import { describe, expect, it } from 'vitest';
import { BodyTooLarge, declaredLength, readCappedBody } from './capped-body.ts';

/** A stream of the given chunks that records whether it was cancelled. */
function streamOf(chunks: string[]): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(new TextEncoder().encode(chunks[i++]));
      else c.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

describe('readCappedBody', () => {
  it('reads every chunk up to and including the cap', async () => {
    const { stream } = streamOf(['ab', 'cd', 'e']);
    expect(new TextDecoder().decode(await readCappedBody(stream, 5))).toBe('abcde');
    expect(await readCappedBody(null, 0)).toEqual(new Uint8Array(0));
  });

  it('stops reading past the cap, cancels the stream and names the cap', async () => {
    const { stream, cancelled } = streamOf(['abc', 'def', 'never read']);
    const err = await readCappedBody(stream, 5).catch((e) => e);
    expect(err).toBeInstanceOf(BodyTooLarge);
    expect(err.cap).toBe(5);
    expect(err.message).toBe('body exceeds the limit of 5 bytes');
    expect(cancelled()).toBe(true);
  });

  it('refuses a declared length over the cap before reading anything', async () => {
    const { stream, cancelled } = streamOf(['a']);
    await expect(readCappedBody(stream, 5, 6)).rejects.toBeInstanceOf(BodyTooLarge);
    expect(cancelled()).toBe(true);
  });

  it('reads a plain decimal Content-Length only', () => {
    expect(declaredLength(new Headers({ 'content-length': ' 12 ' }))).toBe(12);
    expect(declaredLength(new Headers({ 'content-length': '1e9' }))).toBeNull();
    expect(declaredLength(new Headers())).toBeNull();
  });
});
