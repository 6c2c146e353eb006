/**
 * What `vrouter-emu start` prints once the instance runs: the banner (pid, control socket, flow table,
 * datapath CPU, aging, the VMs with their namespaces, interfaces, addresses and vifs, guests, floating
 * IPs), the demo (without --topology: vm1 pings vm2 and the flow table's ICMP pair is listed), and the
 * commands to look at it. start.ts calls these in that order; they only read the instance.
 * @module
 */
import type { RemoteRoute } from '../agent/overlay';
import { execFile } from 'child_process';
import type { ModuleParams } from '../params/module-params';
import type { AgentConf } from '../agent/agent-conf';
import type { ComputeNode } from '../agent/compute-node';
import type { FlowMgrConfig } from '../agent/flow-mgr';
import type { Topology } from '../agent/topology';
import type { HostSpec } from '../lib/topology-types';
import { macString } from '../dp/interface';
import type { FlowTable } from '../dp/flow-table';
import { type Guest, guestAccel } from '../io/guest';
import { DEFAULT_SOCKET } from './control';
import { flowList } from './flow-list';
import { snapshotFlowTable } from './flow-snapshot';

/** What the banner shows. */
export interface BannerInfo {
  socket: string;
  params: ModuleParams;
  /** The CPU the datapath thread runs on, and the one asked for (−1: not pinned). */
  dpCpu: number;
  /** Threads moved off the datapath's CPU (--isolate-cpu). */
  movedOff?: number;
  cpu: number;
  eviction: boolean;
  conf: AgentConf;
  aging: FlowMgrConfig;
  /** The topology started (its hosts); the configuration in force may have been reloaded since. */
  topo: Topology;
  /** Network policies of the configuration in force. */
  policies: number;
  notes: string[];
  node: ComputeNode;
  guests: Guest[];
  /** The remote routes of a cluster node. */
  remote?: RemoteRoute[];
  /** route_source "bgp": the speaker's AS and reflectors (the remote routes are those learned so far). */
  bgp?: { as: number; reflectors: string[] };
  /** The introspect's URL (its Sandesh requests, /metrics and the live page). */
  introspect?: string;
}

/** The banner: the instance, its table and aging, the configuration's notes, the VMs, guests and floating IPs. */
export function startBanner(b: BannerInfo, log: (s: string) => void): void {
  const { socket, params, dpCpu, cpu, eviction, topo, node, guests } = b;
  const alone = cpu >= 0 && (b.movedOff ?? 0) > 0 ? ', the other threads off it' : '';
  log(`vrouter-emu: vRouter running (pid ${process.pid}), control socket ${socket}`);
  log(`  flow table ${params.vr_flow_entries} + ${params.vr_oflow_entries} entries, datapath thread on CPU ${dpCpu}${cpu >= 0 ? ` (pinned${alone})` : ''}`);
  if (b.introspect) log(`  introspect ${b.introspect} (the live page; Snh_* requests, /metrics for Prometheus)`);
  log(`  datapath eviction ${eviction ? 'on' : 'off'}, flow_cache_timeout ${b.aging.ageMs / 1000} s${b.conf.file ? ` (${b.conf.file})` : ''}, ${b.policies} network policies`);
  for (const n of b.notes) log(`vrouter-emu: ${n}`);
  const hosts = [...topo.vms, ...topo.outside];
  if (node.trunk && hosts.length === 0) {
    // vCenter mode: the VMs come from the driver; say how.
    const sock = socket === DEFAULT_SOCKET ? '' : ` --socket ${socket}`;
    log(`  vCenter mode: trunk vif0/${node.trunk.idx} (${node.trunk.os}); networks ${topo.networks.map((n) => `${n.name} ${n.subnet}`).join(', ')}; no VMs yet. Spawn them with:`);
    log(`    sudo vrouter-emu vcenter-driver serve --vcenter URL${sock} &`);
    log(`    sudo vrouter-emu vcenter-driver spawn NAME --network ${topo.networks[0]?.name ?? 'N'} --ip A`);
  }
  const w = (f: (h: HostSpec) => string, min: number): number => Math.max(min, ...hosts.map((h) => f(h).length));
  const wName = w((h) => h.name, 11);
  const where = (h: HostSpec): string => (h.kind === 'netns' ? h.namespace : h.kind === 'qemu' ? `qemu (${guestAccel()})` : 'attached');
  const wNs = w(where, 15);
  if (hosts.length > 0) log(`  ${'VM'.padEnd(wName)} ${'namespace'.padEnd(wNs)} ${'interface'.padEnd(21)} ${'address'.padEnd(19)} ${'MAC'.padEnd(17)}  vif`);
  for (const vm of hosts) {
    const nw = topo.networks.find((n) => n.name === vm.network);
    const v = node.hostVif(vm.name);
    const ifc = vm.kind === 'netns' ? `eth0 (${vm.tap})` : vm.tap;
    log(`  ${vm.name.padEnd(wName)} ${where(vm).padEnd(wNs)} ${ifc.padEnd(21)} ${`${vm.ipStr}/${nw?.prefixLen}`.padEnd(19)} ${macString(vm.mac)}  vif0/${v?.idx}${topo.outside.includes(vm) ? ' (outside host)' : ''}`);
  }
  for (const g of guests) log(`  guest ${g.name}: qemu pid ${g.pid}, console ${g.consoleLog} (vrouter-emu vm console ${g.name})`);
  for (const vm of topo.vms) for (const f of vm.floatingIps) log(`  floating IP ${f.ipStr} (${f.network}) → ${vm.name} ${vm.ipStr}`);
  const ov = node.overlay;
  if (ov) {
    const fab = node.vif(0);
    log(`  node ${ov.node.name}: fabric ${ov.node.fabricIpStr}/${ov.node.prefixLen} on vhost0, vif0/0 on ${fab?.os ?? ov.node.fabricInterface}`);
    for (const peer of ov.peers) {
      const enc = ov.encapFor(peer);
      const l3 = peer.kind === 'node' ? ov.l3EncapFor(peer) : enc;
      log(`  peer ${peer.name} ${peer.ipStr}: ${enc}${l3 !== enc ? ` (routed traffic ${l3})` : ''}`);
    }
    if (b.bgp) log(`  routes over BGP: this node's gobgpd (AS ${b.bgp.as}) peers with the route reflector ${b.bgp.reflectors.join(', ')}; ${b.remote?.length ?? 0} remote routes learned so far (vrouter-emu bgp)`);
    for (const r of b.remote ?? []) {
      log(`  remote ${r.kind === 'vm' ? 'VM' : 'bare-metal host'} ${r.name} ${r.ipStr} (${r.network}) via ${r.peer.name}: ${r.encap} ${r.encap === 'VXLAN' ? 'VNI' : 'label'} ${r.label}`);
    }
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10000 }, (_e, stdout, stderr) => resolve(String(stdout) + String(stderr)));
  });
}

/**
 * The demo: the first VM pings the second through the flow engine, then the flow table's entries are
 * listed. Runs only when there are two VMs (start calls it for the demo topology).
 * @param checkSignal throws when a signal came during the ping (start stops and cleans up)
 */
export async function startDemo(topo: Topology, table: FlowTable, log: (s: string) => void, checkSignal: () => void): Promise<void> {
  const [v1, v2] = topo.vms;
  if (!v1 || !v2) return;
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

/** The commands to look at the instance with, and how to stop it. */
export function startHelp(topo: Topology, socket: string, log: (s: string) => void): void {
  const [v1, v2] = topo.vms;
  log('Look at it with:');
  if (v1 && v2 && v1.kind === 'netns') log(`  sudo ip netns exec ${v1.namespace} ping -c 3 ${v2.ipStr}`);
  const sock = socket === DEFAULT_SOCKET ? '' : ` --socket ${socket}`;
  log(`  sudo vrouter-emu flow -l${sock}      sudo vrouter-emu vif --list${sock}`);
  log(`  sudo vrouter-emu dropstats${sock}    sudo vrouter-emu vrouter --info${sock}`);
  log(`  sudo vrouter-emu agent flows${sock}  sudo vrouter-emu config reload${sock}  (or kill -HUP ${process.pid})`);
  log('Stop with Ctrl-C: the namespaces and interfaces it created are removed.');
}
