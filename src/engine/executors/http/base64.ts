/**
 * Base64 for HTTP_MULTIPART parts and binary response bodies: strict decoding like Rust's base64
 * STANDARD engine (pg_durable's), and standard padded encoding.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(256).fill(-1);
for (let k = 0; k < 64; k++) B64_INDEX[B64.charCodeAt(k)] = k;

export class Base64Error extends Error {
  override name = 'Base64Error';
}

/**
 * Decodes standard, padded base64 after removing ASCII whitespace (PostgreSQL's `encode(…,
 * 'base64')` wraps lines at 76). Canonical padding and zero trailing bits are required. Throws
 * Base64Error with the base64 crate's wording (offsets are byte offsets in the stripped input).
 */
export function decodeBase64Strict(text: string): Uint8Array {
  const raw = new TextEncoder().encode(text);
  const s = raw.filter((b) => !(b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d));
  let padStart = s.length;
  for (let i = 0; i < s.length; i++) {
    const b = s[i];
    if (b === 0x3d) {
      if (padStart === s.length) padStart = i;
    } else if (padStart !== s.length || B64_INDEX[b] < 0) {
      // A symbol after padding, or outside the alphabet.
      const at = padStart !== s.length && B64_INDEX[b] >= 0 ? padStart : i;
      throw new Base64Error(`Invalid symbol ${s[at]}, offset ${at}.`);
    }
  }
  const dataLen = padStart;
  const pad = s.length - padStart;
  if (dataLen % 4 === 1) throw new Base64Error(`Invalid input length: ${s.length}`);
  if (pad > 2 || (dataLen + pad) % 4 !== 0 || (dataLen % 4 === 0 && pad !== 0)) throw new Base64Error('Invalid padding');
  const rem = dataLen % 4;
  if (rem === 2 && (B64_INDEX[s[dataLen - 1]] & 0x0f) !== 0) {
    throw new Base64Error(`Invalid last symbol ${s[dataLen - 1]}, offset ${dataLen - 1}.`);
  }
  if (rem === 3 && (B64_INDEX[s[dataLen - 1]] & 0x03) !== 0) {
    throw new Base64Error(`Invalid last symbol ${s[dataLen - 1]}, offset ${dataLen - 1}.`);
  }
  const out = new Uint8Array(Math.floor((dataLen * 3) / 4));
  let o = 0;
  for (let i = 0; i + 4 <= dataLen; i += 4) {
    const n = (B64_INDEX[s[i]] << 18) | (B64_INDEX[s[i + 1]] << 12) | (B64_INDEX[s[i + 2]] << 6) | B64_INDEX[s[i + 3]];
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  const tail = dataLen - rem;
  if (rem === 2) {
    out[o++] = ((B64_INDEX[s[tail]] << 2) | (B64_INDEX[s[tail + 1]] >> 4)) & 0xff;
  } else if (rem === 3) {
    const n = (B64_INDEX[s[tail]] << 10) | (B64_INDEX[s[tail + 1]] << 4) | (B64_INDEX[s[tail + 2]] >> 2);
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  return out;
}

/** Standard, padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  const chunks: string[] = [];
  let line = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    line += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
    if (line.length >= 8192) {
      chunks.push(line);
      line = '';
    }
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    line += `${B64[n >> 18]}${B64[(n >> 12) & 63]}==`;
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    line += `${B64[n >> 18]}${B64[(n >> 12) & 63]}${B64[(n >> 6) & 63]}=`;
  }
  chunks.push(line);
  return chunks.join('');
}
