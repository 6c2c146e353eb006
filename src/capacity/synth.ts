/**
 * Synthetic captures for what-if studies (`vrouter-emu synth`): seeded, so the same options give the
 * same bytes, and generated as a stream of whole records into buffers the caller hands in (`fill`), so
 * ten million frames never need to be in memory. Pure: no fs, no clock; cli/synth.ts writes the chunks.
 *
 * Scenarios, combinable; their flows are merged in time order:
 *  - flows: N UDP and TCP flows whose sizes (frames) are Pareto(`alpha`) shares of the frames left by the
 *    other scenarios, starting as a Poisson or Pareto process over the duration; TCP flows are whole
 *    sessions (SYN, SYN-ACK, ACK, data both ways, FIN, FIN, ACK) so the TCP digest sees them open and close;
 *  - dns-storm: short UDP/53 query–response flows from a few clients, each from its own source port;
 *  - syn-flood: SYNs from random sources (address and port) to one server port, never answered;
 *  - port-scan: one source probing many ports of one target with SYNs, answered by RST-ACK or not at all.
 * Every 5-tuple is distinct (an affine permutation of the flow's number gives its client address and
 * port), so a replay's flow count is predictable: two entries per flow while the table has room.
 *
 * Every frame is Ethernet from the VM's MAC to the vRouter's (00:00:5e:00:01:00), IPv4 with correct
 * header and transport checksums and a zero payload, laid out as io/frame-build.ts lays it out (the
 * tests compare the two). The hot loop writes records straight into the output buffer: per-flow state
 * lives in typed arrays indexed by slot, and the flows waiting for their next frame sit in a binary heap
 * of slots keyed by that frame's time.
 * @module
 */
import { UserError } from '../errors';
import { xorshift32 } from '../lib/xorshift';
import { ipParse, ipString } from '../lib/ipv4';
import { inetChecksum } from '../io/frame-build';

export const SYNTH_SCENARIOS = ['flows', 'dns-storm', 'syn-flood', 'port-scan'] as const;
export type SynthScenario = (typeof SYNTH_SCENARIOS)[number];

export interface SynthOptions {
  scenarios: SynthScenario[];
  seed: number;
  format: 'pcap' | 'pcapng';
  /** Flow starts of every scenario are spread over this much capture time, seconds. */
  durationS: number;
  /** Sources and destinations, "a.b.c.d/len". */
  subnet: string;
  /** flows: how many, and the capture's total frame count (undefined: 50 per flow plus the other scenarios'). */
  flows: number;
  frames?: number;
  /** flows: Pareto shape of the flow sizes (smaller = heavier tail). */
  alpha: number;
  /** flows: share of TCP flows (the rest UDP). */
  tcpShare: number;
  /** flows: frames per second within a flow (faster when the flow would outlast the duration). */
  pps: number;
  /** flows: data frame length, "imix" (7:4:1 of 60, 590, 1514 bytes), "N" or "MIN-MAX" (uniform). */
  frameSize: string;
  /** Flow starts: Poisson process, or Pareto inter-arrivals of shape `arrivalAlpha` (bursty). */
  arrivals: 'poisson' | 'pareto';
  arrivalAlpha: number;
  dnsQueries: number;
  dnsClients: number;
  syns: number;
  synPort: number;
  scanPorts: number;
  scanReply: 'rst' | 'none';
  /** Time from a request to its answer (DNS response, scan RST), ms. */
  rttMs: number;
}

export const SYNTH_DEFAULTS: SynthOptions = {
  scenarios: ['flows'], seed: 1, format: 'pcap', durationS: 60, subnet: '10.1.1.0/24',
  flows: 1000, alpha: 1.2, tcpShare: 0.5, pps: 50, frameSize: 'imix', arrivals: 'poisson', arrivalAlpha: 1.5,
  dnsQueries: 10000, dnsClients: 8, syns: 10000, synPort: 80, scanPorts: 1000, scanReply: 'rst', rttMs: 1,
};

/** What was written; `flows` counts distinct 5-tuple pairs, `bytes` the frames' bytes (no file framing). */
export interface SynthStats {
  frames: number;
  flows: number;
  bytes: number;
  /** Capture time from the first frame to the last, seconds. */
  durationS: number;
}

export const SYNTH_VM_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
export const SYNTH_VROUTER_MAC = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x00];
/** The capture's first flow starts at 2015-12-13 09:46:40 UTC (a fixed epoch keeps files reproducible). */
export const SYNTH_EPOCH_MS = 1_450_000_000_000;

// Flow kinds (per slot); a scenario's start stream is tagged with its first kind (K_UDP: the flows scenario, whose flows are UDP or TCP).
const K_UDP = 0;
const K_TCP = 1;
const K_DNS = 2;
const K_SYN = 3;
const K_SCAN = 4;

const TCP_MIN_FRAMES = 7; // SYN, SYN-ACK, ACK, one data frame, FIN, FIN, ACK
const EPHEMERAL_LO = 32768; // Linux's default ip_local_port_range
const EPHEMERAL_N = 61000 - 32768;
const TCP_SERVICES = [80, 443, 22, 8080, 3306, 5432, 6379, 25];
const UDP_SERVICES = [53, 123, 161, 514, 5060, 1812, 4789, 69];
const MAX_FRAME = 9018;
/** Room a record may need: pcapng EPB framing (32) + the largest frame + padding. */
const MAX_RECORD = 32 + MAX_FRAME + 4;
const TCP_F = 0x01;
const TCP_S = 0x02;
const TCP_R = 0x04;
const TCP_P = 0x08;
const TCP_A = 0x10;
const DNS_QNAME_LEN = 23; // "q" + 8 hex digits, "example", "com" as labels
const DNS_QUERY_LEN = 12 + DNS_QNAME_LEN + 4;
const DNS_RESPONSE_LEN = DNS_QUERY_LEN + 16;

function bad(opt: string, v: unknown, want: string): UserError {
  return new UserError(`${opt} ${String(v)}: ${want}`);
}

function checkInt(opt: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw bad(opt, v, `expected an integer from ${min} to ${max}`);
}

function checkNum(opt: string, v: number, min: number, max: number, open = false): void {
  if (!Number.isFinite(v) || (open ? v <= min : v < min) || v > max) throw bad(opt, v, `expected a number ${open ? '>' : '≥'} ${min} and ≤ ${max}`);
}

/** "a.b.c.d/len" → the first address and the number of host addresses (all of a /31 or /32, else without network and broadcast). */
export function synthSubnet(s: string): { first: number; hosts: number } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  const base = m ? ipParse(m[1]) : -1;
  const len = m ? Number(m[2]) : -1;
  if (!m || base < 0 || len > 32) throw bad('--subnet', s, 'expected an IPv4 prefix such as 10.1.1.0/24');
  const size = 2 ** (32 - len);
  const net = len === 0 ? 0 : (base & ~(size - 1)) >>> 0;
  if (net !== base) throw bad('--subnet', s, `host bits are set; the prefix is ${ipString(net)}/${len}`);
  const hosts = len >= 31 ? size : size - 2;
  if (hosts < 2) throw bad('--subnet', s, 'needs room for two addresses (a prefix of /31 or shorter)');
  return { first: len >= 31 ? net : net + 1, hosts };
}

/** Data frame sizes: a table to pick from uniformly (imix), or a range. */
function frameSizes(s: string): { table: number[]; lo: number; span: number } {
  const lim = (v: number): void => checkInt('--frame-size', v, 60, MAX_FRAME);
  if (s === 'imix') return { table: [60, 60, 60, 60, 60, 60, 60, 590, 590, 590, 590, 1514], lo: 0, span: 0 };
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw bad('--frame-size', s, 'expected imix, a length N or a range MIN-MAX (bytes, 60 to 9018)');
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  lim(lo);
  lim(hi);
  if (hi < lo) throw bad('--frame-size', s, 'the range runs backwards');
  return { table: [], lo, span: hi - lo + 1 };
}

/** The option checks, each naming its option; @returns the frames the flows scenario gets. */
function checkOptions(o: SynthOptions, hosts: number): number {
  if (o.scenarios.length === 0) throw bad('--scenario', '', `name one or more of ${SYNTH_SCENARIOS.join(', ')} or mix`);
  checkInt('--seed', o.seed, 0, 0xffffffff);
  checkNum('--duration', o.durationS, 0, 1e7, true);
  checkNum('--rtt', o.rttMs, 0, 60000);
  if (o.format !== 'pcap' && o.format !== 'pcapng') throw bad('--format', o.format, 'expected pcap or pcapng');
  if (o.arrivals !== 'poisson' && o.arrivals !== 'pareto') throw bad('--arrivals', o.arrivals, 'expected poisson or pareto');
  checkNum('--arrival-alpha', o.arrivalAlpha, 0, 100, true);
  const has = (s: SynthScenario): boolean => o.scenarios.includes(s);
  let others = 0;
  if (has('dns-storm')) {
    checkInt('--dns-queries', o.dnsQueries, 1, 1e9);
    checkInt('--dns-clients', o.dnsClients, 1, hosts - 1);
    if (o.dnsQueries > o.dnsClients * 64512) throw bad('--dns-queries', o.dnsQueries, `at most ${o.dnsClients * 64512} distinct queries from ${o.dnsClients} clients (64512 ports each)`);
    others += 2 * o.dnsQueries;
  }
  if (has('syn-flood')) {
    checkInt('--syns', o.syns, 1, Math.min(1e9, (hosts - 1) * 64512));
    checkInt('--syn-port', o.synPort, 1, 65535);
    others += o.syns;
  }
  if (has('port-scan')) {
    checkInt('--scan-ports', o.scanPorts, 1, 65535);
    if (o.scanReply !== 'rst' && o.scanReply !== 'none') throw bad('--scan-reply', o.scanReply, 'expected rst or none');
    others += o.scanReply === 'rst' ? 2 * o.scanPorts : o.scanPorts;
  }
  if (!has('flows')) {
    if (o.frames !== undefined) throw bad('--frames', o.frames, 'sets the flows scenario\'s share of the capture: add flows to --scenario, or set the other scenarios\' own counts');
    return 0;
  }
  checkInt('--flows', o.flows, 1, Math.min(1e8, hosts * EPHEMERAL_N));
  checkNum('--alpha', o.alpha, 0, 100, true);
  checkNum('--tcp-share', o.tcpShare, 0, 1);
  checkNum('--pps', o.pps, 0, 1e9, true);
  frameSizes(o.frameSize);
  if (o.frames === undefined) return 50 * o.flows;
  checkInt('--frames', o.frames, 1, 1e11);
  const left = o.frames - others;
  if (left < o.flows) {
    throw bad('--frames', o.frames, `leaves ${Math.max(left, 0)} frames for ${o.flows} flows after the other scenarios' ${others}; raise it or lower --flows`);
  }
  return left;
}

/** u in (0, 1) from 32 random bits (xorshift32 never returns 0). */
function unit(rnd: () => number): number {
  return rnd() / 4294967296;
}

/** A bijection of [0, n): i → (a·i + b) mod n with a coprime to n, small enough that a·i stays exact. */
function affine(rnd: () => number, n: number, count: number): { a: number; b: number } {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  const amax = Math.max(2, Math.min(n, Math.floor(2 ** 52 / Math.max(count, 1))));
  let a = 1 + (rnd() % (amax - 1));
  while (gcd(a, n) !== 1) a = a + 1 >= amax ? 1 : a + 1;
  return { a, b: rnd() % n };
}

/** One scenario's flow starts, in order: the i-th start is the cumulative sum of i+1 of n+1 inter-arrivals, scaled so the n+1 fill the duration. */
class Starts {
  readonly n: number;
  i = 0;
  next = Infinity;
  private sum = 0;
  private readonly scale: number;
  private readonly rnd: () => number;
  private readonly shape: number; // 0: exponential (Poisson process)

  constructor(readonly kind: number, n: number, seed: number, o: SynthOptions) {
    this.n = n;
    this.shape = o.arrivals === 'pareto' ? o.arrivalAlpha : 0;
    // Two passes over the same stream: the total first (the scale), then the starts.
    let total = 0;
    const r0 = xorshift32(seed);
    for (let k = 0; k <= n; k++) total += this.gap(r0);
    this.scale = (o.durationS * 1000) / total;
    this.rnd = xorshift32(seed);
    this.advance();
  }

  private gap(rnd: () => number): number {
    const u = unit(rnd);
    return this.shape === 0 ? -Math.log(u) : u ** (-1 / this.shape);
  }

  /** Move to the next start (Infinity after the last). */
  advance(): void {
    if (this.i >= this.n) {
      this.next = Infinity;
      return;
    }
    this.sum += this.gap(this.rnd);
    this.next = this.sum * this.scale;
  }
}

/** A seeded generator of one synthetic capture; call `fill` until it returns 0. */
export class Synth {
  readonly stats: SynthStats = { frames: 0, flows: 0, bytes: 0, durationS: 0 };
  private readonly o: SynthOptions;
  private readonly first: number;
  private readonly hosts: number;
  private readonly sizes: { table: number[]; lo: number; span: number };
  private readonly rnd: () => number; // per-frame draws (data frame sizes)
  private readonly starts: Starts[] = [];
  private headerDone = false;
  private firstUs = -1;
  private lastUs = 0;

  // flows scenario, decided up front: kind and frame count of flow i
  private readonly fKind: Uint8Array;
  private readonly fFrames: Uint32Array;
  private readonly fAttr: () => number;
  private readonly fPerm: { a: number; b: number };
  // dns-storm
  private readonly dnsAttr: () => number;
  private readonly dnsPerm: { a: number; b: number };
  private readonly dnsServer: number;
  private readonly dnsClientPerm: { a: number; b: number };
  // syn-flood
  private readonly synAttr: () => number;
  private readonly synPerm: { a: number; b: number };
  private readonly synServer: number;
  // port-scan
  private readonly scanPerm: { a: number; b: number };
  private readonly scanSrc: number;
  private readonly scanDst: number;
  private readonly scanSport: number;
  private readonly scanAttr: () => number;

  // Active flows by slot (grown by doubling), and the heap of slots by the time of their next frame.
  private cap = 0;
  private kind = new Uint8Array(0);
  private cip = new Uint32Array(0);
  private sip = new Uint32Array(0);
  private cport = new Uint16Array(0);
  private sport = new Uint16Array(0);
  private total = new Uint32Array(0);
  private sent = new Uint32Array(0);
  private cseq = new Uint32Array(0);
  private sseq = new Uint32Array(0);
  private aux = new Uint32Array(0); // DNS: query id and name; scan: unused
  private tNext = new Float64Array(0);
  private gap = new Float64Array(0);
  private heap = new Int32Array(0);
  private heapN = 0;
  private free: number[] = [];
  private used = 0;

  constructor(opts: Partial<SynthOptions>) {
    const o = { ...SYNTH_DEFAULTS, ...opts };
    this.o = o;
    const net = synthSubnet(o.subnet);
    this.first = net.first;
    this.hosts = net.hosts;
    const flowFrames = checkOptions(o, this.hosts);
    this.sizes = frameSizes(o.scenarios.includes('flows') ? o.frameSize : 'imix');
    // Independent streams per purpose and scenario: adding a scenario leaves the others' flows as they were.
    const seed = o.seed >>> 0;
    const stream = (k: number): (() => number) => xorshift32((seed ^ Math.imul(k + 1, 0x9e3779b9)) >>> 0);
    this.rnd = stream(0);
    const has = (s: SynthScenario): boolean => o.scenarios.includes(s);
    const H = this.hosts;

    const n = has('flows') ? o.flows : 0;
    this.fKind = new Uint8Array(n);
    this.fFrames = new Uint32Array(n);
    this.fAttr = stream(1);
    this.fPerm = affine(stream(2), H * EPHEMERAL_N, n);
    if (n > 0) this.flowSizes(stream(3), flowFrames);

    this.dnsAttr = stream(4);
    this.dnsServer = this.dnsAttr() % H;
    this.dnsClientPerm = affine(this.dnsAttr, H - 1, o.dnsClients);
    this.dnsPerm = affine(this.dnsAttr, o.dnsClients * 64512, o.dnsQueries);

    this.synAttr = stream(5);
    this.synServer = this.synAttr() % H;
    this.synPerm = affine(this.synAttr, (H - 1) * 64512, o.syns);

    this.scanAttr = stream(6);
    this.scanSrc = this.scanAttr() % H;
    this.scanDst = skip(this.scanAttr() % (H - 1), this.scanSrc);
    this.scanSport = EPHEMERAL_LO + (this.scanAttr() % EPHEMERAL_N);
    this.scanPerm = affine(this.scanAttr, o.scanPorts, o.scanPorts);

    if (n > 0) this.starts.push(new Starts(K_UDP, n, stream(10)(), o));
    if (has('dns-storm')) this.starts.push(new Starts(K_DNS, o.dnsQueries, stream(11)(), o));
    if (has('syn-flood')) this.starts.push(new Starts(K_SYN, o.syns, stream(12)(), o));
    if (has('port-scan')) this.starts.push(new Starts(K_SCAN, o.scanPorts, stream(13)(), o));
    this.grow(64);
  }

  /**
   * Kinds (TCP with probability tcpShare) and sizes: each flow gets its minimum (1 UDP frame, 7 for a
   * TCP session), and the rest is shared in proportion to Pareto(alpha) weights, rounded so that the
   * shares add up exactly (the floor of the running sum: each flow within one frame of its share).
   */
  private flowSizes(rnd: () => number, frames: number): void {
    const n = this.fKind.length;
    let need = 0;
    for (let i = 0; i < n; i++) {
      const tcp = unit(rnd) < this.o.tcpShare;
      this.fKind[i] = tcp ? K_TCP : K_UDP;
      need += tcp ? TCP_MIN_FRAMES : 1;
    }
    if (need > frames) {
      throw bad('--frames', this.o.frames ?? frames, `is fewer than the ${n} flows need (${need}: ${TCP_MIN_FRAMES} per TCP session, 1 per UDP flow); raise it, lower --flows or --tcp-share`);
    }
    const w = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += w[i] = unit(rnd) ** (-1 / this.o.alpha);
    const rest = frames - need;
    let cum = 0;
    let given = 0;
    for (let i = 0; i < n; i++) {
      cum += w[i];
      const upTo = i === n - 1 ? rest : Math.min(rest, Math.floor((rest * cum) / sum));
      this.fFrames[i] = (this.fKind[i] === K_TCP ? TCP_MIN_FRAMES : 1) + upTo - given;
      given = upTo;
    }
  }

  /** The capture format being written. */
  get format(): 'pcap' | 'pcapng' {
    return this.o.format;
  }

  private grow(cap: number): void {
    const g = <T extends { length: number; set(a: ArrayLike<number>): void }>(a: T, make: new (n: number) => T): T => {
      const b = new make(cap);
      b.set(a);
      return b;
    };
    this.kind = g(this.kind, Uint8Array);
    this.cip = g(this.cip, Uint32Array);
    this.sip = g(this.sip, Uint32Array);
    this.cport = g(this.cport, Uint16Array);
    this.sport = g(this.sport, Uint16Array);
    this.total = g(this.total, Uint32Array);
    this.sent = g(this.sent, Uint32Array);
    this.cseq = g(this.cseq, Uint32Array);
    this.sseq = g(this.sseq, Uint32Array);
    this.aux = g(this.aux, Uint32Array);
    this.tNext = g(this.tNext, Float64Array);
    this.gap = g(this.gap, Float64Array);
    this.heap = g(this.heap, Int32Array);
    this.cap = cap;
  }

  private addr(host: number): number {
    return (this.first + host) >>> 0;
  }

  /** Start the next flow of `st` in a free slot and queue its first frame. */
  private activate(st: Starts): void {
    const i = st.i;
    const t = st.next;
    st.i++;
    st.advance();
    let s = this.free.pop();
    if (s === undefined) {
      if (this.used === this.cap) this.grow(this.cap * 2);
      s = this.used++;
    }
    const H = this.hosts;
    const o = this.o;
    let total = 1;
    let gap = o.rttMs;
    this.sent[s] = 0;
    this.cseq[s] = 0;
    this.sseq[s] = 0;
    this.aux[s] = 0;
    if (st.kind === K_UDP) {
      // flows: client (address, ephemeral port) from the permutation, a server elsewhere in the subnet
      const v = (this.fPerm.a * i + this.fPerm.b) % (H * EPHEMERAL_N);
      const c = v % H;
      const kind = this.fKind[i];
      this.kind[s] = kind;
      this.cip[s] = this.addr(c);
      this.cport[s] = EPHEMERAL_LO + Math.floor(v / H);
      this.sip[s] = this.addr(skip(this.fAttr() % (H - 1), c));
      const svc = kind === K_TCP ? TCP_SERVICES : UDP_SERVICES;
      this.sport[s] = svc[this.fAttr() % svc.length];
      this.cseq[s] = this.fAttr();
      this.sseq[s] = this.fAttr();
      total = this.fFrames[i];
      // At `pps`, but compressed so that the flow ends by the end of the duration.
      const left = Math.max(o.durationS * 1000 - t, 0);
      gap = Math.max(Math.min(1000 / o.pps, left / Math.max(total - 1, 1)), 0.001);
    } else if (st.kind === K_DNS) {
      const v = (this.dnsPerm.a * i + this.dnsPerm.b) % (o.dnsClients * 64512);
      const k = v % o.dnsClients;
      const client = skip((this.dnsClientPerm.a * k + this.dnsClientPerm.b) % (H - 1), this.dnsServer);
      this.kind[s] = K_DNS;
      this.cip[s] = this.addr(client);
      this.cport[s] = 1024 + Math.floor(v / o.dnsClients);
      this.sip[s] = this.addr(this.dnsServer);
      this.sport[s] = 53;
      this.aux[s] = this.dnsAttr();
      total = 2;
    } else if (st.kind === K_SYN) {
      const v = (this.synPerm.a * i + this.synPerm.b) % ((H - 1) * 64512);
      this.kind[s] = K_SYN;
      this.cip[s] = this.addr(skip(v % (H - 1), this.synServer));
      this.cport[s] = 1024 + Math.floor(v / (H - 1));
      this.sip[s] = this.addr(this.synServer);
      this.sport[s] = o.synPort;
      this.cseq[s] = this.synAttr();
    } else {
      this.kind[s] = K_SCAN;
      this.cip[s] = this.addr(this.scanSrc);
      this.cport[s] = this.scanSport;
      this.sip[s] = this.addr(this.scanDst);
      this.sport[s] = 1 + ((this.scanPerm.a * i + this.scanPerm.b) % o.scanPorts);
      this.cseq[s] = this.scanAttr();
      total = o.scanReply === 'rst' ? 2 : 1;
    }
    this.total[s] = total;
    this.gap[s] = gap;
    this.tNext[s] = t;
    this.stats.flows++;
    this.heapPush(s);
  }

  private heapPush(s: number): void {
    const h = this.heap;
    const t = this.tNext;
    let k = this.heapN++;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (t[h[p]] <= t[s]) break;
      h[k] = h[p];
      k = p;
    }
    h[k] = s;
  }

  /** Restore the heap after the top's key grew (or after moving the last slot to the top). */
  private heapDown(): void {
    const h = this.heap;
    const t = this.tNext;
    const n = this.heapN;
    const s = h[0];
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      if (c + 1 < n && t[h[c + 1]] < t[h[c]]) c++;
      if (t[h[c]] >= t[s]) break;
      h[k] = h[c];
      k = c;
    }
    h[k] = s;
  }

  /**
   * Write whole records into `out` from offset 0 (the file header first), as many as fit.
   * @returns the bytes written; 0 once the capture is complete. `out` must hold at least 64 KiB.
   */
  fill(out: Buffer): number {
    if (out.length < 65536) throw new Error('Synth.fill needs a buffer of at least 64 KiB');
    let o = 0;
    if (!this.headerDone) {
      o = this.fileHeader(out);
      this.headerDone = true;
    }
    const starts = this.starts;
    while (o + MAX_RECORD <= out.length) {
      // Start every flow whose first frame is due before the earliest queued frame.
      const top = this.heapN > 0 ? this.tNext[this.heap[0]] : Infinity;
      let st: Starts | undefined;
      for (let k = 0; k < starts.length; k++) if (!st || starts[k].next < st.next) st = starts[k];
      if (st && st.next <= top && st.next !== Infinity) {
        this.activate(st);
        continue;
      }
      if (this.heapN === 0) break;
      const s = this.heap[0];
      o += this.record(out, o, s);
      const j = ++this.sent[s];
      if (j < this.total[s]) {
        this.tNext[s] += this.gap[s];
      } else {
        this.free.push(s);
        this.heap[0] = this.heap[--this.heapN];
      }
      if (this.heapN > 0) this.heapDown();
    }
    this.stats.durationS = this.firstUs < 0 ? 0 : (this.lastUs - this.firstUs) / 1e6;
    return o;
  }

  private fileHeader(b: Buffer): number {
    if (this.o.format === 'pcap') {
      b.writeUInt32LE(0xa1b2c3d4, 0);
      b.writeUInt16LE(2, 4);
      b.writeUInt16LE(4, 6);
      b.writeUInt32LE(0, 8);
      b.writeUInt32LE(0, 12);
      b.writeUInt32LE(65535, 16);
      b.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
      return 24;
    }
    // SHB (version 1.0, section length unknown), then one Ethernet IDB with the default µs resolution.
    b.writeUInt32LE(0x0a0d0d0a, 0);
    b.writeUInt32LE(28, 4);
    b.writeUInt32LE(0x1a2b3c4d, 8);
    b.writeUInt16LE(1, 12);
    b.writeUInt16LE(0, 14);
    b.writeInt32LE(-1, 16);
    b.writeInt32LE(-1, 20);
    b.writeUInt32LE(28, 24);
    b.writeUInt32LE(1, 28);
    b.writeUInt32LE(20, 32);
    b.writeUInt16LE(1, 36);
    b.writeUInt16LE(0, 38);
    b.writeUInt32LE(65535, 40);
    b.writeUInt32LE(20, 44);
    return 48;
  }

  /** Slot `s`'s next frame as one record at `o`. @returns the record's length. */
  private record(b: Buffer, o: number, s: number): number {
    const ng = this.o.format === 'pcapng';
    const hdr = ng ? 28 : 16;
    const len = this.frame(b, o + hdr, s);
    const us = SYNTH_EPOCH_MS * 1000 + Math.round(this.tNext[s] * 1000);
    if (this.firstUs < 0) this.firstUs = us;
    this.lastUs = us;
    this.stats.frames++;
    this.stats.bytes += len;
    if (!ng) {
      const sec = Math.floor(us / 1e6);
      b.writeUInt32LE(sec, o);
      b.writeUInt32LE(us - sec * 1e6, o + 4);
      b.writeUInt32LE(len, o + 8);
      b.writeUInt32LE(len, o + 12);
      return 16 + len;
    }
    const pad = (4 - (len & 3)) & 3;
    const blen = 32 + len + pad;
    const hi = Math.floor(us / 4294967296);
    b.writeUInt32LE(6, o); // EPB
    b.writeUInt32LE(blen, o + 4);
    b.writeUInt32LE(0, o + 8);
    b.writeUInt32LE(hi, o + 12);
    b.writeUInt32LE(us - hi * 4294967296, o + 16);
    b.writeUInt32LE(len, o + 20);
    b.writeUInt32LE(len, o + 24);
    b.fill(0, o + 28 + len, o + blen - 4);
    b.writeUInt32LE(blen, o + blen - 4);
    return blen;
  }

  /** A data frame length from the --frame-size distribution. */
  private dataSize(): number {
    const z = this.sizes;
    const r = this.rnd();
    return z.span === 0 ? z.table[r % z.table.length] : z.lo + (r % z.span);
  }

  /** Frame `sent[s]` of slot `s`'s flow at `o`. @returns its length. */
  private frame(b: Buffer, o: number, s: number): number {
    const j = this.sent[s];
    const c = this.cip[s];
    const sv = this.sip[s];
    const cp = this.cport[s];
    const sp = this.sport[s];
    switch (this.kind[s]) {
      case K_UDP: {
        const pl = Math.max(this.dataSize() - 42, 1);
        return j & 1 ? udp(b, o, sv, c, sp, cp, pl, j) : udp(b, o, c, sv, cp, sp, pl, j);
      }
      case K_TCP:
        return this.tcpFrame(b, o, s, j);
      case K_DNS:
        return this.dnsFrame(b, o, s, j);
      case K_SYN:
        return tcp(b, o, c, sv, cp, sp, this.cseq[s], 0, TCP_S, 0, 0);
      default:
        return j === 0
          ? tcp(b, o, c, sv, cp, sp, this.cseq[s], 0, TCP_S, 0, 0)
          : tcp(b, o, sv, c, sp, cp, 0, (this.cseq[s] + 1) >>> 0, TCP_R | TCP_A, 0, 0);
    }
  }

  /** SYN, SYN-ACK, ACK, data alternating from the client and the server, FIN-ACK both ways, ACK. */
  private tcpFrame(b: Buffer, o: number, s: number, j: number): number {
    const c = this.cip[s];
    const sv = this.sip[s];
    const cp = this.cport[s];
    const sp = this.sport[s];
    const cs = this.cseq[s];
    const ss = this.sseq[s];
    const n = this.total[s];
    const id = j & 0xffff;
    if (j === 0) {
      this.cseq[s] = cs + 1;
      return tcp(b, o, c, sv, cp, sp, cs, 0, TCP_S, 0, id);
    }
    if (j === 1) {
      this.sseq[s] = ss + 1;
      return tcp(b, o, sv, c, sp, cp, ss, cs, TCP_S | TCP_A, 0, id);
    }
    if (j === 2) return tcp(b, o, c, sv, cp, sp, cs, ss, TCP_A, 0, id);
    if (j === n - 3) {
      this.cseq[s] = cs + 1;
      return tcp(b, o, c, sv, cp, sp, cs, ss, TCP_F | TCP_A, 0, id);
    }
    if (j === n - 2) {
      this.sseq[s] = ss + 1;
      return tcp(b, o, sv, c, sp, cp, ss, cs, TCP_F | TCP_A, 0, id);
    }
    if (j === n - 1) return tcp(b, o, c, sv, cp, sp, cs, ss, TCP_A, 0, id);
    const pl = Math.max(this.dataSize() - 54, 1);
    if ((j - 3) & 1) {
      this.sseq[s] = (ss + pl) >>> 0;
      return tcp(b, o, sv, c, sp, cp, ss, cs, TCP_P | TCP_A, pl, id);
    }
    this.cseq[s] = (cs + pl) >>> 0;
    return tcp(b, o, c, sv, cp, sp, cs, ss, TCP_P | TCP_A, pl, id);
  }

  /** A query for q<8 hex digits>.example.com (type A), then its answer with one address in the subnet. */
  private dnsFrame(b: Buffer, o: number, s: number, j: number): number {
    const resp = j === 1;
    const plLen = resp ? DNS_RESPONSE_LEN : DNS_QUERY_LEN;
    const p = o + 42;
    const v = this.aux[s];
    b.writeUInt16BE(v & 0xffff, p);
    b.writeUInt16BE(resp ? 0x8180 : 0x0100, p + 2); // standard query, recursion desired (and available)
    b.writeUInt16BE(1, p + 4);
    b.writeUInt16BE(resp ? 1 : 0, p + 6);
    b.writeUInt32BE(0, p + 8);
    let q = p + 12;
    b[q++] = 9;
    b[q++] = 0x71; // 'q'
    for (let k = 28; k >= 0; k -= 4) {
      const d = (v >>> k) & 15;
      b[q++] = d < 10 ? 0x30 + d : 0x57 + d;
    }
    q += b.write('\x07example\x03com\x00', q, 'latin1');
    b.writeUInt32BE(0x00010001, q); // QTYPE A, QCLASS IN
    q += 4;
    if (resp) {
      b.writeUInt16BE(0xc00c, q); // the name, by pointer to the question's
      b.writeUInt32BE(0x00010001, q + 2);
      b.writeUInt32BE(300, q + 6);
      b.writeUInt16BE(4, q + 10);
      b.writeUInt32BE(this.addr(v % this.hosts), q + 12);
    }
    const c = this.cip[s];
    const sv = this.sip[s];
    return resp
      ? udpWithPayload(b, o, sv, c, 53, this.cport[s], plLen, j)
      : udpWithPayload(b, o, c, sv, this.cport[s], 53, plLen, j);
  }
}

/** The k-th of n−1 values that are not `not` (k in [0, n−1)). */
function skip(k: number, not: number): number {
  return k >= not ? k + 1 : k;
}

/** Ethernet (VM → vRouter) and IPv4 headers at `o` for `l4` transport bytes. */
function ethIp(b: Buffer, o: number, src: number, dst: number, proto: number, l4: number, id: number): void {
  for (let k = 0; k < 6; k++) {
    b[o + k] = SYNTH_VROUTER_MAC[k];
    b[o + 6 + k] = SYNTH_VM_MAC[k];
  }
  b[o + 12] = 0x08;
  b[o + 13] = 0x00;
  const h = o + 14;
  b[h] = 0x45;
  b[h + 1] = 0;
  b.writeUInt16BE(20 + l4, h + 2);
  b.writeUInt16BE(id, h + 4);
  b.writeUInt16BE(0, h + 6);
  b[h + 8] = 64;
  b[h + 9] = proto;
  b.writeUInt16BE(0, h + 10);
  b.writeUInt32BE(src, h + 12);
  b.writeUInt32BE(dst, h + 16);
  b.writeUInt16BE(inetChecksum(b, h, 20), h + 10);
}

function pseudo(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** A TCP segment with a zero payload of `pl` bytes. @returns the frame length. */
function tcp(b: Buffer, o: number, src: number, dst: number, sp: number, dp: number, seq: number, ack: number, flags: number, pl: number, id: number): number {
  ethIp(b, o, src, dst, 6, 20 + pl, id);
  const t = o + 34;
  b.writeUInt16BE(sp, t);
  b.writeUInt16BE(dp, t + 2);
  b.writeUInt32BE(seq >>> 0, t + 4);
  b.writeUInt32BE(ack >>> 0, t + 8);
  b[t + 12] = 0x50;
  b[t + 13] = flags;
  b.writeUInt16BE(65535, t + 14);
  b.writeUInt32BE(0, t + 16); // checksum, urgent pointer
  b.fill(0, t + 20, t + 20 + pl);
  // The payload is zeros: it adds nothing to the sum, so the header and the pseudo-header make it.
  b.writeUInt16BE(inetChecksum(b, t, 20, pseudo(src, dst, 6, 20 + pl)), t + 16);
  return 54 + pl;
}

/** A UDP datagram with a zero payload of `pl` bytes. */
function udp(b: Buffer, o: number, src: number, dst: number, sp: number, dp: number, pl: number, id: number): number {
  b.fill(0, o + 42, o + 42 + pl);
  return udpWithPayload(b, o, src, dst, sp, dp, pl, id, true);
}

/** A UDP datagram around the `pl` payload bytes already at o + 42. */
function udpWithPayload(b: Buffer, o: number, src: number, dst: number, sp: number, dp: number, pl: number, id: number, zero = false): number {
  ethIp(b, o, src, dst, 17, 8 + pl, id & 0xffff);
  const u = o + 34;
  b.writeUInt16BE(sp, u);
  b.writeUInt16BE(dp, u + 2);
  b.writeUInt16BE(8 + pl, u + 4);
  b.writeUInt16BE(0, u + 6);
  const sum = inetChecksum(b, u, zero ? 8 : 8 + pl, pseudo(src, dst, 17, 8 + pl));
  b.writeUInt16BE(sum || 0xffff, u + 6);
  return 42 + pl;
}
