/**
 * A user's Worker that drives pgflare through the SDK: the builder makes the workflow, the client
 * reaches the pgflare Worker through a service binding (its `fetch`), starts the workflow, awaits it
 * and reads it back. Bundled without any `node:` module (test/workerd/sdk-client.test.ts).
 */
import { createClient, PgflareError, seq, sql } from '../../src/sdk/index.ts';

interface Env {
  PGFLARE: { fetch(input: string, init?: RequestInit): Promise<Response> };
  TOKEN: string;
}

export default {
  async fetch(_request: Request, env: Env): Promise<Response> {
    const pf = createClient({ baseUrl: 'https://pgflare.internal/', token: env.TOKEN, fetch: (url, init) => env.PGFLARE.fetch(url, init) });
    const wf = seq(sql(`INSERT INTO effects (tag) VALUES ('from-workerd') RETURNING 6 AS n`).as('a'), sql('SELECT $a.n * 7 AS answer')).label('sdk-in-workerd');
    const started = await pf.instances.start(wf);
    const done = await pf.instances.wait(started.instance_id, { timeout: 30, interval: 0.02, maxInterval: 0.2 });
    const got = await pf.instances.get(started.instance_id);
    const missing = await pf.instances.get('deadbeef').then(
      () => null,
      (e: unknown) => (e instanceof PgflareError ? { status: e.status, code: e.code } : String(e)),
    );
    return Response.json({ started, status: done.status, result: got.result, label: got.label, nodes: got.nodes.length, missing });
  },
};
