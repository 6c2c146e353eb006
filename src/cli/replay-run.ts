/**
 * The replay's composition: the datapath core on a manual-clock host (dp/manual-host.ts) whose clock is
 * the capture's timestamps, frames read from a capture file (io/pcap.ts) instead of TAP devices, and the
 * agent in the same thread answering the traps after a latency of capture time. Nothing is sent
 * anywhere (the FORWARD verdict is only counted). `vrouter-emu replay` (replay.ts) prints what it did.
 *
 * The model (written down in the README): every frame enters on one VM interface, vif0/3, policy
 * enabled, in VRF 1, with interface nexthop `nh` (default 16). A capture taken on one VM's tap holds both
 * directions of that VM's flows, and on a compute node both directions of such flows are keyed with that
 * VM's nexthop (outbound: the vif's NH; inbound from the fabric: the label's NH, the same VM's), so the
 * agent's reverse flows use the same NH. The agent handles each trap `agentLatencyMs` of capture time
 * after it was raised (0: before the next frame), ages flows by capture time, and is the default agent
 * (every flow allowed) with agent.conf's defaults.
 * @module
 */
import { createDatapath, dpBurstEnd, dpRx } from '../dp/datapath';
import { VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_VIRTUAL, macParse, vifAdd, vifSetFatFlow } from '../dp/interface';
import { DpConfig, RES_MAX, Router } from '../dp/router';
import { ManualHost } from '../dp/manual-host';
import { FlowMgr, FlowMgrConfig, allowAllEnv } from '../agent/flow-mgr';
import { FlowExport } from '../agent/flow-export';
import { TimelineRecorder } from '../capacity/timeline';
import { xorshift32 } from '../lib/xorshift';
import { DirectChannel } from '../agent/dp-channel';
import { AGENT_CONF_DEFAULTS } from '../agent/agent-conf';
import { agentFlowConfig } from '../agent/assembly';
import type { ModuleParams } from '../params/module-params';
import { CaptureReader } from '../io/pcap';
import type { FrameSource } from '../capacity/frames';

export const REPLAY_VIF = 3;
export const REPLAY_VRF = 1;
export const REPLAY_NH_DEFAULT = 16;

export interface ReplayOptions {
  params: ModuleParams;
  /** flow_cache_timeout in seconds (0 → 180). */
  flowCacheTimeoutS?: number;
  /** Datapath eviction of closed TCP sessions (default on, as the R2.22 release). */
  eviction?: boolean;
  /** Capture time between a trap and the agent's answer, ms. */
  agentLatencyMs?: number;
  /** Key nexthop id of the replayed VM interface. */
  nh?: number;
  /** Seed of the datapath's random source (the outer UDP source-port hash). */
  seed?: number;
  /**
   * The agent's aging as `start` builds it from agent.conf and global-vrouter-config (flow_cache_timeout,
   * protocol-based aging, max_vm_flows); default: agent.conf's defaults with flowCacheTimeoutS.
   */
  aging?: FlowMgrConfig;
  /** The VMI's fat-flow rules ((proto << 16) | port), applied on the replayed interface. */
  fatFlow?: number[];
  /** flow_export_rate of the export sampler (default 1000, as global-vrouter-config's); 0 turns it off (disable_flow_collection). */
  exportRate?: number;
  /** Stop at the first corrupt block and keep the results so far (the run's `problem` says where) instead of failing. */
  keepGoing?: boolean;
  /** With a timeline: its interval of capture time (ms); the rows are in the run's `timeline`. */
  intervalMs?: number;
  /** Called after each frame (vrouter_dbg dumps, tests). */
  onFrame?: (n: number, r: Router, before: Float64Array) => void;
  /** Called every few thousand frames with the reader's byte position. */
  onProgress?: (pos: number, size: number) => void;
  dp?: Partial<DpConfig>;
}

export interface ReplayRun {
  r: Router;
  agent: FlowMgr;
  frames: number;
  firstTsMs: number;
  lastTsMs: number;
  /** The export sampler (its stats: records exported, sampled away; its threshold). */
  exporter?: FlowExport;
  /** The timeline's rows, when asked for (intervalMs). */
  timeline?: TimelineRecorder;
  /** With keepGoing: the corrupt block that ended the replay early ("FILE: frame N at byte B: …"). */
  problem?: string;
}

/**
 * Push every frame of `file` (or of a frame source: shared frames decoded once, for plan) through the
 * flow engine. @throws UserError for unreadable captures.
 */
export function replayCapture(file: string | FrameSource, o: ReplayOptions): ReplayRun {
  const capture = typeof file === 'string' ? new CaptureReader(file, { keepGoing: o.keepGoing }) : undefined;
  const reader: FrameSource = capture ?? (file as FrameSource);
  // Replay never transmits (routing off): nothing to keep.
  const host = new ManualHost({ now: 0, seed: o.seed ?? 1, keepSent: false });
  const r = createDatapath(host, o.params, { eviction: o.eviction ?? true, routing: false, ...o.dp });
  vifAdd(r.vifs, {
    idx: REPLAY_VIF, type: VIF_TYPE_VIRTUAL, name: 'replay0', vrf: REPLAY_VRF, nh: o.nh ?? REPLAY_NH_DEFAULT,
    flags: VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED, mtu: 1500,
    mac: macParse('00:00:5e:00:01:00') as Uint8Array, up: true, ip: 0,
  });
  if (o.fatFlow && o.fatFlow.length > 0) r.fatFlowVifs += vifSetFatFlow(r.vifs, REPLAY_VIF, o.fatFlow);
  const ch = new DirectChannel(r);
  const agentCfg = o.aging ?? agentFlowConfig(o.params, { ...AGENT_CONF_DEFAULTS, flowCacheTimeout: o.flowCacheTimeoutS ?? 0 });
  const latency = o.agentLatencyMs ?? 0;
  const env = allowAllEnv();
  const rate = o.exportRate ?? 1000;
  let exporter: FlowExport | undefined;
  // The export sampler counts what it would send (no transport: no record is built).
  const newAgent = (): FlowMgr => {
    const a = new FlowMgr(r.ft, ch, env, agentCfg, () => host.now);
    if (rate !== 0) {
      exporter = new FlowExport(a, r.ft, { vnName: () => undefined, vmInterface: () => undefined, vrouterIp: '0.0.0.0' }, { rate, disable: false },
        () => host.now, xorshift32(o.seed ?? 1), undefined, () => 0);
      a.sampler = exporter;
    }
    return a;
  };
  let agent: FlowMgr | undefined;
  let timeline: TimelineRecorder | undefined;
  const before = new Float64Array(RES_MAX);
  let pad = new Uint8Array(2048);
  let first = NaN;
  let last = 0;
  let n = 0;

  const runAgent = (upTo: number): void => {
    if (!agent) return;
    const traps = host.traps;
    let k = 0;
    while (k < traps.length && traps[k].at + latency <= upTo) {
      host.now = Math.max(traps[k].at + latency, host.now);
      agent.onTrap(traps[k].frame);
      k++;
    }
    if (k > 0) traps.splice(0, k);
    host.now = upTo;
    agent.tick(upTo);
    exporter?.tick(upTo);
    ch.settle();
  };

  try {
    while (reader.next()) {
      const ts = reader.tsMs;
      if (n === 0) {
        first = ts;
        host.now = ts;
        agent = newAgent();
        if (o.intervalMs) {
          const a = agent;
          timeline = new TimelineRecorder(r, {
            agent: () => a.stats,
            export: () => exporter && { exported: exporter.sampler.stats.exported, sampledAway: exporter.sampler.stats.sampledAway, threshold: exporter.sampler.threshold },
          }, o.intervalMs, ts);
        }
      }
      // A capture's clock may step back (merged files): never run time backwards.
      const now = Math.max(ts, last);
      runAgent(now);
      timeline?.frame(now);
      last = now;
      host.now = now;
      let buf = reader.buf;
      let off = reader.off;
      const len = reader.origlen;
      if (reader.caplen < len) {
        // Cut by the capture's snaplen: the datapath sees the frame's real length, zero-filled.
        if (pad.length < len) pad = new Uint8Array(len);
        pad.fill(0, 0, len);
        pad.set(reader.buf.subarray(reader.off, reader.off + reader.caplen), 0);
        buf = pad;
        off = 0;
      }
      before.set(r.results);
      dpRx(r, REPLAY_VIF, buf, off, len);
      dpBurstEnd(r);
      n++;
      o.onFrame?.(n, r, before);
      if (o.onProgress && (n & 0xfff) === 0) o.onProgress(reader.position, reader.size);
    }
    // The agent answers the traps still in flight.
    if (agent && host.traps.length > 0) runAgent(host.traps[host.traps.length - 1].at + latency);
    timeline?.finish();
  } finally {
    reader.close();
  }
  return { r, agent: agent ?? newAgent(), frames: n, firstTsMs: n > 0 ? first : 0, lastTsMs: last, exporter, timeline, problem: capture?.problem?.line };
}
