/**
 * `pf.instances.stream(id)` (src/sdk/stream.ts) against the real API server over real HTTP: the items
 * in order, `after`, resuming with Last-Event-ID when a connection ends early, a live instance, and the
 * API's 404 as a PgflareError. The engine is driven by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startApiServer, type ApiServer } from '../../src/runtime/node/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { createClient, PgflareError, seq, sql, waitForSignal, type InstanceStreamItem, type PgflareClient } from '../../src/sdk/index.ts';

const t = useTestDb();
const TOKEN = 'sdk-stream-test-token-0001';
let server: ApiServer;
let pf: PgflareClient;
let engine: ReturnType<typeof engineFor>;

beforeAll(async () => {
  server = (await startApiServer({
    databaseUrl: t.url(),
    log: silentLogger,
    defaultHost: '127.0.0.1',
    env: { PGFLARE_API_PORT: '0', PGFLARE_API_TOKENS: `${TOKEN}=${inject('pg').owner}`, PGFLARE_STREAM_POLL_MS: '50' },
  }))!;
  pf = createClient({ baseUrl: server.url, token: TOKEN });
  engine = engineFor(t);
});
afterAll(async () => {
  await server?.close();
});

async function collect(items: AsyncIterable<InstanceStreamItem>): Promise<InstanceStreamItem[]> {
  const out: InstanceStreamItem[] = [];
  for await (const x of items) out.push(x);
  return out;
}

const finished = async () => {
  // A step retried until it fails: attempts, retries and the failure are events of its history.
  const { instance_id: id } = await pf.instances.start(sql('SELECT 1/0').retry({ maxAttempts: 3, backoff: 0 }));
  await engine.drain();
  const events = await pf.instances.events(id);
  expect(events.length).toBeGreaterThan(2);
  return { id, events };
};

describe('instances.stream', () => {
  it('yields the instance, every event in order, then end', async () => {
    const { id, events } = await finished();
    const items = await collect(pf.instances.stream(id));
    expect(items[0]).toMatchObject({ type: 'instance', instance: { instance_id: id, status: 'failed' } });
    expect(items.filter((x) => x.type === 'event').map((x) => x.type === 'event' && x.event)).toEqual(events);
    expect(items.at(-1)).toEqual({ type: 'end', status: 'failed' });
    expect(items.filter((x) => x.type === 'instance')).toHaveLength(1);
  });

  it('after: only the events after that event_id', async () => {
    const { id, events } = await finished();
    const items = await collect(pf.instances.stream(id, { after: events[1]!.event_id }));
    expect(items.filter((x) => x.type === 'event').map((x) => x.type === 'event' && x.event.event_id)).toEqual(events.slice(2).map((e) => e.event_id));
  });

  it('resumes with Last-Event-ID when the connection ends before end: nothing missed, nothing repeated', async () => {
    const { id, events } = await finished();
    const asked: (string | null)[] = [];
    // A fetch whose first stream response is cut right after its first event, as a dropped connection would.
    const cutting = createClient({
      baseUrl: server.url,
      token: TOKEN,
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        asked.push(new Headers(init.headers).get('last-event-id'));
        return asked.length === 1 ? cutAfterFirstEvent(res) : res;
      },
    });
    const items = await collect(cutting.instances.stream(id));
    expect(asked).toEqual([null, String(events[0]!.event_id)]);
    expect(items.filter((x) => x.type === 'event').map((x) => x.type === 'event' && x.event)).toEqual(events);
    expect(items.filter((x) => x.type === 'instance')).toHaveLength(1);
    expect(items.at(-1)).toEqual({ type: 'end', status: 'failed' });
  });

  it('reconnect: false throws stream_closed instead', async () => {
    const { id } = await finished();
    let n = 0;
    const cutting = createClient({ baseUrl: server.url, token: TOKEN, fetch: async (url, init) => (n++ === 0 ? cutAfterFirstEvent(await fetch(url, init)) : fetch(url, init)) });
    const err = await collect(cutting.instances.stream(id, { reconnect: false })).catch((e) => e);
    expect(err).toBeInstanceOf(PgflareError);
    expect(err.code).toBe('stream_closed');
  });

  it('gives up with stream_closed after maxReconnects openings that brought no message', async () => {
    const { id } = await finished();
    let opened = 0;
    // Every stream this fetch returns is cut before its first message.
    const mute = createClient({ baseUrl: server.url, token: TOKEN, fetch: async (url, init) => (opened++, cutBeforeAnything(await fetch(url, init))) });
    const err = await collect(mute.instances.stream(id, { maxReconnects: 2 })).catch((e) => e);
    expect(err).toBeInstanceOf(PgflareError);
    expect(err.code).toBe('stream_closed');
    expect(opened).toBe(3);
  });

  it('follows a live instance to its end', async () => {
    const { instance_id: id } = await pf.instances.start(seq(waitForSignal('go').as('s'), 'SELECT 1 AS done'));
    await engine.drain();
    const seen: string[] = [];
    const stream = pf.instances.stream(id);
    // The first item is the instance as it is now: waiting on its signal.
    const first = await stream.next();
    expect(first.value).toMatchObject({ type: 'instance', instance: { status: 'running' } });
    await pf.instances.signal(id, 'go');
    await engine.drain();
    for await (const x of stream) seen.push(x.type === 'instance' ? `instance:${x.instance.status}` : x.type === 'end' ? `end:${x.status}` : 'event');
    expect(seen).toContain('instance:completed');
    expect(seen.at(-1)).toBe('end:completed');
  });

  it('an unknown instance is the API\'s 404 as a PgflareError', async () => {
    const err = await collect(pf.instances.stream('00000000')).catch((e) => e);
    expect(err).toBeInstanceOf(PgflareError);
    expect([err.status, err.code]).toEqual([404, 'not_found']);
  });
});

/** The response with its body ended right after the first `event: event` message. */
function cutAfterFirstEvent(res: Response): Response {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let text = '';
  const body = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const { done, value } = await reader.read();
      if (done) return ctl.close();
      text += decoder.decode(value, { stream: true });
      const at = text.indexOf('event: event');
      const end = at < 0 ? -1 : text.indexOf('\n\n', at);
      if (end < 0) return;
      ctl.enqueue(encoder.encode(text.slice(0, end + 2)));
      ctl.close();
      await reader.cancel();
    },
  });
  return new Response(body, { status: res.status, headers: res.headers });
}

/** The response with an empty body, as a proxy that will not stream would give. */
function cutBeforeAnything(res: Response): Response {
  void res.body?.cancel();
  return new Response('', { status: res.status, headers: res.headers });
}
