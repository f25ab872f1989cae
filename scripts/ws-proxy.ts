/**
 * A local WebSocket → TCP proxy, for `npm run dev` and the workerd tests only (DESIGN 10).
 *
 * The Neon serverless driver speaks the PostgreSQL wire protocol over a WebSocket, because Workers
 * cannot open raw TCP to arbitrary hosts through it. Neon's own endpoints terminate that WebSocket; a
 * local PostgreSQL needs this proxy instead. The worker is pointed at it with
 * `WS_PROXY=127.0.0.1:<port>` (src/runtime/worker/neon-db.ts sets
 * `wsProxy = (host, port) => WS_PROXY + '/v2?address=' + host + ':' + port` and plain ws://), and each
 * WebSocket connection becomes one TCP connection to `address`, bytes copied both ways.
 *
 * It listens on the loopback interface only and, unless told otherwise, connects only to loopback
 * addresses: it is a development tool, never something to expose.
 *
 *   tsx scripts/ws-proxy.ts [--port 8788]
 */
import { connect, isIP, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface WsProxyOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Allow `address` hosts other than loopback ones (default false). */
  allowAnyHost?: boolean;
  log?: (line: string) => void;
}

export interface WsProxy {
  port: number;
  /** `host:port`, the value for the worker's WS_PROXY var. */
  address: string;
  /** Connections currently open (for tests). */
  readonly open: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function startWsProxy(opts: WsProxyOptions = {}): Promise<WsProxy> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => undefined);
  const pairs = new Set<{ ws: WebSocket; tcp: Socket }>();
  const wss = new WebSocketServer({ host, port: opts.port ?? 0, perMessageDeflate: false });

  wss.on('connection', (ws, req) => {
    const target = parseTarget(req.url ?? '');
    if (!target || (!opts.allowAnyHost && !isLoopback(target.host))) {
      log(`ws-proxy: refused ${req.url}`);
      ws.close(1008, 'address must be a loopback host:port');
      return;
    }
    const tcp = connect({ host: target.host, port: target.port });
    tcp.setNoDelay(true);
    const pair = { ws, tcp };
    pairs.add(pair);
    // Bytes from the driver may arrive before the TCP connection is up: net.Socket buffers writes.
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      tcp.write(buf);
    });
    tcp.on('data', (chunk) => {
      if (ws.readyState === ws.OPEN) ws.send(chunk, { binary: true });
    });
    const end = () => {
      pairs.delete(pair);
      tcp.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };
    ws.on('close', end);
    ws.on('error', end);
    tcp.on('close', end);
    tcp.on('error', (err) => {
      log(`ws-proxy: ${target.host}:${target.port}: ${err.message}`);
      end();
    });
  });

  return new Promise((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => {
      const port = (wss.address() as { port: number }).port;
      resolve({
        port,
        address: `${host}:${port}`,
        get open() {
          return pairs.size;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const p of pairs) {
              p.tcp.destroy();
              p.ws.terminate();
            }
            pairs.clear();
            wss.close(() => done());
          }),
      });
    });
  });
}

/** `/v2?address=host:port` (Neon's shape); also accepts `[::1]:5432`. */
function parseTarget(url: string): { host: string; port: number } | null {
  const address = new URL(url, 'http://proxy').searchParams.get('address');
  if (!address) return null;
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const h = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host: h, port };
}

function isLoopback(h: string): boolean {
  return LOOPBACK.has(h) || (isIP(h) === 4 && h.startsWith('127.'));
}

// `tsx scripts/ws-proxy.ts --port N`: run it on its own.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 8788;
  const proxy = await startWsProxy({ port, log: (l) => console.error(l) });
  console.error(`ws-proxy listening on ${proxy.address} (set WS_PROXY=${proxy.address})`);
  const stop = () => void proxy.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
