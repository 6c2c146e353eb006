/**
 * Flow records as IPFIX (RFC 7011) over UDP, for standard collectors (nfcapd, tshark, pmacct): one
 * template of standard information elements (RFC 7012), re-sent every TEMPLATE_REFRESH_MS and with the
 * first message; data sets of up to RECORDS_PER_MESSAGE records; the header's sequence number counts
 * the data records sent before the message (modulo 2^32). Contrail 2.22 exported to its own collector
 * only: IPFIX is the emulator's addition. The deltas are the agent's (normalized when sampled).
 * @module
 */
import * as dgram from 'dgram';
import * as dns from 'dns';
import * as net from 'net';
import type { FlowRecord } from '../agent/flow-export';
import {
  VR_FLOW_TCP_ESTABLISHED,
  VR_FLOW_TCP_ESTABLISHED_R,
  VR_FLOW_TCP_FIN,
  VR_FLOW_TCP_RST,
  VR_FLOW_TCP_SYN,
} from '../dp/defs';
import { type ExportTimers, type RecordSink, type SinkStats, realTimers } from './exporter';

export const IPFIX_VERSION = 10;
export const TEMPLATE_ID = 256;
export const OBSERVATION_DOMAIN = 1;
export const TEMPLATE_REFRESH_MS = 10_000;
/** The IPFIX port (RFC 7011 §10.3.4), for `ipfix://HOST` without one. */
export const IPFIX_PORT = 4739;
/** How long an exporter waits before it looks a collector's name up again after a failure (ms). */
export const RESOLVE_RETRY_MS = 10_000;

// TCP header flags as tcpControlBits (IE 6) carries them (RFC 7012 §5.8.1).
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/**
 * tcpControlBits of a flow from its fe_tcp_flags, which are vRouter's TCP state bits (VR_FLOW_TCP_*),
 * not header flags: this direction's SYN and FIN are its packets' SYN and FIN; RST (set on both
 * directions of a reset session) is RST; an established direction (ESTABLISHED or ESTABLISHED_R: the
 * handshake's ACK or SYN-ACK) sent ACK. The _R bits of SYN and FIN tell what the reverse flow sent, so
 * they are left to the reverse flow's record; HALF_CLOSE and DEAD have no flag of their own.
 */
export function tcpControlBits(vrTcpFlags: number): number {
  let b = 0;
  if (vrTcpFlags & VR_FLOW_TCP_FIN) b |= TCP_FIN;
  if (vrTcpFlags & VR_FLOW_TCP_SYN) b |= TCP_SYN;
  if (vrTcpFlags & VR_FLOW_TCP_RST) b |= TCP_RST;
  if (vrTcpFlags & (VR_FLOW_TCP_ESTABLISHED | VR_FLOW_TCP_ESTABLISHED_R)) b |= TCP_ACK;
  return b;
}

/** The template: (information element id, length). */
export const TEMPLATE: readonly [number, number][] = [
  [8, 4], // sourceIPv4Address
  [12, 4], // destinationIPv4Address
  [7, 2], // sourceTransportPort
  [11, 2], // destinationTransportPort
  [4, 1], // protocolIdentifier
  [6, 2], // tcpControlBits
  [1, 8], // octetDeltaCount
  [2, 8], // packetDeltaCount
  [152, 8], // flowStartMilliseconds
  [153, 8], // flowEndMilliseconds
  [61, 1], // flowDirection: 0 ingress, 1 egress
];
export const RECORD_LEN = TEMPLATE.reduce((n, [, l]) => n + l, 0);
/** Records per message: keeps a message with its template under 1400 bytes. */
export const RECORDS_PER_MESSAGE = Math.floor((1400 - 16 - 4 - (4 + TEMPLATE.length * 4) - 4) / RECORD_LEN);

/** One IPFIX record's values. */
export interface IpfixRecord {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  proto: number;
  tcpFlags: number;
  octets: number;
  packets: number;
  startMs: number;
  endMs: number;
  egress: boolean;
}

function put64(dv: DataView, at: number, v: number): void {
  const x = Math.max(0, Math.floor(v));
  dv.setUint32(at, Math.floor(x / 0x100000000));
  dv.setUint32(at + 4, x >>> 0);
}

/**
 * One IPFIX message: header, the template set when `withTemplate`, one data set.
 * @param seq the count of data records sent before this message
 */
export function ipfixMessage(records: IpfixRecord[], seq: number, exportSecs: number, withTemplate: boolean): Uint8Array {
  const tmplLen = withTemplate ? 4 + 4 + TEMPLATE.length * 4 : 0;
  const dataLen = records.length > 0 ? 4 + records.length * RECORD_LEN : 0;
  const len = 16 + tmplLen + dataLen;
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, IPFIX_VERSION);
  dv.setUint16(2, len);
  dv.setUint32(4, exportSecs >>> 0);
  dv.setUint32(8, seq >>> 0);
  dv.setUint32(12, OBSERVATION_DOMAIN);
  let at = 16;
  if (withTemplate) {
    dv.setUint16(at, 2); // template set
    dv.setUint16(at + 2, tmplLen);
    dv.setUint16(at + 4, TEMPLATE_ID);
    dv.setUint16(at + 6, TEMPLATE.length);
    at += 8;
    for (const [id, l] of TEMPLATE) {
      dv.setUint16(at, id);
      dv.setUint16(at + 2, l);
      at += 4;
    }
  }
  if (records.length > 0) {
    dv.setUint16(at, TEMPLATE_ID);
    dv.setUint16(at + 2, dataLen);
    at += 4;
    for (const r of records) {
      dv.setUint32(at, r.src >>> 0);
      dv.setUint32(at + 4, r.dst >>> 0);
      dv.setUint16(at + 8, r.sport & 0xffff);
      dv.setUint16(at + 10, r.dport & 0xffff);
      dv.setUint8(at + 12, r.proto);
      dv.setUint16(at + 13, r.tcpFlags & 0xfff);
      put64(dv, at + 15, r.octets);
      put64(dv, at + 23, r.packets);
      put64(dv, at + 31, r.startMs);
      put64(dv, at + 39, r.endMs);
      dv.setUint8(at + 47, r.egress ? 1 : 0);
      at += RECORD_LEN;
    }
  }
  return b;
}

export interface IpfixExporterOptions {
  flushMs?: number;
  queueMax?: number;
  /** The clock (epoch ms): export times, template refresh, lookup retry; tests drive it by hand. */
  now?: () => number;
  /** The flush timer; tests fire it by hand. */
  timers?: ExportTimers;
  /** Log a line (a collector name that does not resolve). */
  log?: (line: string) => void;
  /** The name lookup (dns.lookup); tests count its calls. */
  lookup?: (host: string, cb: (err: NodeJS.ErrnoException | null, address: string) => void) => void;
}

/**
 * The exporter: records batched into messages every `flushMs` (or when a message is full). The
 * collector's name is looked up once, at the start (and again only after a failed lookup): a lookup
 * per datagram would go through the thread pool and could reorder the datagrams, which nfcapd counts
 * as sequence errors. Until the address is known the records wait in the (bounded) queue.
 */
export class IpfixExporter implements RecordSink {
  readonly name: string;
  private readonly sock: dgram.Socket;
  private pending: IpfixRecord[] = [];
  private seq = 0;
  private lastTemplate = -Infinity;
  private readonly timer: { cancel(): void };
  private readonly st = { sent: 0, dropped: 0 };
  private readonly queueMax: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly lookup: NonNullable<IpfixExporterOptions['lookup']>;
  /** The collector's address once resolved. */
  private addr: string | undefined;
  private resolving = false;
  private nextResolve = 0;
  private closed = false;

  constructor(private readonly host: string, private readonly port: number, o: IpfixExporterOptions = {}) {
    this.name = `ipfix://${host}:${port}`;
    this.queueMax = o.queueMax ?? 20000;
    this.now = o.now ?? Date.now;
    this.log = o.log ?? ((): void => undefined);
    this.lookup = o.lookup ?? ((h, cb): void => dns.lookup(h, { family: 4 }, (e, a) => cb(e, a)));
    this.sock = dgram.createSocket('udp4');
    this.sock.on('error', () => undefined);
    if (net.isIPv4(host)) this.addr = host;
    else this.resolve();
    this.timer = (o.timers ?? realTimers).every(o.flushMs ?? 100, () => this.flush());
  }

  private resolve(): void {
    if (this.resolving || this.closed) return;
    this.resolving = true;
    this.lookup(this.host, (e, address) => {
      this.resolving = false;
      if (e || !net.isIPv4(address)) {
        this.nextResolve = this.now() + RESOLVE_RETRY_MS;
        this.log(`flow export: ${this.name}: cannot resolve ${this.host} (${e?.code ?? 'no IPv4 address'}); records wait, trying again in ${RESOLVE_RETRY_MS / 1000} s`);
        return;
      }
      this.addr = address;
      this.flush();
    });
  }

  push(rec: FlowRecord, startMs: number, endMs: number): void {
    if (this.pending.length >= this.queueMax) {
      this.st.dropped++;
      return;
    }
    // Transport ports for TCP, UDP (and SCTP); the flow key's ICMP identifier/type is not a port.
    const ports = rec.protocol === 6 || rec.protocol === 17 || rec.protocol === 132;
    this.pending.push({
      src: rec.sourceip, dst: rec.destip, sport: ports ? rec.sport : 0, dport: ports ? rec.dport : 0, proto: rec.protocol,
      tcpFlags: rec.protocol === 6 ? tcpControlBits(rec.tcp_flags) : 0,
      octets: rec.diff_bytes, packets: rec.diff_packets, startMs, endMs, egress: rec.direction_ing === 0,
    });
    if (this.pending.length >= RECORDS_PER_MESSAGE) this.flush();
  }

  private flush(): void {
    const addr = this.addr;
    if (addr === undefined) {
      if (this.now() >= this.nextResolve) this.resolve();
      return;
    }
    const now = this.now();
    while (this.pending.length > 0 || now - this.lastTemplate >= TEMPLATE_REFRESH_MS) {
      const records = this.pending.splice(0, RECORDS_PER_MESSAGE);
      const withTemplate = now - this.lastTemplate >= TEMPLATE_REFRESH_MS;
      if (withTemplate) this.lastTemplate = now;
      const msg = ipfixMessage(records, this.seq, Math.floor(now / 1000), withTemplate);
      this.seq = (this.seq + records.length) >>> 0;
      this.st.sent += records.length;
      this.sock.send(msg, this.port, addr);
      if (this.pending.length === 0) break;
    }
  }

  stats(): SinkStats {
    return { queued: this.pending.length, sent: this.st.sent, acked: 0, dropped: this.st.dropped, connected: this.addr !== undefined, reconnects: 0 };
  }

  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    this.timer.cancel();
    await new Promise<void>((r) => setTimeout(r, 50));
    this.sock.close();
  }
}
