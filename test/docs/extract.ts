/**
 * Finds the SQL a reader is shown in the docs, so test/docs/sql-in-docs.test.ts can run it as printed.
 *
 * - Markdown: every ```sql block, and in a ```sh block every `psql … -c "…"` and `psql … <<'SQL'` here-document. A block whose info string is
 *   `sql norun <reason>` is skipped; the reason is required.
 * - `.sql` files: the whole file is one block.
 * Statements are split on `;` outside quotes, dollar quotes and comments, each with its line in the file.
 */

export interface Statement {
  /** 1-based line in the file where the statement starts. */
  line: number;
  sql: string;
  /** A `-- comment` after the statement's `;` on the same line (e.g. the instance id it printed). */
  note?: string;
}

export interface Block {
  /** 1-based line of the block's first SQL line. */
  line: number;
  sql: string;
  /** Why it is not run (```sql norun <reason>), or undefined. */
  norun?: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^`]*)$/;

export function blocksOf(file: string, text: string): Block[] {
  if (file.endsWith('.sql')) return [{ line: 1, sql: text }];
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j];
      if (l.trim().startsWith(fence[0].repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l);
    }
    const words = info.trim().split(/\s+/);
    const lang = words[0]?.toLowerCase();
    if (lang === 'sql') {
      if (words[1] === 'norun') {
        const reason = words.slice(2).join(' ');
        if (!reason) throw new Error(`${file}:${i + 1}: a \`sql norun\` block must say why it is not run`);
        blocks.push({ line: i + 2, sql: body.join('\n'), norun: reason });
      } else {
        blocks.push({ line: i + 2, sql: body.join('\n') });
      }
    } else if (lang === 'sh' || lang === 'bash' || lang === 'shell') {
      for (let k = 0; k < body.length; k++) {
        const l = body[k];
        for (const m of l.matchAll(/\bpsql\b(?:[^"\n]|"[^"\n]*")*?\s-[A-Za-z]*c\s+"((?:[^"\\]|\\.)*)"/g)) {
          blocks.push({ line: i + 2 + k, sql: m[1].replace(/\\(["\\$`])/g, '$1') });
        }
        // psql … <<'SQL' … SQL (a quoted here-document: the shell passes it verbatim)
        const here = /\bpsql\b.*<<-?\s*'(\w+)'/.exec(l);
        if (here) {
          const end = body.findIndex((x, n) => n > k && x.trim() === here[1]);
          const stop = end < 0 ? body.length : end;
          blocks.push({ line: i + 3 + k, sql: body.slice(k + 1, stop).join('\n') });
          k = stop;
        }
      }
    }
    i = j;
  }
  return blocks;
}

/** Splits on `;` outside '…', "…", $tag$…$tag$, -- and /* *\/ comments; keeps each statement's line. */
export function statementsOf(block: Block): Statement[] {
  const s = block.sql;
  const out: Statement[] = [];
  let start = 0;
  let i = 0;
  let line = block.line;
  let startLine = block.line;
  const push = (end: number) => {
    const text = s.slice(start, end);
    const lead = text.match(/^(\s|--[^\n]*\n?)*/)?.[0] ?? '';
    const body = text.slice(lead.length).trim();
    if (!body || /^(--[^\n]*\s*)*$/.test(body)) return;
    const note = /^[ \t]*--[ \t]*([^\n]*)/.exec(s.slice(end))?.[1]?.trim();
    out.push({ line: startLine + (lead.match(/\n/g)?.length ?? 0), sql: body, ...(note ? { note } : {}) });
  };
  while (i < s.length) {
    const c = s[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === "'" || c === '"') {
      const close = s.indexOf(c, i + 1);
      const end = close < 0 ? s.length : close + 1;
      line += s.slice(i, end).split('\n').length - 1;
      i = end;
    } else if (c === '-' && s[i + 1] === '-') {
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? s.length : nl;
    } else if (c === '/' && s[i + 1] === '*') {
      const close = s.indexOf('*/', i + 2);
      const end = close < 0 ? s.length : close + 2;
      line += s.slice(i, end).split('\n').length - 1;
      i = end;
    } else if (c === '$' && /^\$[A-Za-z_]*\$/.test(s.slice(i)) && !/[A-Za-z0-9_]/.test(s[i - 1] ?? '')) {
      const tag = /^\$[A-Za-z_]*\$/.exec(s.slice(i))![0];
      const close = s.indexOf(tag, i + tag.length);
      const end = close < 0 ? s.length : close + tag.length;
      line += s.slice(i, end).split('\n').length - 1;
      i = end;
    } else if (c === ';') {
      push(i + 1);
      i++;
      start = i;
      startLine = line;
    } else {
      i++;
    }
  }
  push(s.length);
  return out;
}
