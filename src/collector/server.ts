/**
 * `vrouter-emu collector`: receives the agents' flow records (wire.ts), stores them durably (store.ts)
 * and acknowledges each batch once it is on disk. A client that sends a line too long or a message that
 * is not one of the protocol's is disconnected and counted; the others are served on.
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
}

export class CollectorServer {
  readonly stats: CollectorStats = { connections: 0, records: 0, duplicates: 0, malformed: 0, oversized: 0 };
  private readonly server: net.Server;
  private readonly socks = new Set<net.Socket>();

  constructor(private readonly store: FlowStore, private readonly log: (line: string) => void = () => undefined) {
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

  private serve(s: net.Socket): void {
    this.stats.connections++;
    this.socks.add(s);
    const reader = new LineReader();
    let generator: string | undefined;
    const who = `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
    const drop = (why: keyof Pick<CollectorStats, 'malformed' | 'oversized'>, what: string): void => {
      this.stats[why]++;
      this.log(`collector: ${who}: ${what}; connection closed`);
      s.destroy();
    };
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
        this.log(`collector: cannot write the flow log (${(e as Error).message}); ${who} disconnected, its records unacknowledged`);
        s.destroy();
        return;
      }
      for (const b of batches) this.stats.records += b.records.length;
      s.write(JSON.stringify({ ack }) + '\n');
    });
    s.on('error', () => undefined);
    s.on('close', () => this.socks.delete(s));
  }

  close(): Promise<void> {
    for (const s of this.socks) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
