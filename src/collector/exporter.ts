/**
 * The agent's side of flow export to a collector over TCP (wire.ts). It never blocks the agent: records
 * go into a bounded queue; a timer sends them in batches; a batch stays in the queue until the
 * collector acknowledges it (and is sent again after a reconnect, which the collector de-duplicates by
 * generator and sequence number). With the collector down or slow, records beyond the queue's bound
 * are dropped and counted, and the exporter reconnects with a backoff.
 * @module
 */
import * as net from 'net';
import * as os from 'os';
import type { FlowRecord } from '../agent/flow-export';
import { LineReader, MAX_BATCH, PROTOCOL_VERSION } from './wire';

/** Where exported records go: the collector over TCP, an IPFIX collector over UDP. */
export interface RecordSink {
  /** Take one record (`startMs`, `endMs`: the flow's setup time and this sample's time, epoch ms). */
  push(rec: FlowRecord, startMs: number, endMs: number): void;
  readonly name: string;
  stats(): SinkStats;
  close(): Promise<void>;
}

export interface SinkStats {
  /** Records waiting (queued, or sent and not yet acknowledged). */
  queued: number;
  /** Records sent (first sends). */
  sent: number;
  /** Records the collector acknowledged as stored. */
  acked: number;
  /** Records dropped: the queue was full. */
  dropped: number;
  connected: boolean;
  /** Connections made after the first. */
  reconnects: number;
}

export interface TcpExporterOptions {
  /** Records held at most (queued + unacknowledged). */
  queueMax?: number;
  /** How often queued records are sent (ms). */
  flushMs?: number;
  /** First and longest wait before reconnecting (ms). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Log a line (connects, losses of the connection). */
  log?: (line: string) => void;
}

/** The generator name of this exporter: host, program, pid and a nonce (a restart is a new generator). */
export function generatorName(): string {
  return `${os.hostname()}:vrouter-emu:${process.pid}:${Math.floor(Math.random() * 0xffffffff).toString(16)}`;
}

export class TcpExporter implements RecordSink {
  readonly name: string;
  private readonly queueMax: number;
  private readonly flushMs: number;
  private readonly backoffMin: number;
  private readonly backoffMax: number;
  private readonly log: (line: string) => void;
  private readonly generator = generatorName();
  /** Records not yet sent. */
  private pending: FlowRecord[] = [];
  /** Batches sent and not yet acknowledged, oldest first. */
  private inflight: { seq: number; records: FlowRecord[]; line: string }[] = [];
  private inflightRecords = 0;
  private seq = 0;
  private sock: net.Socket | undefined;
  private connected = false;
  private closing = false;
  private backoff: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly flushTimer: NodeJS.Timeout;
  private everConnected = false;
  private readonly st = { sent: 0, acked: 0, dropped: 0, reconnects: 0 };

  constructor(private readonly host: string, private readonly port: number, o: TcpExporterOptions = {}) {
    this.name = `${host}:${port}`;
    this.queueMax = o.queueMax ?? 20000;
    this.flushMs = o.flushMs ?? 100;
    this.backoffMin = o.backoffMinMs ?? 250;
    this.backoffMax = o.backoffMaxMs ?? 8000;
    this.backoff = this.backoffMin;
    this.log = o.log ?? ((): void => undefined);
    this.flushTimer = setInterval(() => this.flush(), this.flushMs);
    this.flushTimer.unref();
    this.connect();
  }

  push(rec: FlowRecord): void {
    if (this.pending.length + this.inflightRecords >= this.queueMax) {
      this.st.dropped++;
      return;
    }
    this.pending.push(rec);
  }

  stats(): SinkStats {
    return { queued: this.pending.length + this.inflightRecords, sent: this.st.sent, acked: this.st.acked, dropped: this.st.dropped, connected: this.connected, reconnects: this.st.reconnects };
  }

  private connect(): void {
    if (this.closing) return;
    const s = net.connect({ host: this.host, port: this.port });
    this.sock = s;
    s.setNoDelay(true);
    const reader = new LineReader();
    s.on('connect', () => {
      this.connected = true;
      this.backoff = this.backoffMin;
      if (this.everConnected) this.st.reconnects++;
      this.everConnected = true;
      this.log(`flow export: connected to the collector at ${this.name}`);
      s.write(JSON.stringify({ hello: { generator: this.generator, v: PROTOCOL_VERSION } }) + '\n');
      // What the last connection left unacknowledged goes again (the collector drops duplicates).
      for (const b of this.inflight) s.write(b.line);
      this.flush();
    });
    s.on('data', (d: Buffer) => {
      const lines = reader.push(d);
      if (lines === null) {
        s.destroy();
        return;
      }
      for (const l of lines) {
        let ack = -1;
        try {
          const m = JSON.parse(l) as { ack?: unknown };
          if (typeof m.ack === 'number') ack = m.ack;
        } catch {
          /* not an ack: ignored */
        }
        while (this.inflight.length > 0 && this.inflight[0].seq <= ack) {
          const b = this.inflight.shift() as (typeof this.inflight)[0];
          this.inflightRecords -= b.records.length;
          this.st.acked += b.records.length;
        }
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      const was = this.connected;
      this.connected = false;
      this.sock = undefined;
      if (this.closing) return;
      if (was) this.log(`flow export: lost the collector at ${this.name}; reconnecting (records are kept up to ${this.queueMax})`);
      this.reconnectTimer = setTimeout(() => this.connect(), this.backoff);
      this.reconnectTimer.unref();
      this.backoff = Math.min(this.backoff * 2, this.backoffMax);
    });
  }

  /** Send queued records in batches while the socket takes them. */
  private flush(): void {
    const s = this.sock;
    if (!this.connected || !s) return;
    while (this.pending.length > 0 && s.writableLength < 1 << 20) {
      const records = this.pending.splice(0, MAX_BATCH);
      const seq = ++this.seq;
      const line = JSON.stringify({ seq, records }) + '\n';
      this.inflight.push({ seq, records, line });
      this.inflightRecords += records.length;
      this.st.sent += records.length;
      s.write(line);
    }
  }

  /** Send what is queued, wait up to `waitMs` for the acknowledgements, then close. */
  async close(waitMs = 1000): Promise<void> {
    this.flush();
    const until = Date.now() + waitMs;
    while (this.connected && this.inflight.length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.closing = true;
    clearInterval(this.flushTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.sock?.destroy();
  }
}
