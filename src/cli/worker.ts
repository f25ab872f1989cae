import { createLogger, type Logger } from '../log.ts';
import { loadConfig } from '../config.ts';
import { startNodeWorker, type NodeWorker } from '../runtime/node/worker.ts';
import { workerOptions } from '../runtime/node/embed.ts';
import { startApiServer } from '../runtime/node/serve.ts';

/** Starts the Node worker with the environment's configuration. */
export async function startConfiguredWorker(databaseUrl: string, log: Logger, overrides: { concurrency?: number } = {}): Promise<NodeWorker> {
  return startNodeWorker(workerOptions(databaseUrl, loadConfig(process.env), log, overrides.concurrency));
}

export async function runWorker(opts: { databaseUrl: string; concurrency?: number }): Promise<number> {
  const log = createLogger();
  const worker = await startConfiguredWorker(opts.databaseUrl, log, { concurrency: opts.concurrency });
  // The REST API only when PGFLARE_API_PORT is set.
  const api = await startApiServer({ databaseUrl: opts.databaseUrl, log, defaultHost: '0.0.0.0' }).catch(async (err: unknown) => {
    await worker.stop();
    throw err;
  });
  await new Promise<void>((done) => {
    const onSignal = (signal: string) => {
      log.info('stopping: finishing in-flight steps', { signal });
      done();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await api?.close();
  await worker.stop();
  return 0;
}
