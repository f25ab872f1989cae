// SPEC §2 (df.http / df.http_multipart), §6.3 policy, §6.4 rule 1 at DSL time, §9 pg_durable.http_policy.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

/** Runs fn on one connection with pg_durable.http_policy set (null = leave unset). */
async function withPolicy<T>(policy: string | null, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await t.owner.connect();
  try {
    if (policy !== null) await c.query(`SELECT set_config('pg_durable.http_policy', $1, false)`, [policy]);
    return await fn(c);
  } finally {
    await c.query('RESET pg_durable.http_policy').catch(() => undefined);
    c.release();
  }
}
const q1 = async (c: pg.PoolClient, sql: string, params?: unknown[]) => Object.values((await c.query(sql, params)).rows[0])[0] as string;
const config = (env: string) => {
  const node = JSON.parse(env);
  return { type: node.node_type, query: node.query as string };
};

const HTTP_DISABLED =
  "df.http() is disabled. Rebuild with the 'http-allow-azure-domains' Cargo feature to enable outbound HTTP requests.";
const MULTIPART_DISABLED =
  "df.http_multipart() is disabled. Rebuild with the 'http-allow-azure-domains' Cargo feature to enable outbound HTTP requests.";

describe('policy disabled (the default)', () => {
  it('df.http is disabled when the setting is unset', async () => {
    await withPolicy(null, async (c) => {
      await expect(c.query(`SELECT df.http('https://x.blob.core.windows.net/')`)).rejects.toMatchObject({ code: '55000', message: HTTP_DISABLED });
    });
  });

  it('disabled wins over every other error', async () => {
    await withPolicy('disabled', async (c) => {
      await expect(c.query(`SELECT df.http('ftp://x', 'BREW', NULL, NULL, 0)`)).rejects.toMatchObject({ code: '55000', message: HTTP_DISABLED });
      await expect(c.query(`SELECT df.http_multipart('ftp://x', 'GET', NULL)`)).rejects.toMatchObject({ code: '55000', message: MULTIPART_DISABLED });
    });
  });

  it("SET then RESET reads '' and falls back to disabled (§9)", async () => {
    await withPolicy('all', async (c) => {
      await c.query('RESET pg_durable.http_policy');
      await expect(c.query(`SELECT df.http('https://example.com')`)).rejects.toMatchObject({ code: '55000', message: HTTP_DISABLED });
    });
  });

  it('an unknown policy value is an error naming the setting', async () => {
    await withPolicy('everything', async (c) => {
      await expect(c.query(`SELECT df.http('https://example.com')`)).rejects.toMatchObject({
        code: '22023',
        message: "invalid pg_durable.http_policy 'everything': expected disabled, azure, azure+test, allowlist or all",
      });
    });
  });
});

describe('df.http envelope', () => {
  it('builds the config with keys in §1.2 order and compact JSON', async () => {
    await withPolicy('azure', async (c) => {
      const e = await q1(c, `SELECT df.http('https://a.blob.core.windows.net/x?y=1', 'get', '{"k": "v"}', '{"X-B": "2", "A": "1", "n": {"z": [1, 2]}}', 5)`);
      expect(e).toBe(
        '{"node_type":"HTTP","query":"{\\"url\\":\\"https://a.blob.core.windows.net/x?y=1\\",\\"method\\":\\"GET\\",' +
          '\\"body\\":\\"{\\\\\\"k\\\\\\": \\\\\\"v\\\\\\"}\\",\\"headers\\":{\\"A\\":\\"1\\",\\"n\\":{\\"z\\":[1,2]},\\"X-B\\":\\"2\\"},\\"timeout_seconds\\":5}"}',
      );
      expect(JSON.parse(config(e).query)).toEqual({
        url: 'https://a.blob.core.windows.net/x?y=1',
        method: 'GET',
        body: '{"k": "v"}',
        headers: { A: '1', n: { z: [1, 2] }, 'X-B': '2' },
        timeout_seconds: 5,
      });
    });
  });

  it('defaults: POST, no body, headers null (not {}), 30 s', async () => {
    await withPolicy('azure+test', async (c) => {
      expect(config(await q1(c, `SELECT df.http('https://httpbingo.org/get')`)).query).toBe(
        '{"url":"https://httpbingo.org/get","method":"POST","body":null,"headers":null,"timeout_seconds":30}',
      );
    });
  });

  it('keeps spaces inside header strings while compacting the rest', async () => {
    await withPolicy('all', async (c) => {
      const q = config(await q1(c, `SELECT df.http('http://h', headers => '{"Authorization": "Bearer a b", "q": "x \\" y"}')`)).query;
      expect(q).toBe('{"url":"http://h","method":"POST","body":null,"headers":{"q":"x \\" y","Authorization":"Bearer a b"},"timeout_seconds":30}');
    });
  });

  it.each(['get', 'Post', 'PUT', 'delete', 'PaTcH'])('accepts method %s and upper-cases it', async (m) => {
    await withPolicy('azure', async (c) => {
      expect(JSON.parse(config(await q1(c, `SELECT df.http('https://x.vault.azure.net', $1)`, [m])).query).method).toBe(m.toUpperCase());
    });
  });

  it.each(['HEAD', 'OPTIONS', 'get ', ''])('rejects method %j, quoting it as given', async (m) => {
    await withPolicy('azure', async (c) => {
      await expect(c.query(`SELECT df.http('https://x.vault.azure.net', $1)`, [m])).rejects.toMatchObject({
        code: '22023',
        message: `Invalid HTTP method: ${m}. Must be GET, POST, PUT, DELETE, or PATCH`,
      });
    });
  });

  it.each([0, -1])('rejects timeout %d', async (n) => {
    await withPolicy('azure', async (c) => {
      await expect(c.query(`SELECT df.http('https://x.vault.azure.net', timeout_seconds => $1)`, [n])).rejects.toMatchObject({
        code: '22023',
        message: 'Timeout must be positive',
      });
    });
  });

  it('checks scheme, then method, then timeout', async () => {
    await withPolicy('azure', async (c) => {
      await expect(c.query(`SELECT df.http('file:///etc/passwd', 'BREW', NULL, NULL, 0)`)).rejects.toMatchObject({
        message: "Blocked: unsupported URL scheme 'file'. Only http and https are allowed.",
      });
      await expect(c.query(`SELECT df.http('https://x', 'BREW', NULL, NULL, 0)`)).rejects.toMatchObject({
        message: 'Invalid HTTP method: BREW. Must be GET, POST, PUT, DELETE, or PATCH',
      });
    });
  });

  it('rejects NULL url / method / timeout (the function is not STRICT)', async () => {
    await withPolicy('all', async (c) => {
      await expect(c.query(`SELECT df.http(NULL)`)).rejects.toMatchObject({ code: '22004', message: 'df.http(): url cannot be NULL' });
      await expect(c.query(`SELECT df.http('http://h', NULL)`)).rejects.toMatchObject({ code: '22004', message: 'df.http(): method cannot be NULL' });
      await expect(c.query(`SELECT df.http('http://h', timeout_seconds => NULL)`)).rejects.toMatchObject({
        code: '22004',
        message: 'df.http(): timeout_seconds cannot be NULL',
      });
    });
  });
});

describe('URL scheme at DSL time (§6.4 rule 1)', () => {
  it.each(['azure', 'azure+test', 'allowlist'])('policy %s blocks non-http(s) schemes', async (policy) => {
    await withPolicy(policy, async (c) => {
      for (const [url, scheme] of [
        ['ftp://x.blob.core.windows.net/f', 'ftp'],
        ['FILE:///etc/passwd', 'file'],
        ['x.blob.core.windows.net/no-scheme', 'x.blob.core.windows.net/no-scheme'],
        ['', ''],
        ['gopher://a://b', 'gopher'],
      ]) {
        await expect(c.query(`SELECT df.http($1)`, [url])).rejects.toMatchObject({
          code: '22023',
          message: `Blocked: unsupported URL scheme '${scheme}'. Only http and https are allowed.`,
        });
        await expect(c.query(`SELECT df.http_multipart($1, parts => '[{"name":"a","data_b64":""}]')`, [url])).rejects.toMatchObject({
          code: '22023',
          message: `Blocked: unsupported URL scheme '${scheme}'. Only http and https are allowed.`,
        });
      }
    });
  });

  it('accepts HTTP/HTTPS in any case and does not check hosts at DSL time', async () => {
    await withPolicy('azure', async (c) => {
      expect(config(await q1(c, `SELECT df.http('HTTP://10.0.0.1/x')`)).type).toBe('HTTP');
      expect(config(await q1(c, `SELECT df.http('Https://evil.example.com')`)).type).toBe('HTTP');
    });
  });

  it('skips the check when the URL has a { placeholder', async () => {
    await withPolicy('azure', async (c) => {
      expect(JSON.parse(config(await q1(c, `SELECT df.http('{base}/x')`)).query).url).toBe('{base}/x');
      expect(JSON.parse(config(await q1(c, `SELECT df.http('ftp://{h}')`)).query).url).toBe('ftp://{h}');
    });
  });

  it('policy all skips the scheme check', async () => {
    await withPolicy('all', async (c) => {
      expect(JSON.parse(config(await q1(c, `SELECT df.http('ftp://x', 'GET')`)).query).url).toBe('ftp://x');
    });
  });
});

describe('df.http_multipart', () => {
  const parts = '[{"name": "file", "filename": "a.txt", "content_type": "text/plain", "data_b64": "aGk="}]';

  it('builds the config with parts compacted (jsonb key order) and defaults', async () => {
    await withPolicy('azure+test', async (c) => {
      expect(config(await q1(c, `SELECT df.http_multipart('https://httpbingo.org/post', parts => $1)`, [parts]))).toEqual({
        type: 'HTTP_MULTIPART',
        query:
          '{"url":"https://httpbingo.org/post","method":"POST","parts":[{"name":"file","data_b64":"aGk=","filename":"a.txt","content_type":"text/plain"}],"headers":null,"timeout_seconds":30}',
      });
    });
  });

  it('accepts PUT/PATCH, headers and timeout; does not check part shape', async () => {
    await withPolicy('azure', async (c) => {
      const q = JSON.parse(config(await q1(c, `SELECT df.http_multipart('https://x.azurewebsites.net', 'patch', '[{"bogus": 1}]', '{"A": "b"}', 7)`)).query);
      expect(q).toEqual({ url: 'https://x.azurewebsites.net', method: 'PATCH', parts: [{ bogus: 1 }], headers: { A: 'b' }, timeout_seconds: 7 });
    });
  });

  it.each(['GET', 'DELETE', 'head'])('rejects method %s', async (m) => {
    await withPolicy('azure', async (c) => {
      await expect(c.query(`SELECT df.http_multipart('https://x', $1, $2)`, [m, parts])).rejects.toMatchObject({
        code: '22023',
        message: `Invalid HTTP method for multipart: ${m}. Must be POST, PUT, or PATCH`,
      });
    });
  });

  it('rejects a non-positive timeout before looking at parts', async () => {
    await withPolicy('azure', async (c) => {
      await expect(c.query(`SELECT df.http_multipart('https://x', 'POST', NULL, NULL, 0)`)).rejects.toMatchObject({
        code: '22023',
        message: 'Timeout must be positive',
      });
    });
  });

  it.each([
    ['NULL', 'parts is required and cannot be NULL'],
    [`'null'::jsonb`, 'parts must be a JSON array of part objects'],
    [`'{"name":"a"}'::jsonb`, 'parts must be a JSON array of part objects'],
    [`'"x"'::jsonb`, 'parts must be a JSON array of part objects'],
    [`'[]'::jsonb`, 'parts must contain at least one part'],
  ])('parts %s', async (value, message) => {
    await withPolicy('azure', async (c) => {
      await expect(c.query(`SELECT df.http_multipart('https://x', parts => ${value})`)).rejects.toMatchObject({ code: '22023', message });
    });
  });
});
