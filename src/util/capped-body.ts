/**
 * Reads a body stream up to a byte cap: the HTTP step's response (cap after decompression) and a
 * webhook's request body. Past the cap it stops reading, cancels the stream and throws BodyTooLarge,
 * so a missing or lying Content-Length costs at most the cap plus one chunk.
 */

export class BodyTooLarge extends Error {
  override name = 'BodyTooLarge';
  constructor(readonly cap: number) {
    super(`body exceeds the limit of ${cap} bytes`);
  }
}

/**
 * The declared length when it is a plain decimal Content-Length, else null. Callers pass null when
 * the declared length does not measure what is capped (e.g. an encoded response, capped decoded).
 */
export function declaredLength(headers: Headers): number | null {
  const v = headers.get('content-length');
  return v !== null && /^\d+$/.test(v.trim()) ? Number(v) : null;
}

/**
 * The whole body as bytes; throws BodyTooLarge when `declared` or the bytes read exceed `cap`.
 * A null body reads as empty.
 */
export async function readCappedBody(body: ReadableStream<Uint8Array> | null, cap: number, declared: number | null = null): Promise<Uint8Array> {
  if (declared !== null && declared > cap) {
    await body?.cancel().catch(() => undefined);
    throw new BodyTooLarge(cap);
  }
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLarge(cap);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
