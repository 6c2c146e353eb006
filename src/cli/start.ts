/**
 * `vrouter-emu start`: a compute node in the foreground, the composition of its parts. It creates a
 * namespace per VM with a TAP as its eth0, starts the datapath thread over the flow table, runs the agent
 * on this thread, serves the vRouter tools on the control socket (tools.ts), prints the banner and runs
 * the demo (start-banner.ts), and removes everything it created on SIGINT/SIGTERM.
 * @module
 */
import { watchLauncher } from './launcher-watch';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { UserError } from '../errors';
import { loadModuleParams, ModuleParams } from '../params/module-params';
import { DEMO_TOPOLOGY, Topology, checkVniMode, readTopology, topologyFrom } from '../agent/topology';
import { Overlay, StaticRoutes, localTopology } from '../agent/overlay';
import { BgpRoutes } from '../agent/bgp/bgp-routes';
import { DpMirror } from '../agent/dp-mirror';
import type { DpProgrammer } from '../agent/dp-channel';
import { ComputeNode } from '../agent/compute-node';
import type { FabricIf, HostFd } from '../agent/compute-node';
import { VIF_IO_PACKET } from '../io/ring';
import { FlowMgr, FlowMgrConfig } from '../agent/flow-mgr';
import { agentFlowConfig } from '../agent/assembly';
import { AGENT_CONF_DEFAULTS, AgentConf, collectorEndpoint, readAgentConf } from '../agent/agent-conf';
import { inlineOrFile, parseGlobalVrouterConfig } from '../agent/contrail-config';
import { FlowExport, FlowRecord } from '../agent/flow-export';
import { RecordSink, TcpExporter } from '../collector/exporter';
import { IpfixExporter } from '../collector/ipfix';
import { xorshift32 } from '../lib/xorshift';
import { defaultParamsFile } from '../lib/package-root';
import { FlowTable, flowTableAttach } from '../dp/flow-table';
import { RouterShared, routerSharedCreate } from '../dp/router';
import { DpThread } from '../io/dp-thread';
import { Testbed, cleanLeftovers } from '../io/testbed';
import { Guest, GuestImage, guestCheck, guestImage } from '../io/guest';
import { PACKET_IOS, type PacketIo, loadNative } from '../io/native';
import { readOsRelease } from '../platform/release';
import { loadProfiles, verdictFor } from '../platform/profiles';
import { Attachments } from './attachments';
import { TRUNK_IFNAME, TRUNK_MAC, VcenterConn, VcenterMode, vcenterConnect, vcenterTopology, vcenterVlans } from './vcenter-mode';
import { EsxiHost } from '../esxi/host';
import type { HostSpec, Network } from '../lib/topology-types';
import { VIF_IO_SWITCH } from '../io/ring';
import { Parsed, opt, optInt, optOnOff } from './args';
import { DEFAULT_SOCKET, controlAlive, controlServe } from './control';
import { ExportState, Instance, toolHandler } from './tools';
import { startIntrospect } from '../introspect';
import { IntrospectServer, parseListen } from '../introspect/server';
import { startBanner, startDemo, startHelp } from './start-banner';

export const START_USAGE =
  'sudo vrouter-emu start [--topology FILE [--node NAME]] [--agent-conf FILE] [--global-config FILE] [--params FILE] [--param name=value]... [--socket PATH] [--flow-cache-timeout S] [--datapath-eviction on|off] [--cpu N [--isolate-cpu]] [--packet-io ring|ring-v3|recvmmsg] [--introspect-listen ADDR[:PORT]] [--introspect-allow-writes] [--allow-unsupported-platform] [--mode kvm|vcenter --vcenter URL [--dvs NAME] [--esxi-prefix P]]';

export const START_OPTS = {
  '--topology': { value: true },
  '--node': { value: true },
  '--mode': { value: true },
  '--vcenter': { value: true },
  '--dvs': { value: true },
  '--esxi-prefix': { value: true },
  '--agent-conf': { value: true },
  '--global-config': { value: true },
  '--params': { value: true },
  '--param': { value: true, repeat: true },
  '--socket': { value: true },
  '--flow-cache-timeout': { value: true },
  '--datapath-eviction': { value: true },
  '--cpu': { value: true },
  '--isolate-cpu': {},
  '--packet-io': { value: true },
  '--introspect-listen': { value: true },
  '--introspect-allow-writes': {},
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

/**
 * Which node of a cluster topology this instance is (`--node`): required when the topology has several,
 * refused without one. @returns the name, or undefined for a single-node topology.
 */
function nodeOf(p: Parsed, topo: Topology, file: string): string | undefined {
  const name = opt(p, '--node');
  if (topo.nodes.length === 0) {
    if (name !== undefined) throw new UserError(`--node ${name}: ${file} has no "nodes"; give a cluster topology, or leave --node out`);
    return undefined;
  }
  const names = topo.nodes.map((n) => n.name).join(', ');
  if (name === undefined) {
    if (topo.nodes.length === 1) return topo.nodes[0].name;
    throw new UserError(`${file} describes ${topo.nodes.length} compute nodes (${names}): say which this is with --node NAME`);
  }
  if (!topo.nodes.some((n) => n.name === name)) throw new UserError(`--node ${name}: ${file} has no such node; its nodes are ${names}`);
  return name;
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
    checkVniMode(topo, gFile);
  }
  notes.push(...topo.notes);
  const ageS = opt(p, '--flow-cache-timeout') !== undefined ? optInt(p, '--flow-cache-timeout', 0) : conf.flowCacheTimeout;
  const aging = agentFlowConfig(params, { ...conf, flowCacheTimeout: ageS }, topo.global.agingTimeouts);
  return { conf, topo, aging, notes };
}

/** The host's first non-loopback IPv4 address: vhost0's, the router-id, when agent.conf names none. */
function hostIp(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function startExport(a: FlowMgr, table: FlowTable, node: ComputeNode, cfg: Config, clock: () => number): ExportState {
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
  const fx = new FlowExport(a, table, node.exportEnv(cfg.conf.vhostIp || (node.overlay?.node.fabricIpStr ?? hostIp())), { rate: cfg.topo.global.flowExportRate, disable: cfg.conf.disableFlowCollection },
    clock, xorshift32((Math.random() * 0x100000000) >>> 0), emit);
  a.sampler = fx;
  for (const k of sinks) log(`vrouter-emu: flow export to ${k.name} (flow_export_rate ${cfg.topo.global.flowExportRate})`);
  return { fx, sinks };
}

/** Refuse to start without root, /dev/net/tun or (unless allowed) on an unsupported platform; log the verdict. */
function checkHost(p: Parsed): void {
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
  if (opt(p, '--mode') === 'vcenter' && !plat.profile?.vcenter) {
    log(`vrouter-emu: vCenter mode: Contrail 2.22 supports it on Ubuntu 14.04.2 (3.13.0-40-generic, vCenter 5.5) only; on ${rel.pretty} it runs as on a compatible host would (vrouter-emu platform check)`);
  }
}

/** The flow table's shared memory. @throws UserError when N+O entries cannot be allocated. */
function allocateTable(params: ModuleParams): { shared: RouterShared; table: FlowTable } {
  let shared: RouterShared;
  try {
    shared = routerSharedCreate(params);
  } catch (e) {
    throw new UserError(`the flow table of ${params.vr_flow_entries + params.vr_oflow_entries} entries could not be allocated (${(e as Error).message}); lower vr_flow_entries/vr_oflow_entries`);
  }
  return { shared, table: flowTableAttach(shared.flowSab, shared.flowInfoSab, params.vr_flow_entries, params.vr_oflow_entries) };
}

/**
 * Reload without restart: agent.conf, the topology's Contrail objects, global-vrouter-config.
 * @returns `reload` (the line to print; @throws UserError when refused, the old configuration staying)
 * and `current`, the configuration in force.
 */
function configReloader(p: Parsed, params: ModuleParams, node: ComputeNode, a: FlowMgr, prog: DpProgrammer, ex: ExportState, first: Config): { reload: () => string; current: () => Config } {
  let cfg = first;
  const reload = (): string => {
    const next = loadConfig(p, params);
    if (opt(p, '--mode') === 'vcenter') next.topo = vcenterTopology(next.topo);
    if (ComputeNode.shape(localTopology(next.topo, node.overlay?.node.name)) !== ComputeNode.shape(node.topo)) {
      throw new UserError('the topology\'s networks, hosts, addresses or floating IPs changed: restart to apply them; the old configuration stays');
    }
    // configureAging checks before it changes anything; it goes first so that a refusal leaves the old
    // configuration whole.
    a.configureAging(next.aging);
    node.reconfigure(localTopology(next.topo, node.overlay?.node.name));
    node.programRuntime(prog);
    const changed = a.reevaluate();
    ex.fx.configure({ rate: next.topo.global.flowExportRate, disable: next.conf.disableFlowCollection });
    if (next.conf.collectors.join(' ') !== cfg.conf.collectors.join(' ')) log('vrouter-emu: collectors changed: restart to apply them');
    cfg = next;
    for (const n of next.notes) log(`vrouter-emu: ${n}`);
    return `configuration reloaded: ${a.collectors.filter((c) => !c.deleted).length} aging tables, ${next.topo.policies.size} network policies, ${changed} flow pairs re-evaluated with a new action`;
  };
  return { reload, current: () => cfg };
}

export async function cmdStart(p: Parsed): Promise<number> {
  checkHost(p);
  const warnings: string[] = [];
  const params = loadModuleParams({ file: opt(p, '--params'), overrides: p.opts.get('--param') }, defaultParamsFile(), {
    warn: (m) => warnings.push(m),
  });
  for (const w of warnings) log(`vrouter-emu: ${w}`);
  const topoFile = opt(p, '--topology');
  const cfg = loadConfig(p, params);
  const mode = opt(p, '--mode') ?? 'kvm';
  if (mode !== 'kvm' && mode !== 'vcenter') throw new UserError(`--mode ${mode}: expected kvm (the default: the vRouter owns the VMs' TAPs) or vcenter (an emulated ESXi host tags them onto a trunk)`);
  let vcenter: VcenterConn | undefined;
  let vcUrl: string | undefined;
  if (mode === 'vcenter') {
    if (cfg.topo.nodes.length > 0) throw new UserError('--mode vcenter: the topology has "nodes"; vCenter mode runs one compute node (the vRouter VM of one ESXi host): give a topology without nodes');
    const url = opt(p, '--vcenter') ?? process.env.VRE_VCENTER_URL;
    if (!url) throw new UserError('--mode vcenter needs --vcenter https://user:pass@HOST/sdk (a vCenter, or VMware\'s simulator: see the README, vCenter mode)');
    if (cfg.topo.vms.length > 0 && topoFile) log(`vrouter-emu: vCenter mode: the ${cfg.topo.vms.length} VMs of ${topoFile} are not created; vrouter-emu vcenter-driver spawns VMs`);
    cfg.topo = vcenterTopology(cfg.topo);
    vcUrl = url;
  } else {
    for (const o of ['--vcenter', '--dvs', '--esxi-prefix']) if (opt(p, o) !== undefined) throw new UserError(`${o} is for --mode vcenter`);
  }
  // A cluster topology: this instance is one of its nodes, and runs that node's part of it.
  const nodeName = nodeOf(p, cfg.topo, topoFile ?? '(demo topology)');
  const overlay = nodeName === undefined ? undefined : new Overlay(cfg.topo, nodeName, cfg.conf.tunnelType);
  const topo = localTopology(cfg.topo, nodeName);
  const socket = opt(p, '--socket') ?? DEFAULT_SOCKET;
  const eviction = optOnOff(p, '--datapath-eviction', true);
  const cpu = opt(p, '--cpu') === undefined ? -1 : optInt(p, '--cpu', 0);
  const ncpu = os.cpus().length;
  if (cpu >= ncpu) throw new UserError(`--cpu ${cpu}: this host has CPUs 0 to ${ncpu - 1}`);
  const isolate = p.flags.has('--isolate-cpu');
  if (isolate && cpu < 0) throw new UserError('--isolate-cpu: give the datapath thread its CPU with --cpu N');

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
  if (overlay) bed.checkFabric(overlay.node.fabricInterface, overlay.node.name);

  const { shared, table } = allocateTable(params);
  const node = new ComputeNode(topo, overlay);
  let dp: DpThread | undefined;
  let agent: FlowMgr | undefined;
  let timer: NodeJS.Timeout | undefined;
  let server: { close(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;
  let exporting: ExportState | undefined;
  let routes: StaticRoutes | undefined;
  let bgp: BgpRoutes | undefined;
  let introspect: IntrospectServer | undefined;
  let introspectUrl = '';
  let mirror = undefined as unknown as DpMirror; // made once the datapath thread runs
  const guests: Guest[] = [];
  /** Boot a qemu guest (its console next to the socket, `vm console NAME`), recorded for teardown. */
  const bootGuest = (vm: HostSpec, nw: Network, image: GuestImage): Guest => {
    const g = Guest.start(vm, nw, image, path.join(path.dirname(socket), 'console', `${vm.name}.log`));
    g.proc.once('exit', (code, sig) => {
      if (!stopping) log(`vrouter-emu: guest ${g.name} (qemu pid ${g.pid}) exited (${sig ?? code}); see ${g.consoleLog}`);
    });
    guests.push(g);
    bed.addGuest(g.pid);
    return g;
  };

  const shutdown = (why: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (timer) clearInterval(timer);
      routes?.stop();
      if (bgp) await bgp.stop();
      if (server) await server.close();
      if (introspect) await introspect.close();
      // What the exporters hold goes out (the collector gets up to a second to acknowledge it).
      if (exporting) await Promise.all(exporting.sinks.map((x) => x.close()));
      await Promise.all(guests.map((g) => g.stop()));
      if (dp) await dp.stop();
      if (vcenter) await vcenter.vs.logout();
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
  // Started by `npx`/`npm start`: npm's wrapper does not pass SIGTERM on, so its exit is taken as one.
  const unwatch = watchLauncher(() => onSignal('SIGTERM'));
  const checkSignal = (): void => {
    if (signalled) throw new UserError(`stopped by ${signalled} while starting; removed what was created`);
  };

  try {
    // vCenter (after every check of the options and names: the session is logged out by shutdown).
    if (vcUrl) vcenter = await vcenterConnect(vcUrl, opt(p, '--dvs') ?? 'DVS0');
    const fds = new Map<string, HostFd>();
    for (const h of [...topo.vms, ...topo.outside]) {
      const nw = topo.networks.find((n) => n.name === h.network);
      if (!nw) throw new Error(`network ${h.network} missing`);
      const hif = await bed.addVm(h, nw);
      fds.set(h.name, { fd: hif.fd, io: hif.io });
      checkSignal();
    }
    // The fabric: vif0/0 on the node's NIC, its address moved to vhost0 (the host's side).
    let fabric: FabricIf | undefined;
    if (overlay) {
      const ifname = overlay.node.fabricInterface;
      const nic = bed.attachFabric(ifname, overlay.node.name);
      const vhostFd = bed.addVhost(overlay.node.name, `${overlay.node.fabricIpStr}/${overlay.node.prefixLen}`, nic.mac, nic.mtu);
      fabric = { ifname, fd: nic.fd, io: VIF_IO_PACKET, vhostFd, mac: nic.mac, mtu: nic.mtu, speed: nic.speed, duplex: nic.duplex };
      checkSignal();
    }
    let attachments: Attachments | undefined;
    const offload: number[] = [];
    const clock = (): number => performance.now();
    // --isolate-cpu gives the datapath thread CPU N to itself, as a DPDK vRouter's forwarding cores are
    // its own: the agent's thread and Node's helper threads move off it first (threads started later,
    // the datapath's among them, inherit that; the datapath thread then pins itself to N). Not the
    // default: on a 2-CPU host the agent then shares the one other CPU with the VMs, and flow setup
    // loses more than forwarding gains (BENCHMARKS.md, bench:forward 2026-12-08).
    const movedOff = isolate && ncpu > 1 ? loadNative().avoidCpu(cpu) : 0;
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
      onTunnel: (id, mac) => mirror?.resolved(id, mac),
      onError: (e) => {
        log(`vrouter-emu: the datapath thread failed: ${e.message}`);
        void shutdown('the datapath thread failed').then(() => process.exit(1));
      },
    });
    const dpCpu = await dp.whenReady();
    mirror = new DpMirror(dp);
    checkSignal();
    // Programmed through the mirror: the tools (nh, mpls, vxlan, rt) list what the agent asked for.
    const prog = mirror;
    node.program(prog, fds);
    if (overlay && fabric) {
      node.programFabric(prog, fabric);
      if (topo.routeSource === 'bgp' && topo.bgp) {
        // The agent's BGP speaker (a gobgpd of its own): the VMs announced, remote routes learned.
        const b = new BgpRoutes(overlay, topo.bgp, { vifs: () => node.vifs, log }, `${socket}.gobgpd.pid`, fabric.mac);
        bgp = b;
        b.labelOf = (idx) => node.labels.get(idx) ?? -1;
        await b.start(node.routeSink(prog));
        node.vmListeners.push((v, up) => void b.vmChanged(v, up).catch((e: Error) => log(`vrouter-emu: BGP: ${v.vm?.name}: ${e.message}`)));
      } else {
        routes = new StaticRoutes(overlay);
        routes.start(node.routeSink(prog));
      }
      checkSignal();
    }
    const att = new Attachments(bed, node, dp, topo, log, fds, prog);
    attachments = att;
    // vCenter mode: the trunk vif (the vRouter VM's NIC on the ESXi trunk) and the emulated ESXi host.
    let vcmode: VcenterMode | undefined;
    if (vcenter) {
      const trunk = node.addTrunk(prog, TRUNK_IFNAME, TRUNK_MAC, { fd: -1, io: VIF_IO_SWITCH });
      // qemu guests on the host: booted as the topology's are (console logs next to the socket, `vm console`).
      let esxiImg: GuestImage | undefined;
      const runner = {
        start: (h: HostSpec, nw: Network): { pid: number; stop(): Promise<void> } => {
          guestCheck([h]);
          esxiImg ??= guestImage(log);
          const g = bootGuest(h, nw, esxiImg);
          return {
            pid: g.pid,
            stop: async (): Promise<void> => {
              await g.stop();
              bed.removeGuest(g.pid);
              const at = guests.indexOf(g);
              if (at >= 0) guests.splice(at, 1);
            },
          };
        },
      };
      const esxi = new EsxiHost(bed, dp, vcenterVlans(vcenter), trunk.idx, opt(p, '--esxi-prefix') ?? 'esxi-', log, runner);
      vcmode = new VcenterMode(esxi, node, dp, prog, topo, log);
      log(`vrouter-emu: vCenter mode: ESXi host on ${vcenter.vs.where}, switch ${vcenter.dvsName}, trunk vif0/${trunk.idx} (${TRUNK_IFNAME})`);
    }
    agent = new FlowMgr(table, dp, node.flowEnv(), cfg.aging, clock);
    const a = agent;
    // Route changes come in bursts (BGP): the flows are re-evaluated once per burst, 50 ms after its first change.
    let reeval: NodeJS.Timeout | undefined;
    node.routesChanged = () => {
      reeval ??= setTimeout(() => {
        reeval = undefined;
        if (!stopping) a.reevaluate();
      }, 50);
    };
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
    const { reload, current } = configReloader(p, params, node, a, mirror, ex, cfg);
    const inst: Instance = {
      params, shared, table, node, mirror, agent: () => agent, exporting: () => exporting, reload, clock, io: { attachments: att, guests, offload, vcenter: vcmode }, bgp: () => bgp,
    };
    server = await controlServe(socket, toolHandler(inst));
    // The introspect (HTTP): 127.0.0.1 and http_server_port unless --introspect-listen says otherwise.
    // A port taken by another instance is a warning unless the address was asked for.
    const asked = opt(p, '--introspect-listen');
    const listen = parseListen(asked ?? '127.0.0.1', cfg.conf.httpServerPort);
    try {
      const intro = await startIntrospect(inst, { ...listen, allowWrites: p.flags.has('--introspect-allow-writes') });
      introspect = intro.server;
      introspectUrl = `http://${listen.host}:${intro.port}/`;
    } catch (e) {
      if (asked !== undefined || !(e instanceof UserError)) throw e;
      log(`vrouter-emu: ${e.message}; running without it`);
    }
    // Guests boot once their vifs are programmed, so their first ARP is answered.
    for (const vm of topo.vms) {
      if (vm.kind !== 'qemu' || !img) continue;
      const nw = topo.networks.find((n) => n.name === vm.network) as (typeof topo.networks)[number];
      bootGuest(vm, nw, img);
      checkSignal();
    }
    reloadHook = (): void => {
      try {
        log(`vrouter-emu: SIGHUP: ${reload()}`);
      } catch (e) {
        log(`vrouter-emu: SIGHUP: reload refused: ${(e as Error).message}`);
      }
    };

    const now = current();
    startBanner({ socket, params, dpCpu, cpu, movedOff, eviction, conf: now.conf, aging: now.aging, topo, policies: now.topo.policies.size, notes: now.notes, node, guests, remote: routes?.derive() ?? bgp?.routes(), bgp: bgp && topo.bgp ? { as: topo.bgp.as, reflectors: topo.bgp.reflectorsStr } : undefined, introspect: introspectUrl }, log);
    if (!topoFile && !vcenter && !p.flags.has('--no-demo-traffic')) await startDemo(topo, table, log, checkSignal);
    startHelp(topo, socket, log);
  } catch (e) {
    unwatch();
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
      unwatch();
      void shutdown(`stopped by ${sig}`).then(() => resolve(0));
    };
    if (signalled) onSignal(signalled);
  });
}
