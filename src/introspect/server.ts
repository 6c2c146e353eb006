/**
 * The agent's HTTP server (the 2.22 agent's introspect on `DEFAULT.http_server_port`, 8085): a small
 * router over Node's http server, with the limits a server reachable from a network needs — header and
 * body sizes, slow clients timed out, a bounded number of connections — and nothing that runs on the
 * datapath thread (every handler reads shared memory or the agent's state in the agent's thread).
 *
 * The routes come from three modules: the Sandesh requests (requests.ts: `/Snh_*`, the module pages),
 * the Prometheus metrics (metrics.ts: `/metrics`) and the live page (page.ts: `/`, its assets and the
 * JSON it polls). See index.ts.
 * @module
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import { UserError } from '../errors';

/** A route: @returns true when it answered the request (the next route is tried otherwise). */
export type Handler = (req: http.IncomingMessage, url: URL, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface ServerLimits {
  /** Request header bytes (Node's maxHeaderSize). */
  maxHeaderBytes: number;
  /** Request body bytes (requests are GETs; a body is read and refused past this). */
  maxBodyBytes: number;
  /** A request must arrive whole within this (headers and body), ms. */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this, ms. */
  idleTimeoutMs: number;
  /** Connections at once; more are closed at once. */
  maxConnections: number;
}

export const SERVER_LIMITS: ServerLimits = {
  maxHeaderBytes: 8192, maxBodyBytes: 65536, requestTimeoutMs: 10_000, idleTimeoutMs: 5_000, maxConnections: 256,
};

/** Parse `--introspect-listen ADDR[:PORT]` (IPv4 or a name; PORT default `port`). @throws UserError */
export function parseListen(s: string, port: number, what = '--introspect-listen'): { host: string; port: number } {
  const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(s);
  const p = m?.[2] === undefined ? port : Number(m[2]);
  if (!m || p > 65535) throw new UserError(`${what} ${s}: expected ADDRESS[:PORT], e.g. 127.0.0.1:8085 or 0.0.0.0`);
  return { host: m[1], port: p };
}

export class IntrospectServer {
  private readonly server: http.Server;
  private readonly routes: Handler[] = [];
  /** Open connections, closed at close() (Node 16 has no closeAllConnections). */
  private readonly sockets = new Set<import('net').Socket>();

  constructor(private readonly limits: ServerLimits = SERVER_LIMITS) {
    this.server = http.createServer({ maxHeaderSize: limits.maxHeaderBytes }, (req, res) => void this.handle(req, res));
    this.server.requestTimeout = limits.requestTimeoutMs;
    this.server.headersTimeout = Math.min(limits.requestTimeoutMs, 10_000);
    this.server.keepAliveTimeout = limits.idleTimeoutMs;
    this.server.maxConnections = limits.maxConnections;
    this.server.setTimeout(limits.requestTimeoutMs);
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** Add routes, tried in order. */
  use(...h: Handler[]): void {
    this.routes.push(...h);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      // A body is not expected: read (bounded) and drop it; too big → 413.
      let body = 0;
      let tooBig = false;
      req.on('data', (d: Buffer) => {
        body += d.length;
        if (body > this.limits.maxBodyBytes && !tooBig) {
          tooBig = true;
          res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('request body too large\n');
          req.destroy();
        }
      });
      await new Promise<void>((resolve) => {
        req.on('end', resolve);
        req.on('close', resolve);
      });
      if (tooBig) return;
      const url = new URL(req.url ?? '/', 'http://introspect');
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET\n');
        return;
      }
      for (const r of this.routes) if (await r(req, url, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such page: ${url.pathname}\n`);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${(e as Error).message}\n`);
    }
  }

  /** Listen; @returns the address bound. @throws UserError naming the address when it cannot. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onErr = (e: NodeJS.ErrnoException): void => {
        reject(new UserError(`introspect: cannot listen on ${host}:${port} (${e.code ?? e.message}); give another with --introspect-listen ADDR:PORT (port 0 picks a free one), or set [DEFAULT] http_server_port`));
      };
      this.server.once('error', onErr);
      this.server.listen(port, host, () => {
        this.server.off('error', onErr);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}
