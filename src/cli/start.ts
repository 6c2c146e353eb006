/**
 * `vrouter-emu start`: a compute node in the foreground. It creates a namespace per VM with a TAP as its
 * eth0, starts the datapath thread over the flow table, runs the agent on this thread, serves the
 * vRouter tools on the control socket, and removes everything it created on SIGINT/SIGTERM.
 * @module
 */
import * as fs from 'fs';
import * as os from 'os';
import { performance } from 'perf_hooks';
import { execFile } from 'child_process';
import { UserError } from '../errors';
import { loadModuleParams, ModuleParams } from '../params/module-params';
import { DEMO_TOPOLOGY, HostSpec, Topology, readTopology, topologyFrom } from '../agent/topology';
import { ComputeNode } from '../agent/compute-node';
import { FlowMgr, FlowMgrConfig } from '../agent/flow-mgr';
import { agentFlowConfig } from '../agent/assembly';
import { AGENT_CONF_DEFAULTS, AgentConf, collectorEndpoint, readAgentConf } from '../agent/agent-conf';
import { inlineOrFile, parseGlobalVrouterConfig } from '../agent/contrail-config';
import { agentFlows, agentFlowsText } from './agent-flows';
import { FlowExport, FlowRecord } from '../agent/flow-export';
import { RecordSink, TcpExporter } from '../collector/exporter';
import { IpfixExporter } from '../collector/ipfix';
import { xorshift32 } from '../lib/xorshift';
import { FTI_ACTION_COUNT, FTI_ACTIVE, FTI_ACTIVE_PEAK, FTI_ADDED, FTI_OFLOW_PEAK, FTI_OFLOW_USED, FlowTable, flowCreatedCount, flowTableAttach } from '../dp/flow-table';
import { RouterShared, routerSharedCreate } from '../dp/router';
import { DpThread } from '../io/dp-thread';
import { Testbed, cleanLeftovers } from '../io/testbed';
import { Guest, GuestImage, guestAccel, guestCheck, guestImage } from '../io/guest';
import { PACKET_IOS, PS_CSUM, PS_DROPPED, PS_GSO_FRAMES, PS_GSO_SEGS, PS_SOCK_DROPS, type PacketIo } from '../io/native';
import { Attachments } from './attachments';
import { readOsRelease } from '../platform/release';
import { loadProfiles, verdictFor } from '../platform/profiles';
import type { HostFd } from '../agent/compute-node';
import * as path from 'path';
import { macString } from '../dp/interface';
import { Parsed, opt, optInt, optOnOff, parseArgs } from './args';
import { DEFAULT_SOCKET, ToolHandler, controlAlive, controlServe } from './control';
import { dropstats } from './dropstats';
import { flowList, flowListChunks } from './flow-list';
import { snapshotFlowTable } from './flow-snapshot';
import { defaultParamsFile } from '../lib/package-root';
import { vifList } from './vif-list';
import { VIF_ADD_USAGE, VIF_DELETE_USAGE } from './attachments';
import { vrouterInfo } from './vrouter-info';

export const START_USAGE =
  'sudo vrouter-emu start [--topology FILE] [--agent-conf FILE] [--global-config FILE] [--params FILE] [--param name=value]... [--socket PATH] [--flow-cache-timeout S] [--datapath-eviction on|off] [--cpu N] [--packet-io ring|ring-v3|recvmmsg] [--allow-unsupported-platform]';

export const START_OPTS = {
  '--topology': { value: true },
  '--agent-conf': { value: true },
  '--global-config': { value: true },
  '--params': { value: true },
  '--param': { value: true, repeat: true },
  '--socket': { value: true },
  '--flow-cache-timeout': { value: true },
  '--datapath-eviction': { value: true },
  '--cpu': { value: true },
  '--packet-io': { value: true },
  '--no-demo-traffic': {},
  '--allow-unsupported-platform': {},
  '--platform-root': { value: true },
};

function log(s: string): void {
  process.stdout.write(s + '\n');
}

/** The configuration read from files, at start and at each reload. */
interface Config {
  conf: AgentConf;
  topo: Topology;
  aging: FlowMgrConfig;
  notes: string[];
}

/** Read the agent configuration, the topology and global-vrouter-config; `--flow-cache-timeout` wins over the file. */
function loadConfig(p: Parsed, params: ModuleParams): Config {
  const notes: string[] = [];
  const confFile = opt(p, '--agent-conf');
  const conf = confFile ? readAgentConf(confFile, (m) => notes.push(m)) : { ...AGENT_CONF_DEFAULTS, collectors: [] };
  const topoFile = opt(p, '--topology');
  const topo: Topology = topoFile ? readTopology(topoFile) : topologyFrom(DEMO_TOPOLOGY, '(demo topology)');
  const gFile = opt(p, '--global-config');
  if (gFile) {
    const src = inlineOrFile(gFile, '.', 'vrouter-emu start', '--global-config');
    topo.global = parseGlobalVrouterConfig(src.value, src.where, 'global-vrouter-config');
    notes.push(...topo.global.ignored.map((x) => `${gFile}: ${x}: ignored`));
  }
  notes.push(...topo.notes);
  const ageS = opt(p, '--flow-cache-timeout') !== undefined ? optInt(p, '--flow-cache-timeout', 0) : conf.flowCacheTimeout;
  const aging = agentFlowConfig(params, { ...conf, flowCacheTimeout: ageS }, topo.global.agingTimeouts);
  return { conf, topo, aging, notes };
}

/** The tools a running instance answers (server side of the control socket). */
function toolHandler(
  params: ModuleParams, shared: RouterShared, table: FlowTable, node: ComputeNode, agentOf: () => FlowMgr | undefined,
  reload: () => string, clock: () => number, exportOf: () => Export | undefined, io: RuntimeIo,
): ToolHandler {
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
    if (tool === 'vif' && args.includes('--add')) {
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
function agentStats(t: FlowTable, agent: FlowMgr | undefined, ex: Export | undefined, offload: number[], json: boolean, out: (s: string) => void): void {
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
interface RuntimeIo {
  attachments: Attachments;
  guests: Guest[];
  /** Cumulative offload counters of the packet-socket vifs (Native.packetReadBatch's stats). */
  offload: number[];
}

/** Flow export: the sampler in the agent and the transports it feeds. */
interface Export {
  fx: FlowExport;
  sinks: RecordSink[];
}

/** The host's first non-loopback IPv4 address: vhost0's, the router-id, when agent.conf names none. */
function hostIp(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function startExport(a: FlowMgr, table: FlowTable, node: ComputeNode, cfg: Config, clock: () => number): Export {
  const sinks: RecordSink[] = cfg.conf.collectors.map((c) => {
    const e = collectorEndpoint(c);
    return e.ipfix ? new IpfixExporter(e.host, e.port, { log }) : new TcpExporter(e.host, e.port, { log });
  });
  const logFlow = cfg.conf.logFlow;
  const emit = sinks.length > 0 || logFlow
    ? (r: FlowRecord, startMs: number, endMs: number): void => {
        for (const k of sinks) k.push(r, startMs, endMs);
        if (logFlow) log(`flow: ${JSON.stringify(r)}`);
      }
    : undefined;
  const fx = new FlowExport(a, table, node.exportEnv(cfg.conf.vhostIp || hostIp()), { rate: cfg.topo.global.flowExportRate, disable: cfg.conf.disableFlowCollection },
    clock, xorshift32((Math.random() * 0x100000000) >>> 0), emit);
  a.sampler = fx;
  for (const k of sinks) log(`vrouter-emu: flow export to ${k.name} (flow_export_rate ${cfg.topo.global.flowExportRate})`);
  return { fx, sinks };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10000 }, (_e, stdout, stderr) => resolve(String(stdout) + String(stderr)));
  });
}

export async function cmdStart(p: Parsed): Promise<number> {
  if (p.positional.length > 0) throw new UserError(`unexpected argument ${p.positional[0]}; usage: ${START_USAGE}`);
  if (process.getuid?.() !== 0) {
    throw new UserError('start needs root to create TAP devices and network namespaces; run it with sudo');
  }
  if (!fs.existsSync('/dev/net/tun')) {
    throw new UserError('/dev/net/tun is missing; load the tun driver (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)');
  }
  // The platform: refused when unsupported (unless allowed), a warning outside the supported list.
  // --platform-root reads another system's release files (for tests of this check).
  const rel = readOsRelease(opt(p, '--platform-root') ?? '/');
  const plat = verdictFor(rel, loadProfiles());
  if (plat.verdict === 'unsupported' && !p.flags.has('--allow-unsupported-platform')) {
    throw new UserError(`unsupported platform: ${plat.why}; see vrouter-emu platform check, or start anyway with --allow-unsupported-platform`);
  }
  if (plat.verdict === 'compatible' || plat.verdict === 'unsupported') log(`vrouter-emu: platform ${plat.verdict}: ${plat.why}`);
  else if (plat.verdict === 'development') log(`vrouter-emu: platform development: ${rel.pretty}, kernel ${rel.kernel}, outside the Contrail 2.22 matrix (vrouter-emu platform check)`);
  const warnings: string[] = [];
  const params = loadModuleParams({ file: opt(p, '--params'), overrides: p.opts.get('--param') }, defaultParamsFile(), {
    warn: (m) => warnings.push(m),
  });
  for (const w of warnings) log(`vrouter-emu: ${w}`);
  const topoFile = opt(p, '--topology');
  let cfg = loadConfig(p, params);
  const topo = cfg.topo;
  const socket = opt(p, '--socket') ?? DEFAULT_SOCKET;
  const eviction = optOnOff(p, '--datapath-eviction', true);
  const cpu = opt(p, '--cpu') === undefined ? -1 : optInt(p, '--cpu', 0);
  const ncpu = os.cpus().length;
  if (cpu >= ncpu) throw new UserError(`--cpu ${cpu}: this host has CPUs 0 to ${ncpu - 1}`);

  if (await controlAlive(socket)) throw new UserError(`an instance is already running at ${socket}; stop it, or give another --socket PATH`);
  for (const line of cleanLeftovers(socket)) log(`vrouter-emu: ${line}`);
  guestCheck(topo.vms);
  const img: GuestImage | undefined = topo.vms.some((v) => v.kind === 'qemu') ? guestImage(log) : undefined;
  // How vifs on attached interfaces read their packet sockets (README, attached interfaces).
  const packetIo = opt(p, '--packet-io') ?? 'ring';
  if (!(PACKET_IOS as readonly string[]).includes(packetIo)) {
    throw new UserError(`--packet-io ${packetIo}: expected ring (the default), ring-v3 or recvmmsg`);
  }
  const bed = new Testbed(socket, packetIo as PacketIo);
  bed.checkFree([...topo.vms, ...topo.outside]);

  let shared: RouterShared;
  try {
    shared = routerSharedCreate(params);
  } catch (e) {
    throw new UserError(`the flow table of ${params.vr_flow_entries + params.vr_oflow_entries} entries could not be allocated (${(e as Error).message}); lower vr_flow_entries/vr_oflow_entries`);
  }
  const table = flowTableAttach(shared.flowSab, shared.flowInfoSab, params.vr_flow_entries, params.vr_oflow_entries);
  const node = new ComputeNode(topo);
  let dp: DpThread | undefined;
  let agent: FlowMgr | undefined;
  let timer: NodeJS.Timeout | undefined;
  let server: { close(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;
  let exporting: Export | undefined;
  const guests: Guest[] = [];

  const shutdown = (why: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (timer) clearInterval(timer);
      if (server) await server.close();
      // What the exporters hold goes out (the collector gets up to a second to acknowledge it).
      if (exporting) await Promise.all(exporting.sinks.map((x) => x.close()));
      await Promise.all(guests.map((g) => g.stop()));
      if (dp) await dp.stop();
      for (const prob of bed.teardown()) log(`vrouter-emu: ${prob}`);
      if (why) log(`vrouter-emu: ${why}; removed the VMs' namespaces and interfaces`);
    })();
    return stopping;
  };

  // Signals are taken from here on: during the set-up they stop it (and it cleans up), afterwards they
  // stop the instance.
  let signalled = '';
  let reloadHook: (() => void) | undefined;
  let onSignal: (sig: string) => void = (sig) => {
    signalled = sig;
  };
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((sig) => [sig, () => onSignal(sig)]);
  for (const [sig, h] of handlers) process.on(sig, h);
  const checkSignal = (): void => {
    if (signalled) throw new UserError(`stopped by ${signalled} while starting; removed what was created`);
  };

  try {
    const fds = new Map<string, HostFd>();
    for (const h of [...topo.vms, ...topo.outside]) {
      const nw = topo.networks.find((n) => n.name === h.network);
      if (!nw) throw new Error(`network ${h.network} missing`);
      const hif = await bed.addVm(h, nw);
      fds.set(h.name, { fd: hif.fd, io: hif.io });
      checkSignal();
    }
    let attachments: Attachments | undefined;
    const offload: number[] = [];
    const clock = (): number => performance.now();
    dp = new DpThread({
      params,
      cfg: { eviction },
      shared,
      cpu,
      onTraps: (frames) => {
        for (const f of frames) agent?.onTrap(f);
      },
      onVifDown: (idx, code) => {
        const v = node.vif(idx);
        if (v) v.up = false;
        log(`vrouter-emu: vif0/${idx} (${v?.os ?? '?'}) went away (${code}); marked down, its flows age out`);
      },
      onVifError: (idx, code) => attachments?.onVifError(idx, code),
      onOffload: (stats) => offload.splice(0, stats.length, ...stats),
      onError: (e) => {
        log(`vrouter-emu: the datapath thread failed: ${e.message}`);
        void shutdown('the datapath thread failed').then(() => process.exit(1));
      },
    });
    const dpCpu = await dp.whenReady();
    checkSignal();
    node.program(dp, fds);
    const att = new Attachments(bed, node, dp, topo, log, fds);
    attachments = att;
    agent = new FlowMgr(table, dp, node.flowEnv(), cfg.aging, clock);
    const a = agent;
    const d = dp;
    const ex = startExport(a, table, node, cfg, clock);
    exporting = ex;
    let lastAttachTick = 0;
    timer = setInterval(() => {
      const now = clock();
      a.tick(now);
      ex.fx.tick(now);
      if (now - lastAttachTick >= 1000) {
        lastAttachTick = now;
        att.tick();
      }
    }, 100);
    /** Reload without restart: agent.conf, the topology's Contrail objects, global-vrouter-config. */
    const reload = (): string => {
      const next = loadConfig(p, params);
      if (ComputeNode.shape(next.topo) !== ComputeNode.shape(node.topo)) {
        throw new UserError('the topology\'s networks, hosts, addresses or floating IPs changed: restart to apply them; the old configuration stays');
      }
      // configureAging checks before it changes anything; it goes first so that a refusal leaves the old
      // configuration whole.
      a.configureAging(next.aging);
      node.reconfigure(next.topo);
      node.programRuntime(d);
      const changed = a.reevaluate();
      ex.fx.configure({ rate: next.topo.global.flowExportRate, disable: next.conf.disableFlowCollection });
      if (next.conf.collectors.join(' ') !== cfg.conf.collectors.join(' ')) log('vrouter-emu: collectors changed: restart to apply them');
      cfg = next;
      for (const n of next.notes) log(`vrouter-emu: ${n}`);
      return `configuration reloaded: ${a.collectors.filter((c) => !c.deleted).length} aging tables, ${next.topo.policies.size} network policies, ${changed} flow pairs re-evaluated with a new action`;
    };
    server = await controlServe(socket, toolHandler(params, shared, table, node, () => agent, reload, clock, () => exporting, { attachments: att, guests, offload }));
    // Guests boot once their vifs are programmed, so their first ARP is answered.
    for (const vm of topo.vms) {
      if (vm.kind !== 'qemu' || !img) continue;
      const nw = topo.networks.find((n) => n.name === vm.network) as (typeof topo.networks)[number];
      const g = Guest.start(vm, nw, img, path.join(path.dirname(socket), 'console', `${vm.name}.log`));
      g.proc.once('exit', (code, sig) => {
        if (!stopping) log(`vrouter-emu: guest ${g.name} (qemu pid ${g.pid}) exited (${sig ?? code}); see ${g.consoleLog}`);
      });
      guests.push(g);
      bed.addGuest(g.pid);
      checkSignal();
    }
    reloadHook = (): void => {
      try {
        log(`vrouter-emu: SIGHUP: ${reload()}`);
      } catch (e) {
        log(`vrouter-emu: SIGHUP: reload refused: ${(e as Error).message}`);
      }
    };

    log(`vrouter-emu: vRouter running (pid ${process.pid}), control socket ${socket}`);
    log(`  flow table ${params.vr_flow_entries} + ${params.vr_oflow_entries} entries, datapath thread on CPU ${dpCpu}${cpu >= 0 ? ' (pinned)' : ''}`);
    log(`  datapath eviction ${eviction ? 'on' : 'off'}, flow_cache_timeout ${cfg.aging.ageMs / 1000} s${cfg.conf.file ? ` (${cfg.conf.file})` : ''}, ${cfg.topo.policies.size} network policies`);
    for (const n of cfg.notes) log(`vrouter-emu: ${n}`);
    const hosts = [...topo.vms, ...topo.outside];
    const w = (f: (h: HostSpec) => string, min: number): number => Math.max(min, ...hosts.map((h) => f(h).length));
    const wName = w((h) => h.name, 11);
    const where = (h: HostSpec): string => (h.kind === 'netns' ? h.namespace : h.kind === 'qemu' ? `qemu (${guestAccel()})` : 'attached');
    const wNs = w(where, 15);
    log(`  ${'VM'.padEnd(wName)} ${'namespace'.padEnd(wNs)} ${'interface'.padEnd(21)} ${'address'.padEnd(19)} ${'MAC'.padEnd(17)}  vif`);
    for (const vm of hosts) {
      const nw = topo.networks.find((n) => n.name === vm.network);
      const v = node.hostVif(vm.name);
      const ifc = vm.kind === 'netns' ? `eth0 (${vm.tap})` : vm.tap;
      log(`  ${vm.name.padEnd(wName)} ${where(vm).padEnd(wNs)} ${ifc.padEnd(21)} ${`${vm.ipStr}/${nw?.prefixLen}`.padEnd(19)} ${macString(vm.mac)}  vif0/${v?.idx}${topo.outside.includes(vm) ? ' (outside host)' : ''}`);
    }
    for (const g of guests) log(`  guest ${g.name}: qemu pid ${g.pid}, console ${g.consoleLog} (vrouter-emu vm console ${g.name})`);
    for (const vm of topo.vms) for (const f of vm.floatingIps) log(`  floating IP ${f.ipStr} (${f.network}) → ${vm.name} ${vm.ipStr}`);
    const [v1, v2] = topo.vms;
    if (!topoFile && !p.flags.has('--no-demo-traffic') && v1 && v2) {
      log(`\nDemo traffic: ${v1.name} pings ${v2.name} through the flow engine`);
      const out = await run('ip', ['netns', 'exec', v1.namespace, 'ping', '-c', '3', '-i', '0.2', '-W', '1', v2.ipStr]);
      for (const l of out.trim().split('\n').slice(-2)) log(`  ${l}`);
      checkSignal();
      log('and the flow table now holds the ICMP pair (vrouter-emu flow -l):');
      const lines: string[] = [];
      flowList(snapshotFlowTable(table), (s) => lines.push(s));
      const text = lines.join('').split('\n');
      const at = text.findIndex((l) => l.startsWith('-----'));
      for (const l of text.slice(at + 1).filter((x) => x.length > 0)) log(`  ${l}`);
      log('');
    }
    log('Look at it with:');
    if (v1 && v2 && v1.kind === 'netns') log(`  sudo ip netns exec ${v1.namespace} ping -c 3 ${v2.ipStr}`);
    const sock = socket === DEFAULT_SOCKET ? '' : ` --socket ${socket}`;
    log(`  sudo vrouter-emu flow -l${sock}      sudo vrouter-emu vif --list${sock}`);
    log(`  sudo vrouter-emu dropstats${sock}    sudo vrouter-emu vrouter --info${sock}`);
    log(`  sudo vrouter-emu agent flows${sock}  sudo vrouter-emu config reload${sock}  (or kill -HUP ${process.pid})`);
    log('Stop with Ctrl-C: the namespaces and interfaces it created are removed.');
  } catch (e) {
    await shutdown('');
    for (const [sig, h] of handlers) process.off(sig, h);
    throw e;
  }

  return new Promise<number>((resolve) => {
    onSignal = (sig) => {
      // SIGHUP reloads the configuration (as for the real agent's config files); the others stop.
      if (sig === 'SIGHUP' && reloadHook) {
        reloadHook();
        return;
      }
      void shutdown(`stopped by ${sig}`).then(() => resolve(0));
    };
    if (signalled) onSignal(signalled);
  });
}
