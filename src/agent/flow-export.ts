/**
 * Flow export (the 2.22 agent's FlowExport and FlowStatsManager threshold; reference vrouter-agent.md
 * §1–§2): each stats sample of a flow (its aging visit saw new bytes, a never-exported flow's visit, its
 * deletion) passes the gates — `disable_flow_collection`, `flow_export_rate` 0 — and, for flows whose
 * rule did not ask for `log`, the sampling test against one global threshold that a 2 s timer adapts to
 * the measured export rate. A sample that passes becomes a FlowDataIpv4 record with its deltas
 * normalized by the probability it had of passing (the documented intent; the shipped code zeroed them),
 * handed to the transports; a local flow (VM to VM on this node) is exported twice, ingress and egress.
 *
 * The sampling needs nothing of the transports: they take the records (bounded queues, see
 * src/collector/). The random source is injected (seedable for tests).
 * @module
 */
import {
  IPPROTO_TCP,
  VR_FLOW_ACTION_DROP,
  VR_FLOW_ACTION_NAT,
  VR_FLOW_DR_AUDIT_ENTRY,
  VR_FLOW_DR_FLOW_LIMIT,
  VR_FLOW_DR_NO_DST_ROUTE,
  VR_FLOW_DR_NO_REVERSE_FLOW,
  VR_FLOW_DR_OUT_POLICY,
  VR_FLOW_DR_POLICY,
} from '../dp/defs';
import { FE_SIZE, FE_UDP_SPORT, type FlowTable } from '../dp/flow-table';
import { keyDport, keyIp, keySport } from '../dp/proto-ip';
import type { FlowSampler } from './flow-mgr';
import { FlowInfo, FlowView, flowInfoNew } from './flow-state';
import { UUID_IMPLICIT_ALLOW, UUID_IMPLICIT_DENY } from './policy';
import { fillUuid4, uuidString } from '../lib/uuid';

/** kDefaultFlowSamplingThreshold (bytes). */
export const SAMPLING_THRESHOLD_DEFAULT = 500;
/** FlowThresoldUpdateTime: the threshold timer (ms). */
export const THRESHOLD_UPDATE_MS = 2000;
/** Due threshold updates tick() makes one by one before it skips a gap of no-op updates (see tick). */
const THRESHOLD_CATCHUP_UPDATES = 1024;

/** FlowDataIpv4 (flow.sandesh at R2.20/2.22), the fields the agent fills. */
export interface FlowRecord {
  flowuuid: string;
  direction_ing: number;
  sourcevn: string;
  sourceip: number;
  destvn: string;
  destip: number;
  protocol: number;
  /** i16 in the sandesh definition: ports ≥ 32768 are negative, as the 2.22 collector stored them. */
  sport: number;
  dport: number;
  tcp_flags: number;
  vm?: string;
  reverse_uuid?: string;
  /** µs since the epoch; on the first exported record only. */
  setup_time?: number;
  /** µs since the epoch; on the final record only. */
  teardown_time?: number;
  bytes: number;
  packets: number;
  diff_bytes: number;
  diff_packets: number;
  action: string;
  sg_rule_uuid: string;
  nw_ace_uuid: string;
  vrouter_ip?: string;
  other_vrouter_ip?: string;
  underlay_proto?: number;
  underlay_source_port: number;
  vmi_uuid?: string;
  drop_reason: string;
}

/** What the exporter needs of the node: names of networks and interfaces, this vrouter's address. */
export interface ExportEnv {
  /** fq-name of network index `k` (the plan's srcVn/dstVn), or undefined. */
  vnName(k: number): string | undefined;
  /** The VM interface at vif `idx`: its VM's name and the VMI's UUID; undefined for other vifs. */
  vmInterface(idx: number): { vm: string; vmiUuid: string } | undefined;
  /** vrouter_ip: the router-id (vhost0's address). */
  vrouterIp: string;
  /**
   * The far end of a flow that crosses the fabric, from its key's addresses (the words of k1, k2): the
   * peer vrouter's (or VTEP's) address and the TunnelType (1 MPLSoGRE, 2 MPLSoUDP, 3 VXLAN); undefined
   * for a flow that stays on this node.
   */
  underlay?(sipWord: number, dipWord: number): { peer: string; proto: number } | undefined;
}

export interface ExportConfig {
  /** global-vrouter-config flow_export_rate (records per second; 0 = log flows only; negative = all). */
  rate: number;
  /** [DEFAULT] disable_flow_collection. */
  disable: boolean;
}

export interface ExportStats {
  /** Records exported (a local flow's two count 2): what the rate is measured on. */
  exported: number;
  /** Samples dropped by the sampling test. */
  sampledAway: number;
  /** Samples dropped by disable_flow_collection or flow_export_rate 0. */
  disabled: number;
}

/** fe_drop_reason → FlowEntry drop reason string (§2.2). */
function dropReasonString(action: number, dr: number): string {
  if (action !== VR_FLOW_ACTION_DROP) return 'UNKNOWN';
  switch (dr) {
    case VR_FLOW_DR_NO_DST_ROUTE: return 'SHORT_NO_DST_ROUTE';
    case VR_FLOW_DR_AUDIT_ENTRY: return 'SHORT_AUDIT_ENTRY';
    case VR_FLOW_DR_NO_REVERSE_FLOW: return 'SHORT_NO_REVERSE_FLOW';
    case VR_FLOW_DR_FLOW_LIMIT: return 'SHORT_FLOW_LIMIT';
    case VR_FLOW_DR_POLICY: return 'DROP_POLICY';
    case VR_FLOW_DR_OUT_POLICY: return 'DROP_OUT_POLICY';
    default: return 'UNKNOWN';
  }
}

/** The action bits as the agent joins them, lowest bit first: deny 3, log 4, pass 5, implicit deny 29. */
function actionString(pass: boolean, log: boolean, implicitDeny: boolean): string {
  const a: string[] = [];
  if (!pass) a.push('deny');
  if (log) a.push('log');
  if (pass) a.push('pass');
  if (implicitDeny) a.push('implicit deny');
  return a.join('|');
}

/** A port as the i16 field holds it. */
const i16 = (p: number): number => (p << 16) >> 16;

/** IPv4 as the i32 field holds it. */
const i32 = (ip: number): number => ip | 0;

/**
 * The 2.22 threshold table (§1.5), first match: measured rate below 0.8 × configured → back to 500;
 * above 3× → ×4; above 2× → ×3; above 1.25× → ×2; else unchanged. uint32, no cap.
 */
export function nextThreshold(threshold: number, rate: number, cfg: number): number {
  if (rate < 0.8 * cfg) return SAMPLING_THRESHOLD_DEFAULT;
  if (rate > 3 * cfg) return (threshold * 4) >>> 0;
  if (rate > 2 * cfg) return (threshold * 3) >>> 0;
  if (rate > 1.25 * cfg) return (threshold * 2) >>> 0;
  return threshold;
}

/**
 * The sampling decision and its threshold (FlowExport's test and FlowStatsManager's 2 s timer), apart
 * from flows and records: `decide()` per sample, `count()` per exported record, `tick()` for the timer.
 */
export class ExportSampler {
  /** The sampling threshold (bytes), one for the agent. */
  threshold = SAMPLING_THRESHOLD_DEFAULT;
  /** The measured export rate (records per second), as of the last computation. */
  measuredRate = 0;
  readonly stats: ExportStats = { exported: 0, sampledAway: 0, disabled: 0 };
  /** The deltas of the last sample decide() passed, normalized when it was sampled. */
  diffBytes = 0;
  diffPackets = 0;
  private cfg: ExportConfig;
  /** The configured rate as the 2.22 agent stores it (uint32: −1 is 4294967295). */
  private cfgRate: number;
  private prevCfgRate: number;
  private windowCount = 0;
  private windowStart = -1;
  private nextUpdate: number;

  constructor(cfg: ExportConfig, now: number, private readonly random: () => number) {
    this.cfg = cfg;
    this.cfgRate = cfg.rate >>> 0;
    this.prevCfgRate = this.cfgRate;
    this.nextUpdate = now + THRESHOLD_UPDATE_MS;
  }

  configure(cfg: ExportConfig): void {
    this.cfg = cfg;
    this.cfgRate = cfg.rate >>> 0;
  }

  get configuredRate(): number {
    return this.cfg.rate;
  }

  /**
   * The gates and the sampling test for one sample (§1.2, §1.3). @returns whether it is exported; its
   * deltas (normalized by the probability it had, when sampled) are then in diffBytes/diffPackets.
   */
  decide(diffBytes: number, diffPackets: number, log: boolean): boolean {
    if (!log && (this.cfg.disable || this.cfgRate === 0)) {
      this.stats.disabled++;
      return false;
    }
    this.diffBytes = diffBytes;
    this.diffPackets = diffPackets;
    if (!log && diffBytes < this.threshold && this.measuredRate >= 0.8 * this.cfgRate) {
      // Drop unless rand() mod threshold ≤ diff_bytes: probability (diff_bytes + 1) / threshold.
      const num = this.random() % this.threshold;
      if (num > diffBytes) {
        this.stats.sampledAway++;
        return false;
      }
      // Normalized by that probability, so that the sum of exported deltas estimates the true sum.
      const scale = this.threshold / (diffBytes + 1);
      this.diffBytes = Math.round(diffBytes * scale);
      this.diffPackets = Math.round(diffPackets * scale);
    }
    return true;
  }

  /** `n` records went out (2 for a local flow's sample). */
  count(n: number): void {
    this.stats.exported += n;
    this.windowCount += n;
  }

  /**
   * The threshold timer (FlowStatsManager::UpdateFlowThreshold every 2 s, §1.5): measure the export
   * rate over the window since the last computation and move the threshold by the 2.22 table.
   */
  tick(now: number): void {
    // Bounded for a clock that jumps far ahead (a capture's, by years), where one update per 2 s of the
    // gap would never end: with nothing counted since the last measured window (windowCount 0, at most
    // three updates in) every further update is a no-op, so past THRESHOLD_CATCHUP_UPDATES due ones the
    // timer skips to its first time after `now` at once. A non-finite `now` is ignored.
    if (!Number.isFinite(now)) return;
    while (this.nextUpdate <= now) {
      if (this.windowCount === 0 && now - this.nextUpdate > THRESHOLD_CATCHUP_UPDATES * THRESHOLD_UPDATE_MS) {
        this.nextUpdate += (Math.floor((now - this.nextUpdate) / THRESHOLD_UPDATE_MS) + 1) * THRESHOLD_UPDATE_MS;
        if (this.nextUpdate <= now) this.nextUpdate = now + THRESHOLD_UPDATE_MS; // beyond 2^53 ms the step is lost
        return;
      }
      this.updateThreshold(this.nextUpdate);
      this.nextUpdate += THRESHOLD_UPDATE_MS;
    }
  }

  private updateThreshold(now: number): void {
    if (this.windowCount === 0) return;
    if (this.windowStart < 0) {
      this.windowStart = now;
      this.windowCount = 0;
      return;
    }
    let computed = false;
    const secs = Math.floor((now - this.windowStart) / 1000);
    if (secs >= 1) {
      this.measuredRate = Math.floor(this.windowCount / secs);
      this.windowCount = 0;
      this.windowStart = now;
      computed = true;
    }
    if (!computed && this.cfgRate === this.prevCfgRate) return;
    const next = nextThreshold(this.threshold, this.measuredRate, this.cfgRate);
    if (next !== 0) this.threshold = next; // an update to 0 is ignored
    this.prevCfgRate = this.cfgRate;
  }
}

export class FlowExport implements FlowSampler {
  readonly sampler: ExportSampler;
  /** Per index: the flow generation (FlowInfo.gen) whose first record went out, and its egress UUID's. */
  private readonly exportedGen: Uint32Array;
  private readonly egressGen: Uint32Array;
  private readonly egressUuid: Uint8Array;
  /** Epoch ms at clock 0. */
  private readonly wallBase: number;
  /** The agent's flows (its read API). */
  private readonly flows: FlowView;
  private readonly table: FlowTable;
  /** The flow being sampled and its reverse, as read (scratch). */
  private readonly f: FlowInfo = flowInfoNew();
  private readonly rf: FlowInfo = flowInfoNew();

  constructor(
    /** The flow manager (or anything that shows its flows). */
    agent: { readonly flows: FlowView },
    t: FlowTable,
    private readonly env: ExportEnv,
    cfg: ExportConfig,
    clock: () => number,
    /** Uniform 32-bit integers (C rand's role). */
    private readonly random: () => number,
    /**
     * Where exported records go (the transports), with the flow's start and this sample's time (epoch
     * ms); undefined: nowhere (the sampling still runs and counts, no record is built).
     */
    private readonly emit: ((r: FlowRecord, startMs: number, endMs: number) => void) | undefined,
    wallNow: () => number = Date.now,
  ) {
    this.flows = agent.flows;
    this.table = t;
    this.sampler = new ExportSampler(cfg, clock(), random);
    const n = t.total;
    this.exportedGen = new Uint32Array(n);
    this.egressGen = new Uint32Array(n);
    this.egressUuid = new Uint8Array(n * 16);
    this.wallBase = wallNow() - clock();
  }

  /** A new flow_export_rate or disable_flow_collection (reload). */
  configure(cfg: ExportConfig): void {
    this.sampler.configure(cfg);
  }

  tick(now: number): void {
    this.sampler.tick(now);
  }

  /**
   * One stats sample of flow `i` (FlowExport): the gates, the sampling test, the record(s).
   * @returns whether it was exported.
   */
  sample(i: number, diffBytes: number, diffPackets: number, teardown: boolean, now: number): boolean {
    const s = this.sampler;
    const f = this.flows.read(i, this.f);
    if (!s.decide(diffBytes, diffPackets, f.log)) return false;
    const rf = f.rindex >= 0 ? this.flows.read(f.rindex, this.rf) : undefined;
    s.count(this.emit ? this.build(f, rf, s.diffBytes, s.diffPackets, teardown, now, this.emit) : this.isLocal(f, rf) ? 2 : 1);
    return true;
  }

  private isLocal(f: FlowInfo, rf: FlowInfo | undefined): boolean {
    return this.env.vmInterface(f.inVif) !== undefined && rf !== undefined && this.env.vmInterface(rf.inVif) !== undefined;
  }

  /** The record(s) of a sample of flow `f` (its reverse `rf`). @returns how many went out. */
  private build(f: FlowInfo, rf: FlowInfo | undefined, diffBytes: number, diffPackets: number, teardown: boolean, now: number, emit: (r: FlowRecord, startMs: number, endMs: number) => void): number {
    const i = f.index;
    const gen = f.gen;
    const first = this.exportedGen[i] !== gen;
    this.exportedGen[i] = gen;
    // The agent's copies of the key and the entry: an evicted flow's entry is cleared or another's.
    const proto = f.proto;
    const action = f.action;
    const rule = f.rule;
    const pass = action !== VR_FLOW_ACTION_DROP;
    const inIf = this.env.vmInterface(f.inVif);
    const outIf = rf ? this.env.vmInterface(rf.inVif) : undefined;
    const wall = this.wallBase + now;
    const rec: FlowRecord = {
      flowuuid: this.flows.uuidOf(i),
      direction_ing: inIf ? 1 : 0,
      sourcevn: this.env.vnName(f.srcVn) ?? '__UNKNOWN__',
      sourceip: i32(keyIp(f.k1)),
      destvn: this.env.vnName(f.dstVn) ?? '__UNKNOWN__',
      destip: i32(keyIp(f.k2)),
      protocol: proto,
      sport: i16(keySport(f.k0)),
      dport: i16(keyDport(f.k0)),
      tcp_flags: proto === IPPROTO_TCP ? f.tcpFlags : 0,
      bytes: f.bytes,
      packets: f.packets,
      diff_bytes: diffBytes,
      diff_packets: diffPackets,
      action: actionString(pass, f.log, !pass && rule === UUID_IMPLICIT_DENY),
      sg_rule_uuid: UUID_IMPLICIT_ALLOW,
      nw_ace_uuid: rule,
      underlay_source_port: 0,
      drop_reason: dropReasonString(action, f.dropReason),
    };
    if (inIf) {
      rec.vm = inIf.vm;
      rec.vmi_uuid = inIf.vmiUuid;
    }
    if (rf) rec.reverse_uuid = this.flows.uuidOf(rf.index);
    // NAT: on ingress records the source is the post-NAT one (the reverse key's destination).
    if (action === VR_FLOW_ACTION_NAT && inIf && rf) rec.sourceip = i32(keyIp(rf.k2));
    // Across the fabric: the tunnel's far end and type, and the outer UDP source port the datapath
    // chose for the flow (fe_udp_src_port; 0 for MPLSoGRE). Sent with every record, so a port that
    // was still 0 at the first one goes out later (the agent re-sends it until a non-zero one has).
    const under = this.env.underlay?.(f.k1, f.k2);
    if (under && under.proto !== 1) rec.underlay_source_port = this.table.u16[i * (FE_SIZE >> 1) + (FE_UDP_SPORT >> 1)];
    if (first) {
      rec.setup_time = Math.round((this.wallBase + f.setupMs) * 1000);
      rec.vrouter_ip = this.env.vrouterIp;
      // A local flow's peer is this vrouter (the router-id), with no underlay.
      rec.other_vrouter_ip = under ? under.peer : this.env.vrouterIp;
      rec.underlay_proto = under ? under.proto : 0;
    }
    if (teardown) rec.teardown_time = Math.round(wall * 1000);
    const start = this.wallBase + f.setupMs;
    emit(rec, start, wall);
    if (!(inIf && outIf)) return 1;
    // A local flow: the egress copy, with its own UUID.
    if (this.egressGen[i] !== gen) {
      this.egressGen[i] = gen;
      fillUuid4(this.egressUuid, i * 16, this.random);
    }
    emit({ ...rec, flowuuid: uuidString(this.egressUuid, i * 16), direction_ing: 0, sourceip: i32(keyIp(f.k1)) }, start, wall);
    return 2;
  }
}
