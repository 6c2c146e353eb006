/**
 * The vRouter tools a running `vrouter-emu start` instance answers on its control socket (control.ts is
 * the socket): flow -l, vif --list/--add/--delete, vm console-path, dropstats, agent stats/flows/aging,
 * config reload, vrouter --info. The output formats are the tools' own modules (flow-list.ts,
 * vif-list.ts, dropstats.ts, agent-flows.ts, vrouter-info.ts) and agentStats below. Runs on the agent's
 * thread: it reads the flow table and the shared counters, never writes them.
 * @module
 */
import type { BgpRoutes } from '../agent/bgp/bgp-routes';
import { bgpShow } from './bgp-show';
import { UserError } from '../errors';
import type { ModuleParams } from '../params/module-params';
import type { ComputeNode } from '../agent/compute-node';
import type { FlowMgr } from '../agent/flow-mgr';
import type { FlowExport } from '../agent/flow-export';
import type { RecordSink } from '../collector/exporter';
import { FTI_ACTION_COUNT, FTI_ACTIVE, FTI_ACTIVE_PEAK, FTI_ADDED, FTI_OFLOW_PEAK, FTI_OFLOW_USED, FlowTable, flowCreatedCount } from '../dp/flow-table';
import type { RouterShared } from '../dp/router';
import type { Guest } from '../io/guest';
import { PS_CSUM, PS_DROPPED, PS_GSO_FRAMES, PS_GSO_SEGS, PS_SOCK_DROPS } from '../io/native';
import { agentFlows, agentFlowsText } from './agent-flows';
import { VIF_ADD_USAGE, VIF_DELETE_USAGE, type Attachments } from './attachments';
import type { VcenterMode } from './vcenter-mode';
import { parseArgs } from './args';
import type { ToolHandler } from './control';
import { dropstats } from './dropstats';
import { flowListChunks } from './flow-list';
import { snapshotFlowTable } from './flow-snapshot';
import { vifList } from './vif-list';
import { mplsDump, nhList, rtDump, vxlanDump } from './nh-list';
import type { DpMirror } from '../agent/dp-mirror';
import { vrouterInfo } from './vrouter-info';

/** What a running instance's tools reach: its tables, agent, export and attached interfaces. */
export interface Instance {
  params: ModuleParams;
  shared: RouterShared;
  table: FlowTable;
  node: ComputeNode;
  /** What the agent programmed (nexthops, labels, VNIs, routes), for nh / mpls / vxlan / rt. */
  mirror: DpMirror;
  /** The agent, once it runs. */
  agent(): FlowMgr | undefined;
  /** Flow export, once it runs. */
  exporting(): ExportState | undefined;
  /** `config reload`: re-read the configuration; @returns the line to print. @throws UserError when refused. */
  reload(): string;
  /** The agent's clock, ms. */
  clock(): number;
  io: RuntimeIo;
  /** The BGP route source, when the topology's route_source is "bgp". */
  bgp?(): BgpRoutes | undefined;
}

/** The tools a running instance answers (server side of the control socket). */
export function toolHandler(inst: Instance): ToolHandler {
  const { params, shared, table, node, io } = inst;
  const agentOf = inst.agent;
  const exportOf = inst.exporting;
  const reload = inst.reload;
  const clock = inst.clock;
  const drops = new Float64Array(shared.dropsSab);
  const vifStats = new Float64Array(shared.vifStatsSab);
  return async (argv, out) => {
    const [tool, ...args] = argv;
    const text: string[] = [];
    const collect = (s: string): void => {
      text.push(s);
    };
    if (tool === 'flow') {
      const p = parseArgs(args, { '-l': { alias: ['--list'] }, '--show-evicted': {} }, 'vrouter-emu flow -l [--show-evicted]');
      if (!p.flags.has('-l')) throw new UserError('usage: vrouter-emu flow -l [--show-evicted]');
      // A snapshot, then formatted in slices with a turn of the event loop between them, so that the
      // agent (this thread) keeps answering traps while a big table is listed.
      for (const chunk of flowListChunks(snapshotFlowTable(table), { showEvicted: p.flags.has('--show-evicted') })) {
        await out(chunk);
        await new Promise<void>((r) => setImmediate(r));
      }
      return;
    }
    if (tool === 'esxi' || tool === 'port') {
      if (!io.vcenter) throw new UserError(`${tool}: this instance does not run in vCenter mode (start --mode vcenter)`);
      collect(tool === 'esxi' ? await io.vcenter.esxiTool(args) : await io.vcenter.portTool(args));
    } else if (tool === 'vif' && args.includes('--add')) {
      collect(io.attachments.add(args) + '\n');
    } else if (tool === 'vif' && args.includes('--delete')) {
      collect((await io.attachments.remove(args)) + '\n');
    } else if (tool === 'vif') {
      const p = parseArgs(args, { '--list': { alias: ['-l'] } }, 'vrouter-emu vif --list');
      if (!p.flags.has('--list')) throw new UserError(`usage: vrouter-emu vif --list | ${VIF_ADD_USAGE} | ${VIF_DELETE_USAGE}`);
      vifList(node.vifs, vifStats, collect);
    } else if (tool === 'vm') {
      const p = parseArgs(args, {}, 'vrouter-emu vm console-path NAME');
      const g = io.guests.find((x) => x.name === p.positional[1]);
      if (p.positional[0] !== 'console-path' || p.positional.length !== 2) throw new UserError('usage: vrouter-emu vm console NAME');
      if (!g) throw new UserError(`no qemu guest ${p.positional[1]} (the guests are: ${io.guests.map((x) => x.name).join(', ') || 'none'})`);
      collect(g.consoleLog + '\n');
    } else if (tool === 'dropstats') {
      parseArgs(args, {}, 'vrouter-emu dropstats');
      dropstats(drops, collect);
    } else if (tool === 'agent') {
      const u = 'vrouter-emu agent stats|flows [--json] | agent aging on|off';
      const p = parseArgs(args, { '--json': {} }, u);
      const agent = agentOf();
      if (p.positional[0] === 'stats') agentStats(table, agent, exportOf(), io.offload, p.flags.has('--json'), collect);
      else if (p.positional[0] === 'aging' && agent && (p.positional[1] === 'on' || p.positional[1] === 'off') && p.positional.length === 2) {
        agent.setAging(p.positional[1] === 'on', clock());
        collect(`flow aging ${p.positional[1]}\n`);
      }
      else if (p.positional[0] === 'flows' && agent) {
        const flows = agentFlows(agent, table, node.vnNames, clock());
        collect(p.flags.has('--json') ? JSON.stringify(flows) + '\n' : agentFlowsText(flows));
      } else throw new UserError(`usage: ${u}`);
    } else if (tool === 'config') {
      const p = parseArgs(args, {}, 'vrouter-emu config reload');
      if (p.positional[0] !== 'reload') throw new UserError('usage: vrouter-emu config reload');
      collect(reload() + '\n');
    } else if (tool === 'nh') {
      const p = parseArgs(args, { '--list': {} }, 'vrouter-emu nh --list');
      if (!p.flags.has('--list')) throw new UserError('usage: vrouter-emu nh --list');
      nhList(inst.mirror, (idx) => node.vif(idx)?.mac, collect);
    } else if (tool === 'mpls') {
      const p = parseArgs(args, { '--dump': {} }, 'vrouter-emu mpls --dump');
      if (!p.flags.has('--dump')) throw new UserError('usage: vrouter-emu mpls --dump');
      mplsDump(inst.mirror, collect);
    } else if (tool === 'vxlan') {
      const p = parseArgs(args, { '--dump': {} }, 'vrouter-emu vxlan --dump');
      if (!p.flags.has('--dump')) throw new UserError('usage: vrouter-emu vxlan --dump');
      vxlanDump(inst.mirror, collect);
    } else if (tool === 'rt') {
      const u = 'vrouter-emu rt --dump VRF [--family inet|bridge]';
      const p = parseArgs(args, { '--dump': { value: true }, '--family': { value: true } }, u);
      const vrf = Number(p.opts.get('--dump')?.[0]);
      const fam = p.opts.get('--family')?.[0] ?? 'inet';
      if (!Number.isInteger(vrf) || vrf < 0 || vrf > 65535 || (fam !== 'inet' && fam !== 'bridge')) throw new UserError(`usage: ${u} (the VRFs: ${node.topo.networks.map((n, k) => `${k + 1} ${n.name}`).join(', ')})`);
      rtDump(inst.mirror, vrf, fam === 'bridge', collect);
    } else if (tool === 'bgp') {
      const p = parseArgs(args, { '--json': {}, '--summary': {} }, 'vrouter-emu bgp [--summary] [--json]');
      const b = inst.bgp?.();
      if (!b) throw new UserError('this node learns no routes over BGP: its topology has no "route_source": "bgp"');
      const st = await b.status(node.overlay?.node.name ?? '', !p.flags.has('--summary'));
      if (p.flags.has('--json')) collect(JSON.stringify(st) + '\n');
      else bgpShow(st, collect);
    } else if (tool === 'vrouter') {
      const p = parseArgs(args, { '--info': {} }, 'vrouter-emu vrouter --info');
      if (!p.flags.has('--info')) throw new UserError('usage: vrouter-emu vrouter --info');
      vrouterInfo(params, collect);
    } else {
      throw new UserError(`the instance has no tool '${tool}'`);
    }
    await out(text.join(''));
  };
}

/** `agent stats`: the agent's flow counters and the table's (FlowStatsResp-like). */
function agentStats(t: FlowTable, agent: FlowMgr | undefined, ex: ExportState | undefined, offload: number[], json: boolean, out: (s: string) => void): void {
  const info = t.info;
  const created = flowCreatedCount(t);
  const s = {
    flowsActive: agent?.flowCount ?? 0,
    flowsSetUp: agent?.stats.created ?? 0,
    flowsAged: agent?.stats.aged ?? 0,
    flowsEvictedByVrouter: agent?.stats.evicted ?? 0,
    shortFlows: agent?.stats.short ?? 0,
    flowSetErrors: agent?.stats.errors ?? 0,
    aging: agent?.agingOn ?? false,
    flowsScanned: agent?.stats.scanned ?? 0,
    counterResets: agent?.stats.counterResets ?? 0,
    table: {
      created, added: info[FTI_ADDED], processed: info[FTI_ACTION_COUNT], active: info[FTI_ACTIVE],
      activePeak: info[FTI_ACTIVE_PEAK], overflowUsed: info[FTI_OFLOW_USED], overflowPeak: info[FTI_OFLOW_PEAK],
    },
    export: ex && {
      configuredRate: ex.fx.sampler.configuredRate, measuredRate: ex.fx.sampler.measuredRate, threshold: ex.fx.sampler.threshold,
      exported: ex.fx.sampler.stats.exported, sampledAway: ex.fx.sampler.stats.sampledAway, disabled: ex.fx.sampler.stats.disabled,
      collectors: ex.sinks.map((k) => ({ name: k.name, ...k.stats() })),
    },
    // The datapath's work on frames from attached interfaces (guest offloads).
    offload: {
      checksumsCompleted: offload[PS_CSUM] ?? 0, tsoFrames: offload[PS_GSO_FRAMES] ?? 0, tsoSegments: offload[PS_GSO_SEGS] ?? 0,
      dropped: offload[PS_DROPPED] ?? 0, socketDrops: offload[PS_SOCK_DROPS] ?? 0,
    },
  };
  if (json) {
    out(JSON.stringify(s) + '\n');
    return;
  }
  out(`flows active ${s.flowsActive}, set up ${s.flowsSetUp}, aged ${s.flowsAged}, evicted by the vrouter ${s.flowsEvictedByVrouter}, short ${s.shortFlows}, FLOW_SET errors ${s.flowSetErrors}\n`);
  out(`aging ${s.aging ? 'on' : 'off'}, flows scanned ${s.flowsScanned}, counter resets seen ${s.counterResets}\n`);
  const e = s.export;
  if (e) {
    out(`flow export: rate configured ${e.configuredRate}/s, measured ${e.measuredRate}/s, sampling threshold ${e.threshold} bytes; records exported ${e.exported}, sampled away ${e.sampledAway}, not exported (rate 0 / disable_flow_collection) ${e.disabled}\n`);
    if (e.collectors.length === 0) out('  no collectors configured ([DEFAULT] collectors in agent.conf): records are counted, not sent\n');
    for (const c of e.collectors) {
      if (c.name.startsWith('ipfix://')) out(`  ${c.name}: UDP, sent ${c.sent}, queued ${c.queued}, dropped (queue full) ${c.dropped}\n`);
      else out(`  ${c.name}: ${c.connected ? 'connected' : 'not connected'}, sent ${c.sent}, acknowledged ${c.acked}, queued ${c.queued}, dropped (queue full) ${c.dropped}, reconnects ${c.reconnects}, ack timeouts ${c.timeouts ?? 0}\n`);
    }
  }
  const o = s.offload;
  if (o.checksumsCompleted + o.tsoFrames + o.dropped + o.socketDrops > 0) {
    out(`attached interfaces: partial checksums completed ${o.checksumsCompleted}, TSO frames ${o.tsoFrames} cut into ${o.tsoSegments} segments, frames dropped (other GSO types, bad offsets, truncated) ${o.dropped}, lost on the socket (ring or buffer full) ${o.socketDrops}\n`);
  }
  out(`table: Created ${created} Added ${s.table.added} Processed ${s.table.processed}; active ${s.table.active} (peak ${s.table.activePeak}); overflow in use ${s.table.overflowUsed} (peak ${s.table.overflowPeak})\n`);
}

/** What the control socket's vif and vm tools reach at run time. */
export interface RuntimeIo {
  attachments: Attachments;
  guests: Guest[];
  /** Cumulative offload counters of the packet-socket vifs (Native.packetReadBatch's stats). */
  offload: number[];
  /** vCenter mode: the ESXi host's VMs and the agent's ports (`esxi`, `port`). */
  vcenter?: VcenterMode;
}

/** Flow export: the sampler in the agent and the transports it feeds. */
export interface ExportState {
  fx: FlowExport;
  sinks: RecordSink[];
}
