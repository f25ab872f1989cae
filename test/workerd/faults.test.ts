/**
 * The Worker's exactly-once guarantee under queue faults, in real workerd (issue 19, item 5).
 *
 * 2,000 instances (chains, joins, sleeps, signals) run through the real worker with this test as the
 * queue (test/workerd/faults-entry.ts records what the worker sends; the test delivers it in concurrent
 * batches). Of the messages the worker sends, 1 % are dropped and 1 % duplicated; 1 % of the messages
 * delivered carry a death: the invocation dies at its instance's next crash point of that kind, half
 * after the step's statement and before its commit (before-commit: the transaction rolls back), half
 * after the commit and before the ack (after-commit: the successors' messages are never sent). A death
 * takes its whole queue invocation down: its unacked messages are redelivered, as Cloudflare Queues does.
 * The cron sweep runs after every CRON_EVERY queue invocations and whenever the queue is idle; it alone
 * can find dropped messages and the successors of an after-commit death. Signals are sent once their
 * node waits, some through the API (its kick sends the message), most in SQL (the sweep finds them).
 * Time moves by backdating timers, never by sleeping.
 *
 * Faults are decided by a seeded hash of the message's stable identity (instance label, node type and
 * text, how many times that node was sent or delivered), so they do not depend on the order concurrent
 * deliveries finish in. PGFLARE_FAULTS_SEED, PGFLARE_FAULTS_INSTANCES and PGFLARE_FAULTS_RATE change the
 * seed, the size and the rate of each fault; the counts are printed at the end.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { useWorkerd, QUEUE_NAME, type StepBody } from './harness.ts';

const t = useTestDb();
const TOKEN = 'workerd-faults-token-000';
const w = useWorkerd(t, {
  entry: 'test/workerd/faults-entry.ts',
  bindings: { PGFLARE_API_TOKENS: `${TOKEN}=pgflare_owner`, PGFLARE_SWEEP_LIMIT: '10000' },
});

const N = Number(process.env.PGFLARE_FAULTS_INSTANCES ?? 2000);
const SEED = Number(process.env.PGFLARE_FAULTS_SEED ?? 19);
const RATE = Number(process.env.PGFLARE_FAULTS_RATE ?? 0.01);
/**
 * Queue invocations in flight, and messages per invocation (the consumer's maximum batch): large
 * batches open fewer sessions, which is most of a step's cost on the Worker.
 */
const CONCURRENCY = 6;
const BATCH = 100;
/**
 * A sweep runs alongside the deliveries after every this many invocations (and whenever the queue is
 * idle). Each one re-sends every due row, so most of what it sends duplicates messages still queued.
 */
const CRON_EVERY = 40;
/** API calls in flight when signalling. */
const API_CONCURRENCY = 8;
const SLEEP_S = 600;

type Death = 'before-commit' | 'after-commit';
interface Msg {
  body: StepBody;
}

/** A uniform number in [0, 1) from the seed and a string (FNV-1a, then murmur3's finaliser). */
function unit(seed: number, s: string): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** Shape by i % 20: 8 chains, 5 joins, 4 sleeps, 3 signals. Every SQL step inserts the key `i.step`. */
const shape = (i: number) => (i % 20 < 8 ? 'chain' : i % 20 < 13 ? 'join' : i % 20 < 17 ? 'sleep' : 'signal');
const stepsOf = (i: number) => (shape(i) === 'chain' || shape(i) === 'join' ? 3 : 2);

describe('the Worker under queue faults', () => {
  it(`${N} instances: dropped, duplicated and dying deliveries; every effect once, nothing stuck`, async () => {
    const began = Date.now();
    await t.query(`CREATE TABLE effects (k text NOT NULL)`);
    await t.query(
      `WITH s AS (
         SELECT i, i % 20 AS m,
                format('INSERT INTO effects VALUES (%L)', i || '.1') AS s1,
                format('INSERT INTO effects VALUES (%L)', i || '.2') AS s2,
                format('INSERT INTO effects VALUES (%L)', i || '.3') AS s3
           FROM generate_series(1, $1::int) i)
       SELECT count(df.start(CASE WHEN m < 8 THEN s1 ~> s2 ~> s3
                                  WHEN m < 13 THEN (s1 & s2) ~> s3
                                  WHEN m < 17 THEN s1 ~> df.sleep(${SLEEP_S}) ~> s2
                                  ELSE s1 ~> df.wait_for_signal('go') ~> s2 END, 'f' || i)) FROM s`,
      [N],
    );
    // A node's identity that does not change between runs (ids are random): instance label, node type, text.
    const stable = new Map<string, string>();
    for (const r of await t.query<{ iid: string; id: string; k: string }>(
      `SELECT n.instance_id AS iid, n.id, i.label || '|' || CASE WHEN n.id = i.root_node THEN 'root' ELSE n.node_type END || '|' || coalesce(n.query, '') AS k
         FROM df.nodes n JOIN df.instances i ON i.id = n.instance_id`,
    ))
      stable.set(`${r.iid}/${r.id}`, r.k);
    const keyOf = (b: StepBody) => stable.get(`${b.instanceId}/${b.nodeId}`) ?? `?${b.instanceId}/${b.nodeId}`;
    const occurrences = new Map<string, number>();
    const draw = (what: string, b: StepBody) => {
      const k = `${what}|${keyOf(b)}`;
      const n = occurrences.get(k) ?? 0;
      occurrences.set(k, n + 1);
      return unit(SEED, `${k}|${n}`);
    };

    const n = { sent: 0, dropped: 0, duplicated: 0, delivered: 0, invocations: 0, failedInvocations: 0, redelivered: 0, armed: 0, sweeps: 0, sweepSent: 0, timeMoves: 0, signalsApi: 0, signalsSql: 0 };
    const prof = { deliverMs: 0, busyMs: 0, idleMs: 0 };
    const pending: Msg[] = [];
    const delayed: Msg[] = [];

    /** The worker's sends since the last call, through the faults: lost, doubled, or delayed. */
    const intake = async (): Promise<number> => {
      const sent = await w.sent();
      for (const m of sent) {
        n.sent++;
        const u = draw('send', m.body);
        if (u < RATE) {
          n.dropped++;
          continue;
        }
        const copies = u < 2 * RATE ? 2 : 1;
        if (copies === 2) n.duplicated++;
        for (let c = 0; c < copies; c++) (m.delaySeconds ? delayed : pending).push({ body: m.body });
      }
      return sent.length;
    };

    let seq = 0;
    const deliver = async (batch: Msg[]): Promise<void> => {
      const messages = batch.map((m) => {
        const u = draw('run', m.body);
        const die: Death | undefined = u < RATE / 2 ? 'before-commit' : u < RATE ? 'after-commit' : undefined;
        if (die) n.armed++;
        return { id: `m${++seq}`, timestamp: new Date(), attempts: 1, body: die ? { ...m.body, die } : m.body, msg: m };
      });
      const worker = await w.mf.getWorker();
      const t0 = Date.now();
      const r = (await worker.queue(QUEUE_NAME, messages.map(({ msg: _, ...rest }) => rest) as never)) as { outcome: string; explicitAcks: string[] };
      n.invocations++;
      prof.deliverMs += Date.now() - t0;
      n.delivered += batch.length;
      if (r.outcome !== 'ok') {
        // Died: the queue redelivers what was not acked before the death.
        n.failedInvocations++;
        const acked = new Set(r.explicitAcks);
        for (const m of messages) if (!acked.has(m.id)) (n.redelivered++, pending.push({ body: m.msg.body }));
      }
    };

    const cron = async () => {
      expect((await w.cron()).outcome).toBe('ok');
      n.sweeps++;
    };

    const signalled = new Set<string>();
    /** Signals every instance whose SIGNAL node waits: one in six through the API (the kick), the rest in SQL (the sweep). */
    const signalWaiting = async (): Promise<number> => {
      const waiting = await t.query<{ id: string; i: number }>(
        `SELECT n.instance_id AS id, substr(i.label, 2)::int AS i FROM df.nodes n JOIN df.instances i ON i.id = n.instance_id
          WHERE n.node_type = 'SIGNAL' AND n.status = 'running'`,
      );
      const todo = waiting.filter((x) => !signalled.has(x.id));
      const viaApi = todo.filter((x) => x.i % 40 === 19);
      const viaSql = todo.filter((x) => x.i % 40 !== 19).map((x) => x.id);
      if (viaSql.length) await t.query(`SELECT df.signal(id, 'go', '{}') FROM unnest($1::text[]) id`, [viaSql]);
      n.signalsSql += viaSql.length;
      for (let k = 0; k < viaApi.length; k += API_CONCURRENCY)
        await Promise.all(
          viaApi.slice(k, k + API_CONCURRENCY).map(async ({ id }) => {
            const res = await w.fetch(`/v1/instances/${id}/signals/go`, {
              method: 'POST',
              headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
              body: '{}',
            });
            expect(res.status).toBe(200);
            await res.arrayBuffer();
          }),
        );
      n.signalsApi += viaApi.length;
      for (const x of todo) signalled.add(x.id);
      return todo.length;
    };

    const unfinished = async () => (await t.query<{ n: number }>(`SELECT count(*)::int AS n FROM df.instances WHERE status <> 'completed'`))[0].n;

    /** Delivers until the queue is empty and nothing is in flight: CONCURRENCY lanes, each taking the next batch. */
    let batchesRun = 0;
    const inflight = new Set<Promise<void>>();
    const lane = async (): Promise<void> => {
      for (;;) {
        if (!pending.length) await intake();
        if (pending.length) {
          const p = deliver(pending.splice(0, BATCH));
          inflight.add(p);
          await p.finally(() => inflight.delete(p));
          if (++batchesRun % CRON_EVERY === 0) await cron(); // while the other lanes deliver
          continue;
        }
        if (!inflight.size) return;
        await Promise.race(inflight);
      }
    };

    // A run needs a handful of idle turns (the first sweep, signals, the time move, stragglers); a stuck
    // row would make the sweep re-send it for ever, so the turns are bounded.
    let idle = 0;
    for (;;) {
      const r0 = Date.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, lane));
      prof.busyMs += Date.now() - r0;
      // Idle: nothing in flight. Done, or signal the waiting, move time past the timers, and sweep.
      const i0 = Date.now();
      if ((await unfinished()) === 0) break;
      expect(++idle, `still ${await unfinished()} instances unfinished after ${idle} idle turns`).toBeLessThan(40);
      if ((await signalWaiting()) === 0 && delayed.length) {
        await t.query(`UPDATE df.nodes SET run_at = now() - interval '1 second' WHERE run_at > now()`);
        pending.push(...delayed.splice(0));
        n.timeMoves++;
      }
      await intake();
      await cron();
      n.sweepSent += await intake();
      prof.idleMs += Date.now() - i0;
    }
    const deaths = (await (await w.fetch('/__test/deaths')).json()) as Record<Death, number>;
    const seconds = (Date.now() - began) / 1000;
    // The database's sessions and transactions: what the run cost the server.
    const [db] = await t.query(`SELECT sessions, xact_commit AS commits, xact_rollback AS rollbacks FROM pg_stat_database WHERE datname = current_database()`);
    console.log(`faults (seed ${SEED}, ${seconds.toFixed(1)} s): ${JSON.stringify({ ...n, deaths, ms: prof, db })}`);

    // Every instance completed; every SQL step's effect is there exactly once.
    expect(await t.query(`SELECT status, count(*)::int AS n FROM df.instances GROUP BY status`)).toEqual([{ status: 'completed', n: N }]);
    const expected: string[] = [];
    for (let i = 1; i <= N; i++) for (let s = 1; s <= stepsOf(i); s++) expected.push(`${i}.${s}`);
    expect(await t.query(`SELECT k, count(*)::int AS n FROM effects GROUP BY k HAVING count(*) <> 1`)).toEqual([]);
    const keys = (await t.query<{ k: string }>(`SELECT k FROM effects`)).map((r) => r.k);
    expect(keys.length).toBe(expected.length);
    expect(new Set(keys)).toEqual(new Set(expected));
    // Nothing stuck: no ready or running rows, no held leases.
    expect(
      await t.query(`SELECT count(*) FILTER (WHERE run_at IS NOT NULL)::int AS ready, count(*) FILTER (WHERE locked_until IS NOT NULL)::int AS leased,
                            count(*) FILTER (WHERE status <> 'completed')::int AS unfinished FROM df.nodes`),
    ).toEqual([{ ready: 0, leased: 0, unfinished: 0 }]);
    // Every fault path was taken, many times.
    expect(n.dropped).toBeGreaterThan(5);
    expect(n.duplicated).toBeGreaterThan(5);
    expect(deaths['before-commit']).toBeGreaterThan(5);
    expect(deaths['after-commit']).toBeGreaterThan(5);
    expect(n.failedInvocations).toBe(deaths['before-commit'] + deaths['after-commit']);
    expect(n.redelivered).toBeGreaterThan(0);
    expect(n.sweepSent).toBeGreaterThan(0);
    expect(n.signalsApi).toBeGreaterThan(0);
    expect(n.signalsSql).toBeGreaterThan(0);
    expect(n.timeMoves).toBeGreaterThan(0);
  }, 900_000);
});
