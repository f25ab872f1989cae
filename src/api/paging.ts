/**
 * Keyset (cursor) pagination of the list routes other than GET /v1/instances (whose cursor is
 * df.list_instances'): a page is `limit` rows in a stable order, and `next_cursor` is the sort key of
 * its last row, hex of `<list>|<key parts>` so it is opaque to clients and a cursor of one list is
 * refused by another. The next page is the rows strictly after that key, so rows inserted or removed
 * between pages never make a page repeat or skip a row that was there all along.
 */
import { ApiError } from './errors.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeCursor(list: string, key: readonly (string | number)[]): string {
  const bytes = enc.encode([list, ...key.map(String)].join('\u0001'));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The key parts of `cursor` (absent: undefined); a cursor not made by `list` with `parts` parts is a 400. */
export function decodeCursor(list: string, cursor: string | undefined, parts: number): string[] | undefined {
  if (cursor === undefined) return undefined;
  const bad = () => new ApiError(400, 'invalid_query', 'cursor: not a cursor returned by this list');
  if (cursor.length % 2 !== 0) throw bad();
  let text: string;
  try {
    text = dec.decode(new Uint8Array(cursor.match(/../g)!.map((h) => parseInt(h, 16))));
  } catch {
    throw bad();
  }
  const [kind, ...key] = text.split('\u0001');
  if (kind !== list || key.length !== parts) throw bad();
  return key;
}

/** Splits the `limit + 1` rows a keyset query fetched into the page and its next_cursor. */
export function pageOf<R>(rows: R[], limit: number, list: string, keyOf: (row: R) => readonly (string | number)[]): { rows: R[]; next_cursor: string | null } {
  if (rows.length <= limit) return { rows, next_cursor: null };
  const page = rows.slice(0, limit);
  return { rows: page, next_cursor: encodeCursor(list, keyOf(page[page.length - 1]!)) };
}
