/**
 * W3 traced side by side: `npx tsx bench/w3-trace.ts [--samples 200] [--first graphile|pgflare]`.
 *
 * graphile-worker and a pgflare Node worker idle in this one process on a throwaway server; samples are
 * interleaved as in bench W3 (w3-paired.ts). Every query a worker sends is timestamped on the way out and
 * back (pg.Client is wrapped), and so is every notification, so each sample splits into: commit →
 * notification heard (commit time from track_commit_timestamp), → claim (get_job) sent, its round trip, →
 * step (task) statement sent, → `clock_timestamp()` in it. Prints the median of each part per contender.
 * Server and Node clocks are the same machine's. `--first` picks whose LISTEN session connects first:
 * PostgreSQL signals the listeners of a database in backend-id order, so that one hears every NOTIFY
 * first (bench W3 takes half its samples each way). Not part of `npm run bench`: the numbers behind
 * bench/RESULTS.md ("Where W3's time goes").
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Logger, run, runMigrations } from 'graphile-worker';
import { startNodeWorker } from '../src/runtime/node/worker.ts';
import { sleep } from './common.ts';
import { throwawayDatabase } from './throwaway.ts';

const { values: args } = parseArgs({ options: { samples: { type: 'string', default: '200' }, first: { type: 'string', default: 'graphile' } } });
const now = () => performance.timeOrigin + performance.now();

async function main() {
  const db = await throwawayDatabase('w3trace', { track_commit_timestamp: 'on' });
  try {
    const url = db.url;
    const logger = new Logger(() => () => undefined);
    await runMigrations({ connectionString: url, logger });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('CREATE TABLE seen (who text, i int, began timestamptz); CREATE TABLE st (who text, i int)');
    const ev: { t: number; what: string }[] = [];
    // Wrap pg.Client for every client created from here on (the workers' and graphile-worker's pools).
    type Query = (this: pg.Client, ...a: unknown[]) => unknown;
    const proto = pg.Client.prototype as unknown as { query: Query; connect: Query };
    const origQuery = proto.query;
    proto.query = function (this: pg.Client, ...a: unknown[]) {
      const q = a[0] as string | { text?: string; name?: string };
      const text = typeof q === 'string' ? q : (q?.text ?? '');
      if (this === c || !text) return origQuery.apply(this, a);
      const w = `${typeof q === 'string' ? '' : (q?.name ?? '')} ${text.slice(0, 40).replace(/\s+/g, ' ')}`;
      ev.push({ t: now(), what: `send ${w}` });
      const r = origQuery.apply(this, a) as Promise<unknown> | undefined;
      r?.then?.(
        () => ev.push({ t: now(), what: `recv ${w}` }),
        () => undefined,
      );
      return r;
    };
    const origConnect = proto.connect;
    proto.connect = function (this: pg.Client, ...a: unknown[]) {
      this.prependListener('notification', (m) => ev.push({ t: now(), what: `notification ${m.channel}` }));
      return origConnect.apply(this, a);
    };
    const startPgflare = () => startNodeWorker({ connectionString: url, concurrency: 1, pollIntervalMs: 1000 });
    const early = args.first === 'pgflare' ? await startPgflare() : null;
    const runner = await run({
      connectionString: url,
      concurrency: 1,
      logger,
      noHandleSignals: true,
      pollInterval: 2000,
      taskList: { w3: async (p, h) => void (await h.query("INSERT INTO seen VALUES ('g', $1, clock_timestamp())", [(p as { i: number }).i])) },
    });
    const w = early ?? (await startPgflare());
    await sleep(500);
    const rows: Record<string, Record<string, number>[]> = { g: [], p: [] };
    for (let i = 0; i < Number(args.samples); i++) {
      for (const who of Math.random() < 0.5 ? ['g', 'p'] : ['p', 'g']) {
        await sleep(40 + Math.random() * 40);
        ev.length = 0;
        await c.query('BEGIN'); await c.query('INSERT INTO st VALUES ($1, $2)', [who, i]);
        if (who === 'g') await c.query(`SELECT graphile_worker.add_job('w3', json_build_object('i', ${i}))`);
        else await c.query(`SELECT df.start('INSERT INTO seen VALUES (''p'', ${i}, clock_timestamp())')`);
        await c.query('COMMIT');
        await sleep(20);
        const [x] = (await c.query(`SELECT extract(epoch FROM pg_xact_commit_timestamp(a.xmin))*1000 AS commit_ms, extract(epoch FROM b.began)*1000 AS began_ms FROM st a, seen b WHERE a.who = $1 AND a.i = $2 AND b.who = $1 AND b.i = $2`, [who, i])).rows;
        if (!x) continue;
        const commit = Number(x.commit_ms), began = Number(x.began_ms);
        const m: Record<string, number> = {};
        for (const e of ev) {
          let k: string | null = null;
          if (e.what.startsWith('notification')) k = 'notif';
          else if (e.what.startsWith('send') && !('claimSend' in m) && (/get_job/.test(e.what) || /BEGIN; EXECUTE pgflare_claim|BEGIN; SET LOCAL|BEGIN; SELECT c/.test(e.what))) k = 'claimSend';
          else if (e.what.startsWith('recv') && 'claimSend' in m && !('claimRecv' in m)) k = 'claimRecv';
          else if (e.what.startsWith('send') && /INSERT INTO seen/.test(e.what)) k = 'stepSend';
          if (k && !(k in m)) m[k] = e.t;
        }
        rows[who].push({ total: began - commit, notif: m.notif - commit, toClaim: m.claimSend - m.notif, claimRt: m.claimRecv - m.claimSend, toStep: m.stepSend - m.claimRecv, stepToBegin: began - m.stepSend });
      }
    }
    const med = (who: string, k: string) => { const v = rows[who].map((r) => r[k]).filter((x) => Number.isFinite(x)).sort((a, b) => a - b); return v[v.length >> 1]?.toFixed(3); };
    const parts = ['total', 'notif', 'toClaim', 'claimRt', 'toStep', 'stepToBegin'];
    console.log(`medians, ms: ${parts.join(' | ')}`);
    for (const [who, name] of [['g', 'graphile-worker'], ['p', 'pgflare']]) {
      console.log(`${name.padEnd(16)} ${parts.map((k) => med(who, k)).join(' | ')}  (${rows[who].length} samples)`);
    }
    await w.stop();
    await runner.stop();
    await c.end();
  } finally {
    await db.stop();
  }
}

await main();
