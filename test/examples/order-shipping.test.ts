/**
 * examples/order-shipping end to end: the order arrives by signed webhook, the carrier is asked
 * for a shipment, its callback arrives through the REST API as a signal, and the outcome is recorded; a
 * carrier that never calls back times the wait out. Effects are counted in the example's own table.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createHttpRunner } from '../../src/engine/executors/http-runner.ts';
import { startFakeCarrier, type FakeCarrier } from '../../examples/order-shipping/fake-carrier.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome } from '../helpers/engine.ts';

const t = useTestDb();
const example = (f: string) => readFileSync(new URL(`../../examples/order-shipping/${f}`, import.meta.url), 'utf8');
const http = createHttpRunner();
let carrier: FakeCarrier;
let api: ServerType;
let token: string;
let apiUrl: string;
let hookSecret: string;

beforeAll(async () => {
  carrier = await startFakeCarrier();
  api = serve({ fetch: createApp({ db: t.db }).fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => api.once('listening', () => r()));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  await t.superuser.query(`ALTER DATABASE ${t.name} SET pg_durable.http_policy = 'all'`);
  await t.query(example('setup.sql'));
  await t.query(example('workflow.sql'));
  await t.query(`SELECT df.setvar('carrier_url', $1), df.setvar('api_url', $2)`, [carrier.url, apiUrl]);
  [{ t: token }] = await t.query(`SELECT df.create_api_token('carrier-callbacks') AS t`);
  [{ s: hookSecret }] = await t.query(`SELECT df.create_hook('orders', 'ship-order', 'hmac') AS s`);
});

/** The shop's side: POST the order to the webhook, signed with the hook's secret. */
async function deliver(order: object, deliveryId: string) {
  const body = JSON.stringify(order);
  const sig = createHmac('sha256', hookSecret).update(body).digest('hex');
  const res = await fetch(`${apiUrl}/hooks/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-signature-256': `sha256=${sig}`, 'x-delivery-id': deliveryId },
    body,
  });
  return { status: res.status, body: (await res.json()) as { instance_id: string; redelivered: boolean } };
}
afterAll(async () => {
  await carrier.close();
  await new Promise<void>((r) => api.close(() => r()));
});

const order = async (id: string) => (await t.query('SELECT status, shipment, tracking FROM shipping.orders WHERE order_ref = $1', [id]))[0];

describe('examples/order-shipping', () => {
  it('ships: signed webhook, carrier request, callback signal, outcome recorded once', async () => {
    const first = await deliver({ order_id: 'ord_1001', customer: 'ada@example.com' }, 'evt-1');
    expect(first).toMatchObject({ status: 202, body: { redelivered: false } });
    const id = first.body.instance_id;
    // The shop retries the delivery: same instance, nothing new started.
    expect(await deliver({ order_id: 'ord_1001', customer: 'ada@example.com' }, 'evt-1')).toEqual({ status: 200, body: { instance_id: id, redelivered: true } });
    const engine = engineFor(t, { http });
    await engine.drain();
    expect(await order('ord_1001')).toEqual({ status: 'received', shipment: null, tracking: null });
    expect(carrier.shipments).toHaveLength(1);
    expect(carrier.shipments[0]).toMatchObject({ order: 'ord_1001', callbackUrl: expect.stringContaining(`/v1/instances/${id}/signals/shipped`) });
    expect(carrier.shipments[0].idempotencyKey).toMatch(new RegExp(`^${id}:`));

    // The carrier calls back through the REST API; the waiting branch takes the signal.
    expect(await carrier.ship(carrier.shipments[0], token)).toBe(200);
    // A second on: df.signal stamps run_at with the database's microsecond clock, the engine compares milliseconds.
    await engine.drain({ now: later(1) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ status: 'shipped', shipment: 'shp1', tracking: 'TRK-SHP1' }] } });
    expect(await order('ord_1001')).toEqual({ status: 'shipped', shipment: 'shp1', tracking: 'TRK-SHP1' });
    expect((await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE input ->> 'order_id' = 'ord_1001'`))[0].n).toBe(1);
  });

  it('a delivery with a bad signature starts nothing', async () => {
    const res = await fetch(`${apiUrl}/hooks/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature-256': `sha256=${'0'.repeat(64)}`, 'x-delivery-id': 'evt-forged' },
      body: JSON.stringify({ order_id: 'ord_666', customer: 'mallory@example.com' }),
    });
    expect(res.status).toBe(401);
    expect(await order('ord_666')).toBeUndefined();
  });

  it('a carrier that never calls back: the wait times out after 2 days and says so', async () => {
    const [{ id }] = await t.query(`SELECT df.start_workflow('ship-order', '{"order_id": "ord_1002", "customer": "bob@example.com"}') AS id`);
    const engine = engineFor(t, { http });
    await engine.drain();
    await engine.drain({ now: later(172_800 - 60) });
    expect(await outcome(t, id)).toMatchObject({ status: 'running' });
    await engine.drain({ now: later(172_800 + 5) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    expect(await order('ord_1002')).toEqual({ status: 'shipment_timed_out', shipment: 'shp2', tracking: null });
  });
});
