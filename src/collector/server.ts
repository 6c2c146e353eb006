/**
 * `vrouter-emu collector`: receives the agents' flow records (wire.ts), stores them durably (store.ts)
 * and acknowledges each batch once it is on disk. A client that sends a line too long or a message that
 * is not one of the protocol's is disconnected and counted; the others are served on.
 *
 * What a client may hold: a connection beyond `maxConnections` is closed at once; one that sends no
 * hello within `helloMs`, or stalls for `idleMs` in the middle of a message, is closed (so a partial line,
 * up to 1 MiB, is not held for ever); all are counted. A client between messages may stay quiet (an
 * agent with nothing to export); TCP keepalive finds one whose host went away.
 *
 * An append that fails is not acknowledged (the exporter sends the batch again); an append that could
 * not be undone (store.ts, StoreBrokenError) stops the collector through `onFatal`: it must not
 * acknowledge anything after that.
 * @module
 */
import * as net from 'net';
import type { FlowRecord } from '../agent/flow-export';
import { UserError } from '../errors';
import { FlowStore } from './store';
import { LineReader, parseBatch, parseHello } from './wire';

export interface CollectorStats {
  connections: number;
  records: number;
  duplicates: number;
  malformed: number;
  oversized: number;
  /** Connections closed: over maxConnections, no hello in time, stalled in a message. */
  refused: number;
  noHello: number;
  idle: number;
  /** Appends that failed (their batches unacknowledged). */
  writeErrors: number;
}

export interface CollectorOptions {
  /** Log a line. */
  log?: (line: string) => void;
  /** Connections served at once (more are closed). */
  maxConnections?: number;
  /** Time a new connection has for its hello (ms). */
  helloMs?: number;
  /** Time a connection may stall in the middle of a message (ms). */
  idleMs?: number;
  /** TCP keepalive's first probe (ms). */
  keepAliveMs?: number;
  /** The store can take no more (StoreBrokenError): stop the collector. Default: log it. */
  onFatal?: (e: Error) => void;
}

export const COLLECTOR_MAX_CONNECTIONS = 256;
export const COLLECTOR_HELLO_MS = 5000;
export const COLLECTOR_IDLE_MS = 30_000;

export class CollectorServer {
  readonly stats: CollectorStats = { connections: 0, records: 0, duplicates: 0, malformed: 0, oversized: 0, refused: 0, noHello: 0, idle: 0, writeErrors: 0 };
  private readonly server: net.Server;
  private readonly socks = new Set<net.Socket>();
  private readonly log: (line: string) => void;
  private readonly maxConnections: number;
  private readonly helloMs: number;
  private readonly idleMs: number;
  private readonly keepAliveMs: number;
  private readonly onFatal: (e: Error) => void;
  private fatal = false;

  /** `o` may be a log function (the older signature) or the options. */
  constructor(private readonly store: FlowStore, o: CollectorOptions | ((line: string) => void) = {}) {
    const opts = typeof o === 'function' ? { log: o } : o;
    this.log = opts.log ?? ((): void => undefined);
    this.maxConnections = opts.maxConnections ?? COLLECTOR_MAX_CONNECTIONS;
    this.helloMs = opts.helloMs ?? COLLECTOR_HELLO_MS;
    this.idleMs = opts.idleMs ?? COLLECTOR_IDLE_MS;
    this.keepAliveMs = opts.keepAliveMs ?? 10_000;
    this.onFatal = opts.onFatal ?? ((e): void => this.log(`collector: ${e.message}`));
    this.server = net.createServer((s) => this.serve(s));
  }

  /** Listen; @returns the address (host:port) bound. */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new UserError(
          e.code === 'EADDRINUSE' ? `${host}:${port}: the address is in use (another collector?); give another with --listen HOST:PORT`
            : `${host}:${port}: cannot listen (${e.code ?? e.message})`,
        ));
      });
      this.server.listen(port, host, () => {
        const a = this.server.address() as net.AddressInfo;
        resolve(`${a.address}:${a.port}`);
      });
    });
  }

  /** Connections open now. */
  get open(): number {
    return this.socks.size;
  }

  private serve(s: net.Socket): void {
    s.on('error', () => undefined);
    const who = `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
    if (this.fatal || this.socks.size >= this.maxConnections) {
      this.stats.refused++;
      if (!this.fatal) this.log(`collector: ${who}: more than ${this.maxConnections} connections; connection closed`);
      s.destroy();
      return;
    }
    this.stats.connections++;
    this.socks.add(s);
    s.setKeepAlive(true, this.keepAliveMs);
    const reader = new LineReader();
    let generator: string | undefined;
    const drop = (why: keyof Pick<CollectorStats, 'malformed' | 'oversized' | 'noHello' | 'idle'>, what: string): void => {
      this.stats[why]++;
      this.log(`collector: ${who}: ${what}; connection closed`);
      s.destroy();
    };
    const helloTimer = setTimeout(() => {
      if (generator === undefined) drop('noHello', `no hello within ${this.helloMs} ms`);
    }, this.helloMs);
    helloTimer.unref();
    s.setTimeout(this.idleMs);
    s.on('timeout', () => {
      // A client between messages may be quiet; one stalled inside a message holds its buffer.
      if (reader.buffered > 0) drop('idle', `${reader.buffered} bytes of a message and nothing more for ${this.idleMs} ms`);
    });
    s.on('data', (d: Buffer) => {
      const lines = reader.push(d);
      if (lines === null) {
        drop('oversized', 'a message longer than 1 MiB');
        return;
      }
      const batches: { generator: string; seq: number; records: FlowRecord[] }[] = [];
      let ack = -1;
      for (const l of lines) {
        let v: unknown;
        try {
          v = JSON.parse(l);
        } catch {
          drop('malformed', 'a message that is not JSON');
          return;
        }
        if (generator === undefined) {
          const h = parseHello(v);
          if (!h) {
            drop('malformed', 'the first message is not a hello');
            return;
          }
          generator = h.generator;
          clearTimeout(helloTimer);
          continue;
        }
        const b = parseBatch(v);
        if (!b) {
          drop('malformed', 'a message that is not a batch of FlowDataIpv4 records');
          return;
        }
        const last = Math.max(this.store.lastSeq.get(generator) ?? 0, batches.length > 0 ? batches[batches.length - 1].seq : 0);
        if (b.seq <= last) this.stats.duplicates += b.records.length; // sent again after a reconnect: stored already
        else batches.push({ generator, seq: b.seq, records: b.records });
        ack = Math.max(ack, b.seq);
      }
      if (ack < 0) return;
      try {
        this.store.append(batches, Date.now());
      } catch (e) {
        this.stats.writeErrors++;
        this.log(`collector: cannot write the flow log (${(e as Error).message}); ${who} disconnected, its records unacknowledged`);
        s.destroy();
        if ((e as Error).name === 'StoreBrokenError' && !this.fatal) {
          this.fatal = true;
          for (const o of this.socks) o.destroy();
          this.onFatal(e as Error);
        }
        return;
      }
      for (const b of batches) this.stats.records += b.records.length;
      s.write(JSON.stringify({ ack }) + '\n');
    });
    s.on('close', () => {
      clearTimeout(helloTimer);
      this.socks.delete(s);
    });
  }

  close(): Promise<void> {
    for (const s of this.socks) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
