/**
 * A local stand-in for a shipping carrier's API: POST /shipments {order, callback_url} answers 201 with a
 * shipment id at once, and the carrier calls `callback_url` later (when `ship()` is called here, or after
 * `autoShipAfterMs` when run on its own) with {"tracking": "..."}, like a real carrier's webhook.
 *
 *   CALLBACK_TOKEN=pgf_… npx tsx examples/order-shipping/fake-carrier.ts   # 127.0.0.1:8090, ships after 5 s
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Shipment {
  id: string;
  order: string;
  callbackUrl: string;
  idempotencyKey: string | undefined;
}

export interface FakeCarrier {
  url: string;
  shipments: Shipment[];
  /** Calls the shipment's callback the way the carrier would; returns the callback's HTTP status. */
  ship(shipment: Shipment, token: string): Promise<number>;
  close(): Promise<void>;
}

export async function startFakeCarrier(opts: { port?: number; autoShipAfterMs?: number; token?: string } = {}): Promise<FakeCarrier> {
  const shipments: Shipment[] = [];
  const byKey = new Map<string, Shipment>();
  const ship = async (s: Shipment, token: string) => {
    const res = await fetch(s.callbackUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ shipment: s.id, tracking: `TRK-${s.id.toUpperCase()}` }),
    });
    return res.status;
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      let parsed: { order?: unknown; callback_url?: unknown } = {};
      try {
        parsed = JSON.parse(body);
      } catch {
        /* checked below */
      }
      if (req.method !== 'POST' || req.url !== '/shipments' || typeof parsed.order !== 'string' || typeof parsed.callback_url !== 'string') {
        res.statusCode = 400;
        return res.end(JSON.stringify({ error: 'POST /shipments {order, callback_url}' }));
      }
      // The Idempotency-Key makes a retried request return the same shipment instead of a second one.
      const key = req.headers['idempotency-key'] as string | undefined;
      const known = key ? byKey.get(key) : undefined;
      const s = known ?? { id: `shp${shipments.length + 1}`, order: parsed.order, callbackUrl: parsed.callback_url, idempotencyKey: key };
      if (!known) {
        shipments.push(s);
        if (key) byKey.set(key, s);
        if (opts.autoShipAfterMs !== undefined && opts.token) setTimeout(() => void ship(s, opts.token!).catch(() => {}), opts.autoShipAfterMs);
      }
      res.statusCode = 201;
      res.end(JSON.stringify({ shipment: s.id, status: 'label_created' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    shipments,
    ship,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const c = await startFakeCarrier({ port: Number(process.env.PORT ?? 8090), autoShipAfterMs: 5000, token: process.env.CALLBACK_TOKEN });
  console.log(`fake carrier at ${c.url}${process.env.CALLBACK_TOKEN ? '' : ' (set CALLBACK_TOKEN to have it call back)'}`);
}
