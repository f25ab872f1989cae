/**
 * A local stand-in for an OpenAI-style embeddings API (POST /v1/embeddings {model, input: string[]} →
 * {data: [{index, embedding}]}), for trying the example without an API key and for the tests.
 * Embeddings are deterministic: [length, vowels, spaces, first char code] / 100.
 *
 *   npx tsx examples/embeddings/fake-server.ts        # listens on 127.0.0.1:8089
 *
 * `failNext(n)` makes the next n requests answer 503, to show retries.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function embed(text: string): number[] {
  const vowels = (text.match(/[aeiou]/gi) ?? []).length;
  const spaces = (text.match(/ /g) ?? []).length;
  return [text.length, vowels, spaces, text.codePointAt(0) ?? 0].map((n) => n / 100);
}

export interface FakeEmbeddingServer {
  url: string;
  /** Every request body received, parsed. */
  requests: { model: string; input: string[] }[];
  failNext(n: number): void;
  close(): Promise<void>;
}

export async function startFakeEmbeddingServer(port = 0): Promise<FakeEmbeddingServer> {
  const requests: FakeEmbeddingServer['requests'] = [];
  let failures = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
        res.statusCode = 404;
        return res.end(JSON.stringify({ error: { message: 'not found' } }));
      }
      if (failures > 0) {
        failures -= 1;
        res.statusCode = 503;
        return res.end(JSON.stringify({ error: { message: 'overloaded, try again' } }));
      }
      let parsed: { model?: unknown; input?: unknown };
      try {
        parsed = JSON.parse(body);
      } catch {
        res.statusCode = 400;
        return res.end(JSON.stringify({ error: { message: 'body is not JSON' } }));
      }
      if (!Array.isArray(parsed.input) || !parsed.input.every((s) => typeof s === 'string')) {
        res.statusCode = 400;
        return res.end(JSON.stringify({ error: { message: 'input must be an array of strings' } }));
      }
      requests.push({ model: String(parsed.model), input: parsed.input });
      const data = parsed.input.map((text, index) => ({ object: 'embedding', index, embedding: embed(text) }));
      res.end(JSON.stringify({ object: 'list', model: parsed.model, data }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/v1/embeddings`,
    requests,
    failNext: (n) => void (failures = n),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await startFakeEmbeddingServer(Number(process.env.PORT ?? 8089));
  console.log(`fake embeddings API at ${s.url}`);
}
