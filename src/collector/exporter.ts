/**
 * The agent's side of flow export to a collector over TCP (wire.ts). It never blocks the agent: records
 * go into a bounded queue; a timer sends them in batches; a batch stays in the queue until the
 * collector acknowledges it (and is sent again after a reconnect, which the collector de-duplicates by
 * generator and sequence number). With the collector down or slow, records beyond the queue's bound
 * are dropped and counted, and the exporter reconnects with a backoff.
 *
 * A collector that stops answering is noticed: a connect that does not complete within
 * `connectTimeoutMs`, a batch unacknowledged for `ackTimeoutMs` (a stopped or wedged collector, a
 * host gone without a reset: the connection is dropped and made again), and TCP keepalive underneath.
 * The backoff goes back to its minimum only once a connection has had an acknowledgement, so a peer
 * that accepts and closes at once is not reconnected to at the minimum interval for ever.
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
  /** Connections given up: a connect that took too long, a batch not acknowledged in time. */
  timeouts?: number;
}

export interface TcpExporterOptions {
  /** Records held at most (queued + unacknowledged). */
  queueMax?: number;
  /** How often queued records are sent (ms). */
  flushMs?: number;
  /** First and longest wait before reconnecting (ms). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A connect not done in this time is given up (ms). */
  connectTimeoutMs?: number;
  /** The oldest batch sent and not acknowledged in this time: the connection is dropped and made again (ms). */
  ackTimeoutMs?: number;
  /** TCP keepalive's first probe (ms). */
  keepAliveMs?: number;
  /** Log a line (connects, losses of the connection). */
  log?: (line: string) => void;
  /** Open the connection (net.connect; tests replace it). */
  connect?: (host: string, port: number) => net.Socket;
  /** The clock (epoch ms) for acknowledgement timeouts; tests drive it by hand. */
  now?: () => number;
  /** The flush and reconnect timers; tests fire them by hand. */
  timers?: ExportTimers;
}

/** The timers an exporter uses (unref'd: they never keep the process alive). */
export interface ExportTimers {
  after(ms: number, fn: () => void): { cancel(): void };
  every(ms: number, fn: () => void): { cancel(): void };
}

export const realTimers: ExportTimers = {
  after(ms, fn) {
    const h = setTimeout(fn, ms);
    h.unref();
    return { cancel: () => clearTimeout(h) };
  },
  every(ms, fn) {
    const h = setInterval(fn, ms);
    h.unref();
    return { cancel: () => clearInterval(h) };
  },
};

export const EXPORT_CONNECT_TIMEOUT_MS = 5000;
export const EXPORT_ACK_TIMEOUT_MS = 10_000;
export const EXPORT_KEEPALIVE_MS = 5000;

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
  private readonly connectTimeout: number;
  private readonly ackTimeout: number;
  private readonly keepAlive: number;
  private readonly log: (line: string) => void;
  private readonly open: (host: string, port: number) => net.Socket;
  private readonly generator = generatorName();
  /** Records not yet sent. */
  private pending: FlowRecord[] = [];
  /** Batches sent and not yet acknowledged, oldest first, with when they were (last) sent (ms). */
  private inflight: { seq: number; records: FlowRecord[]; line: string; sentAt: number }[] = [];
  private inflightRecords = 0;
  private seq = 0;
  private sock: net.Socket | undefined;
  private connected = false;
  private closing = false;
  private backoff: number;
  private reconnectTimer: { cancel(): void } | undefined;
  private readonly flushTimer: { cancel(): void };
  private readonly now: () => number;
  private readonly timers: ExportTimers;
  private everConnected = false;
  private readonly st = { sent: 0, acked: 0, dropped: 0, reconnects: 0, timeouts: 0 };

  constructor(private readonly host: string, private readonly port: number, o: TcpExporterOptions = {}) {
    this.name = `${host}:${port}`;
    this.queueMax = o.queueMax ?? 20000;
    this.flushMs = o.flushMs ?? 100;
    this.backoffMin = o.backoffMinMs ?? 250;
    this.backoffMax = o.backoffMaxMs ?? 8000;
    this.backoff = this.backoffMin;
    this.connectTimeout = o.connectTimeoutMs ?? EXPORT_CONNECT_TIMEOUT_MS;
    this.ackTimeout = o.ackTimeoutMs ?? EXPORT_ACK_TIMEOUT_MS;
    this.keepAlive = o.keepAliveMs ?? EXPORT_KEEPALIVE_MS;
    this.log = o.log ?? ((): void => undefined);
    this.open = o.connect ?? ((h, p): net.Socket => net.connect({ host: h, port: p }));
    this.now = o.now ?? Date.now;
    this.timers = o.timers ?? realTimers;
    this.flushTimer = this.timers.every(this.flushMs, () => this.flush());
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
    return {
      queued: this.pending.length + this.inflightRecords, sent: this.st.sent, acked: this.st.acked, dropped: this.st.dropped,
      connected: this.connected, reconnects: this.st.reconnects, timeouts: this.st.timeouts,
    };
  }

  private connect(): void {
    if (this.closing) return;
    const s = this.open(this.host, this.port);
    this.sock = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, this.keepAlive);
    // Until connected, the socket's inactivity timeout is the connect timeout.
    s.setTimeout(this.connectTimeout);
    s.once('timeout', () => {
      if (this.connected) return;
      this.st.timeouts++;
      this.log(`flow export: no connection to the collector at ${this.name} within ${this.connectTimeout} ms`);
      s.destroy();
    });
    const reader = new LineReader();
    s.on('connect', () => {
      s.setTimeout(0);
      this.connected = true;
      if (this.everConnected) this.st.reconnects++;
      this.everConnected = true;
      this.log(`flow export: connected to the collector at ${this.name}`);
      s.write(JSON.stringify({ hello: { generator: this.generator, v: PROTOCOL_VERSION } }) + '\n');
      // What the last connection left unacknowledged goes again (the collector drops duplicates).
      const now = this.now();
      for (const b of this.inflight) {
        b.sentAt = now;
        s.write(b.line);
      }
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
          // This collector stores what it is sent: the next loss of the connection starts over.
          this.backoff = this.backoffMin;
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
      this.reconnectTimer = this.timers.after(this.backoff, () => this.connect());
      this.backoff = Math.min(this.backoff * 2, this.backoffMax);
    });
  }

  /** Send queued records in batches while the socket takes them; give up a connection whose acknowledgements stopped. */
  private flush(): void {
    const s = this.sock;
    if (!this.connected || !s) return;
    const now = this.now();
    if (this.inflight.length > 0 && now - this.inflight[0].sentAt > this.ackTimeout) {
      this.st.timeouts++;
      this.log(`flow export: the collector at ${this.name} acknowledged nothing for ${this.ackTimeout} ms; reconnecting`);
      s.destroy();
      return;
    }
    while (this.pending.length > 0 && s.writableLength < 1 << 20) {
      const records = this.pending.splice(0, MAX_BATCH);
      const seq = ++this.seq;
      const line = JSON.stringify({ seq, records }) + '\n';
      this.inflight.push({ seq, records, line, sentAt: now });
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
    this.flushTimer.cancel();
    this.reconnectTimer?.cancel();
    this.sock?.destroy();
  }
}
