/**
 * The SDK inside real workerd: a second Worker (test/workerd/sdk-client-entry.ts, bundled for the
 * `neutral` platform with nothing external, so any `node:` import fails the build) uses the builder and
 * the client against the pgflare Worker through a service binding. Miniflare's local queue delivers
 * the pgflare Worker's step messages by itself; the client's `wait` polls the API until it is done.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWsProxy, type WsProxy } from '../../scripts/ws-proxy.ts';
import { useTestDb } from '../helpers/db.ts';
import { bundleWorker, COMPATIBILITY_DATE, COMPATIBILITY_FLAGS, ROOT } from './build.ts';
import { QUEUE_NAME } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-sdk-token-0000';
let mf: Miniflare;
let proxy: WsProxy;
let clientBytes = 0;

beforeAll(async () => {
  await t.query(`CREATE TABLE effects (tag text NOT NULL)`);
  const dir = mkdtempSync(join(tmpdir(), 'pgflare-sdk-'));
  const clientPath = join(dir, 'client.mjs');
  await build({
    entryPoints: [resolve(ROOT, 'test/workerd/sdk-client-entry.ts')],
    outfile: clientPath,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    logLevel: 'silent',
  });
  clientBytes = readFileSync(clientPath).length;
  const pgflare = await bundleWorker('test/workerd/entry.ts');
  proxy = await startWsProxy();
  mf = new Miniflare({
    workers: [
      {
        name: 'client',
        modules: true,
        scriptPath: clientPath,
        modulesRoot: dir,
        compatibilityDate: COMPATIBILITY_DATE,
        bindings: { TOKEN },
        serviceBindings: { PGFLARE: 'pgflare' },
      },
      {
        name: 'pgflare',
        modules: true,
        scriptPath: pgflare.path,
        modulesRoot: dirname(pgflare.path),
        compatibilityDate: COMPATIBILITY_DATE,
        compatibilityFlags: COMPATIBILITY_FLAGS,
        bindings: { DATABASE_URL: t.url(), WS_PROXY: proxy.address, PGFLARE_LOG_LEVEL: 'error', PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner` },
        queueProducers: { QUEUE: { queueName: QUEUE_NAME } },
        queueConsumers: { [QUEUE_NAME]: { maxBatchSize: 1, maxBatchTimeout: 0 } },
      },
    ],
  });
  await mf.ready;
});
afterAll(async () => {
  await mf?.dispose();
  await proxy?.close();
});

it('a Worker starts a builder workflow through the client, awaits it and reads it back', async () => {
  const res = await mf.dispatchFetch('http://client/');
  const body = (await res.json()) as any;
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.started).toEqual({ instance_id: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'pending' });
  expect(body).toMatchObject({ status: 'completed', label: 'sdk-in-workerd', nodes: 3, result: { rows: [{ answer: 42 }] } });
  expect(body.missing).toEqual({ status: 404, code: 'not_found' });
  expect(await t.query(`SELECT tag FROM effects`)).toEqual([{ tag: 'from-workerd' }]);
  // The builder and client alone, no engine or server code: small.
  expect(clientBytes).toBeLessThan(60_000);
});
