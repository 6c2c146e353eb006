/**
 * The agent's model of this compute node and its flow decisions: which vif, nexthop and VRF each VM,
 * outside host and network gets; what the datapath must be told (vifs, interface nexthops, /32 routes with
 * the ARP-proxy flag, routes leaked between networks that policies connect, fat-flow lists, bridge
 * entries); and, for each new flow, the plan of its forward and reverse entries: policy (reference
 * vrouter-agent.md §7), floating-IP NAT (§7.6), the reverse key as the datapath will build it (fat flow,
 * §5.2).
 *
 * Numbering as the module and agent do it: vif0/0 physical (absent: no fabric), vif0/1 vhost0, vif0/2
 * pkt0, VM interfaces from vif0/3, then the outside hosts' gateway interfaces; VRF 0 is the fabric's, a
 * network's VRF is its position + 1; nexthop 0 is discard, 1 the receive nexthop of the gateway addresses,
 * interface nexthops from 10.
 * @module
 */
import type { ExportEnv } from './flow-export';
import {
  VR_FLOW_ACTION_DROP,
  VR_FLOW_ACTION_FORWARD,
  VR_FLOW_ACTION_NAT,
  VR_FLOW_DR_NO_DST_ROUTE,
  VR_FLOW_DR_OUT_POLICY,
  VR_FLOW_DR_POLICY,
  VR_FLOW_FLAG_DNAT,
  VR_FLOW_FLAG_SNAT,
  VR_FLOW_FLAG_VRFT,
  VR_VIF_MAC,
} from '../dp/defs';
import {
  VIF_FLAG_DHCP_ENABLED,
  VIF_FLAG_L2_ENABLED,
  VIF_FLAG_L3_ENABLED,
  VIF_FLAG_POLICY_ENABLED,
  VIF_TYPE_AGENT,
  VIF_TYPE_GATEWAY,
  VIF_TYPE_HOST,
  VIF_TYPE_PHYSICAL,
  VIF_TYPE_VIRTUAL,
  VIF_TYPE_VIRTUAL_VLAN,
  macParse,
} from '../dp/interface';
import {
  NH_ENCAP, NH_FLAG_TUNNEL_GRE, NH_FLAG_TUNNEL_UDP_MPLS, NH_FLAG_TUNNEL_VXLAN, NH_RCV, NH_TUNNEL, NH_VRF_TRANSLATE, VR_RT_ARP_PROXY_FLAG,
} from '../dp/nexthop';
import { ENCAP_TUN, MPLS_FIRST_LABEL, NH_FIRST_VXLAN_VRF, Overlay, Peer, RemoteRoute, RouteSink } from './overlay';
import type { Encap } from '../lib/topology-types';
import { fatFlowReduce, keyDport, keyIp, keyReversePorts, keySport } from '../dp/proto-ip';
import type { DpProgrammer } from './dp-channel';
import type { FlowEnv, FlowPlan } from './flow-mgr';
import { PolicyEngine, UUID_NOT_EVALUATED } from './policy';
import { Topology, ipKeyWord } from './topology';
import type { HostSpec, Network, VmSpec } from '../lib/topology-types';

/** Moved to dp-channel.ts (the agent's side of the datapath); re-exported for the modules that import it from here. */
export type { DpProgrammer } from './dp-channel';

export interface VifInfo {
  idx: number;
  /** OS interface name, as `vif --list` prints it. */
  os: string;
  type: number;
  vrf: number;
  flags: number;
  mtu: number;
  mac: Uint8Array;
  nh: number;
  /** The namespace host on this vif (a VM or an outside host). */
  host?: HostSpec;
  vm?: VmSpec;
  /** Position of the VM in the topology (for per-VM flow limits), −1 for other vifs. */
  vmIndex: number;
  /** False once the OS interface went away. */
  up: boolean;
  /** vifr_ip: the fabric address on the physical vif and vhost0, 0 elsewhere. */
  ip?: number;
  /** The physical vif's link speed (Mb/s) and duplex (1 full), as `vif --list` shows them; −1 unknown. */
  speed?: number;
  duplex?: number;
  /** A VLAN sub-interface (vCenter mode): its parent (the trunk vif) and its inner (rx) and outer (tx) VLAN. */
  parent?: number;
  vlan?: number;
  ovlan?: number;
}

/** The fabric side of a node as the testbed opened it: the NIC (packet socket) and vhost0 (a TAP). */
export interface FabricIf {
  ifname: string;
  fd: number;
  io: number;
  vhostFd: number;
  mac: Uint8Array;
  /** The NIC's IP MTU. */
  mtu: number;
  speed: number;
  duplex: number;
}

export const VIF_FABRIC = 0;
export const VIF_VHOST = 1;
export const VIF_PKT0 = 2;
export const VIF_FIRST_VM = 3;
/**
 * vCenter mode's trunk vif: the agent's VMWARE PhysicalInterface (vmware_physical_interface), a
 * physical vif in the fabric VRF, promiscuous ("Pr": it takes every VM's frames).
 */
export const TRUNK_VIF_TYPE = VIF_TYPE_PHYSICAL;
export const TRUNK_VIF_VRF = 0;
export const VIF_FLAG_PROMISCUOUS = 0x400;
export const NH_GATEWAY = 1;
export const NH_FIRST_VM = 10;

/** A host's OS side as the testbed opened it: the fd the datapath reads and how (VIF_IO_*). */
export interface HostFd {
  fd: number;
  io: number;
}

/** What an address is on this node. */
interface Owner {
  vif: VifInfo;
  /** A floating IP of this VM vif (not its own address). */
  fip: boolean;
}

export class ComputeNode {
  readonly vifs: VifInfo[] = [];
  /** Networks by fq-name, and the VN index used in flow metadata. */
  readonly vnNames: string[];
  private readonly byIp = new Map<number, Owner>(); // numeric IPv4 → owner
  private readonly gateways = new Map<number, Network>(); // numeric IPv4 → network
  private policy: PolicyEngine;
  /** Per-VM flow accounting index of the next VM (never reused, so a re-added VM starts from zero). */
  private nextVmIndex = 0;
  /** vCenter mode: the trunk vif (addTrunk). */
  trunk: VifInfo | undefined;
  /** Hosts on other nodes and behind VTEPs, by numeric IPv4 (from the route source). */
  private readonly remote = new Map<number, RemoteRoute>();
  /** The MPLS label of each VM's vif (by vif index), once the fabric is programmed. */
  readonly labels = new Map<number, number>();
  /** Tunnel nexthops programmed so far (peers learned at run time get theirs on first use). */
  private readonly tunnelsMade = new Set<number>();
  private fabricUp = false;
  /** Told when a VM joins (`vif --add`) or leaves (`vif --delete`) this node: the route source announces or withdraws it. */
  readonly vmListeners: ((v: VifInfo, up: boolean) => void)[] = [];
  /** Called after each batch of remote-route changes (the flows are re-evaluated). */
  routesChanged: (() => void) | undefined;

  /**
   * @param topo this node's part of the topology (its own VMs and outside hosts: see localTopology)
   * @param overlay the cluster around it, when the topology has nodes
   */
  constructor(readonly topo: Topology, readonly overlay?: Overlay) {
    const vrmac = macParse(VR_VIF_MAC) as Uint8Array;
    const v = (x: Omit<VifInfo, 'up' | 'vmIndex'> & { vmIndex?: number }): VifInfo => {
      const info: VifInfo = { vmIndex: -1, up: true, ...x };
      this.vifs.push(info);
      return info;
    };
    v({ idx: VIF_VHOST, os: 'vhost0', type: VIF_TYPE_HOST, vrf: 0, flags: VIF_FLAG_L3_ENABLED, mtu: 1514, mac: vrmac, nh: 0 });
    v({ idx: VIF_PKT0, os: 'pkt0', type: VIF_TYPE_AGENT, vrf: 65535, flags: VIF_FLAG_L3_ENABLED, mtu: 1514, mac: vrmac, nh: 0 });
    const flags = VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED;
    topo.vms.forEach((vm, i) => {
      const info = v({
        idx: VIF_FIRST_VM + i, os: vm.tap, type: VIF_TYPE_VIRTUAL, vrf: this.vrfOf(vm.network), flags: flags | VIF_FLAG_DHCP_ENABLED,
        mtu: vm.mtu, mac: vrmac, nh: NH_FIRST_VM + i, host: vm, vm, vmIndex: this.nextVmIndex++,
      });
      this.byIp.set(vm.ip, { vif: info, fip: false });
      for (const f of vm.floatingIps) this.byIp.set(f.ip, { vif: info, fip: true });
    });
    topo.outside.forEach((h, k) => {
      const idx = VIF_FIRST_VM + topo.vms.length + k;
      const info = v({ idx, os: h.tap, type: VIF_TYPE_GATEWAY, vrf: this.vrfOf(h.network), flags, mtu: h.mtu, mac: vrmac, nh: NH_FIRST_VM + topo.vms.length + k, host: h });
      this.byIp.set(h.ip, { vif: info, fip: false });
    });
    for (const n of topo.networks) this.gateways.set(n.gateway, n);
    this.vnNames = topo.networks.map((n) => n.fqName);
    this.policy = new PolicyEngine(topo.networks, topo.policies);
  }

  vrfOf(network: string): number {
    return this.topo.networks.findIndex((n) => n.name === network) + 1;
  }

  private network(name: string): Network {
    return this.topo.networks.find((n) => n.name === name) as Network;
  }

  vif(idx: number): VifInfo | undefined {
    return this.vifs.find((v) => v.idx === idx);
  }

  hostVif(name: string): VifInfo | undefined {
    return this.vifs.find((v) => v.host?.name === name);
  }

  /** Whether the policies connect two networks (routes are leaked between them). */
  connected(a: Network, b: Network): boolean {
    return a !== b && this.policy.references(a.fqName, b.fqName) && this.policy.references(b.fqName, a.fqName);
  }

  /**
   * The part of a topology that only a restart can change: networks, hosts, addresses, floating IPs.
   * Two topologies with the same shape differ only in what reconfigure() applies.
   */
  static shape(topo: Topology): string {
    return JSON.stringify({
      n: topo.networks.map((n) => [n.name, n.subnet, n.gatewayStr, n.routerExternal, n.vxlanId]),
      v: topo.vms.map((v) => [v.name, v.ipStr, v.macStr, v.network, v.mtu, v.namespace, v.floatingIps.map((f) => f.ipStr), v.node]),
      o: topo.outside.map((h) => [h.name, h.ipStr, h.macStr, h.network, h.namespace, h.node]),
      // The cluster: nodes, bare-metal hosts, and which VNIs the networks use (the mode picks them).
      c: topo.nodes.map((n) => [n.name, n.fabricIpStr, n.prefixLen, n.fabricInterface, n.encapsulations]),
      b: topo.bareMetal.map((h) => [h.name, h.ipStr, h.macStr, h.network, h.mtu, h.namespace, h.vtepNamespace, h.vtepIpStr]),
      x: topo.nodes.length > 0 ? topo.global.vxlanMode : '',
    });
  }

  /** Replace the configuration that can change at run time: policies and their references, fat-flow lists, global-vrouter-config. */
  reconfigure(topo: Topology): void {
    this.topo.policies = topo.policies;
    for (const n of this.topo.networks) n.policies = topo.networks.find((x) => x.name === n.name)?.policies ?? [];
    for (const vm of this.topo.vms) vm.fatFlow = topo.vms.find((x) => x.name === vm.name)?.fatFlow ?? [];
    this.topo.global = topo.global;
    this.policy = new PolicyEngine(this.topo.networks, this.topo.policies);
  }

  /**
   * The fabric: vif0/0 on the NIC, vhost0 with the node's address (both with the NIC's MAC, as the
   * module's vhost0 takes the physical interface's), the L3 label of every VM of this node, the VXLAN
   * table (a VRF nexthop per network with a VNI), and a tunnel nexthop per peer and encapsulation.
   */
  programFabric(dp: DpProgrammer, f: FabricIf): void {
    const ov = this.overlay;
    if (!ov) return;
    const ip = ov.node.fabricIp;
    const phys: VifInfo = {
      idx: VIF_FABRIC, os: f.ifname, type: VIF_TYPE_PHYSICAL, vrf: 0, flags: VIF_FLAG_L3_ENABLED, mtu: f.mtu + 14, mac: f.mac, nh: 0,
      vmIndex: -1, up: true, ip, speed: f.speed, duplex: f.duplex,
    };
    this.vifs.unshift(phys);
    const vh = this.vif(VIF_VHOST) as VifInfo;
    vh.mac = f.mac;
    vh.ip = ip;
    dp.vifAdd(VIF_FABRIC, f.fd, VIF_TYPE_PHYSICAL, 0, 0, phys.flags, phys.mtu, f.mac, f.io, ip);
    dp.vifAdd(VIF_VHOST, f.vhostFd, VIF_TYPE_HOST, 0, 0, vh.flags, vh.mtu, f.mac, 0, ip);
    this.fabricUp = true;
    for (const v of this.vifs) if (v.vm) this.labelVm(dp, v);
    for (const n of this.topo.networks) {
      const vni = ov.vni(n.name);
      if (vni === 0) continue;
      const vrf = this.vrfOf(n.name);
      dp.nhAdd(NH_FIRST_VXLAN_VRF + vrf, NH_VRF_TRANSLATE, -1, new Uint8Array(6), 0, 0, 0, vrf);
      dp.vxlanAdd(vni, NH_FIRST_VXLAN_VRF + vrf);
    }
    for (const t of ov.tunnels()) this.tunnel(dp, t.peer, t.encap);
  }

  /** The tunnel nexthop to `peer` with `encap`, programmed on first use. @returns its id. */
  private tunnel(dp: DpProgrammer, peer: Peer, encap: Encap): number {
    const ov = this.overlay as Overlay;
    const nh = ov.tunnelNh(peer, encap);
    if (!this.tunnelsMade.has(nh)) {
      dp.nhAdd(nh, NH_TUNNEL, VIF_FABRIC, new Uint8Array(6), TUNNEL_FLAGS[encap], ov.node.fabricIp, peer.ip, 0);
      this.tunnelsMade.add(nh);
    }
    return nh;
  }

  /**
   * Give a VM's vif its MPLS label (the agent's MplsTable): a topology VM the one every node derives
   * (overlay.label), a VM added at run time the lowest free one from 16 (no topology VM's).
   */
  private labelVm(dp: DpProgrammer, v: VifInfo): void {
    const ov = this.overlay;
    if (!ov || !v.vm || !this.fabricUp) return;
    let label = ov.label(v.vm.name);
    if (label < 0 || [...this.labels.values()].includes(label)) {
      const taken = new Set([...this.labels.values(), ...ov.topo.vms.filter((x) => x.node === ov.node.name).map((x) => ov.label(x.name))]);
      for (label = MPLS_FIRST_LABEL; taken.has(label); label++);
    }
    this.labels.set(v.idx, label);
    dp.mplsAdd(label, v.nh);
  }

  /** Where the route source's routes go: into the datapath, and into what plan() knows. */
  routeSink(dp: DpProgrammer): RouteSink {
    const changed: RemoteRoute[] = [];
    return {
      add: (r) => {
        changed.push(r);
        this.remote.set(r.ip, r);
        this.tunnel(dp, r.peer, r.encap);
        dp.rtAdd(r.vrf, ipKeyWord(r.ip), r.nh, VR_RT_ARP_PROXY_FLAG, r.label, r.l2 ? r.mac : null);
        if (r.l2) dp.bridgeAdd(r.vrf, r.mac, -1, r.nh, r.label);
      },
      remove: (r) => {
        changed.push(r);
        if (this.remote.get(r.ip) === r) this.remote.delete(r.ip);
        dp.rtDelete(r.vrf, ipKeyWord(r.ip));
        if (r.l2) dp.bridgeAdd(r.vrf, r.mac, -1, -1);
      },
      commit: () => {
        // Only the changed routes' leaks: a BGP burst of thousands of routes must not walk them all per batch.
        this.leakRemote(dp, changed.splice(0));
        // As the agent recomputes the flows of a route that changed: those with no route left become short (No Destination route).
        this.routesChanged?.();
      },
    };
  }

  /** Tell the datapath about the hosts (their fds by name), nexthops, routes, fat flow and bridge entries. */
  program(dp: DpProgrammer, fds: Map<string, HostFd>): void {
    dp.nhAdd(NH_GATEWAY, NH_RCV, VIF_PKT0, new Uint8Array(6));
    for (const n of this.topo.networks) dp.rtAdd(this.vrfOf(n.name), ipKeyWord(n.gateway), NH_GATEWAY, VR_RT_ARP_PROXY_FLAG);
    for (const v of this.vifs) {
      if (v.host) this.programVif(dp, v, fds.get(v.host.name) as HostFd);
    }
    this.programRuntime(dp);
  }

  /** One host's vif, interface nexthop, /32 route (and its floating IPs') and bridge entry. */
  private programVif(dp: DpProgrammer, v: VifInfo, hf: HostFd): void {
    const h = v.host as HostSpec;
    if (v.parent !== undefined) dp.subVifAdd(v.idx, v.parent, v.vlan as number, v.ovlan as number, v.vrf, v.nh, v.flags, v.mtu, v.mac);
    else dp.vifAdd(v.idx, hf.fd, v.type, v.vrf, v.nh, v.flags, v.mtu, v.mac, hf.io);
    dp.nhAdd(v.nh, NH_ENCAP, v.idx, h.mac);
    dp.rtAdd(v.vrf, ipKeyWord(h.ip), v.nh, VR_RT_ARP_PROXY_FLAG);
    dp.bridgeAdd(v.vrf, h.mac, v.idx);
    // A floating IP is answered (proxy ARP) and routed to its VM in the router-external network.
    for (const f of v.vm?.floatingIps ?? []) dp.rtAdd(this.vrfOf(f.network), ipKeyWord(f.ip), v.nh, VR_RT_ARP_PROXY_FLAG);
  }

  /**
   * Check that `vm` can join this node at run time (`vif --add`): its network exists, its address and
   * MAC are free. @returns the problem, or undefined.
   */
  addable(vm: VmSpec): string | undefined {
    const nw = this.topo.networks.find((n) => n.name === vm.network);
    if (!nw) return `no network ${vm.network} (the networks are ${this.topo.networks.map((n) => n.name).join(', ')})`;
    const mask = (0xffffffff << (32 - nw.prefixLen)) >>> 0;
    if (((vm.ip & mask) >>> 0) !== nw.net || vm.ip === nw.gateway || vm.ip === nw.net || vm.ip === ((nw.net | ~mask) >>> 0)) {
      return `${vm.ipStr} is not a host address of ${nw.name} (${nw.subnet}, gateway ${nw.gatewayStr})`;
    }
    const owner = this.byIp.get(vm.ip);
    if (owner) return `${vm.ipStr} is already vif0/${owner.vif.idx} (${owner.vif.host?.name ?? owner.vif.os})`;
    const mac = this.vifs.find((v) => v.host?.macStr === vm.macStr);
    if (mac) return `MAC ${vm.macStr} is already vif0/${mac.idx} (${mac.host?.name})`;
    const name = this.vifs.find((v) => v.host?.name === vm.name);
    if (name) return `VM ${vm.name} is already vif0/${name.idx}`;
    const os = this.vifs.find((v) => v.os === vm.tap);
    if (os) return `interface ${vm.tap} is already vif0/${os.idx}`;
    return undefined;
  }

  /** The lowest free vif index for a VM (as the agent reuses them). */
  private freeVifIdx(): number {
    let idx = VIF_FIRST_VM;
    while (this.vifs.some((v) => v.idx === idx)) idx++;
    return idx;
  }

  /**
   * vCenter mode: the trunk vif, the vRouter VM's NIC on the ESXi host's trunk port group ("ContrailVM"
   * eth1), on the lowest free VM index: what arrives on it belongs to the VLAN sub-interfaces its
   * ports add (addVm with a VLAN). `io`/`fd`: how the datapath reaches it.
   */
  addTrunk(dp: DpProgrammer, os: string, mac: Uint8Array, hf: HostFd): VifInfo {
    const info: VifInfo = {
      idx: this.freeVifIdx(), os, type: TRUNK_VIF_TYPE, vrf: TRUNK_VIF_VRF, flags: VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED | VIF_FLAG_PROMISCUOUS,
      mtu: 1514, mac, nh: 0, vmIndex: -1, up: true,
    };
    this.vifs.push(info);
    this.vifs.sort((a, b) => a.idx - b.idx);
    dp.vifAdd(info.idx, hf.fd, info.type, info.vrf, 0, info.flags, info.mtu, mac, hf.io);
    this.trunk = info;
    return info;
  }

  /**
   * Add a VM at run time on the lowest free vif index (as the agent reuses them) and program it. With
   * `vlan` (vCenter mode) the vif is a VLAN sub-interface of the trunk: the VM's frames arrive there
   * tagged with its port group's VLAN.
   */
  addVm(dp: DpProgrammer, vm: VmSpec, hf: HostFd, vlan?: number): VifInfo {
    const idx = this.freeVifIdx();
    if (vlan !== undefined && !this.trunk) throw new Error('addVm with a VLAN before addTrunk');
    const sub = vlan !== undefined ? { type: VIF_TYPE_VIRTUAL_VLAN, parent: (this.trunk as VifInfo).idx, vlan, ovlan: vlan } : { type: VIF_TYPE_VIRTUAL };
    const info: VifInfo = {
      idx, os: vm.tap, vrf: this.vrfOf(vm.network), ...sub,
      flags: VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED | VIF_FLAG_DHCP_ENABLED,
      mtu: vm.mtu, mac: macParse(VR_VIF_MAC) as Uint8Array, nh: NH_FIRST_VM - VIF_FIRST_VM + idx, // as the topology's vifs: nexthop = vif + 7
      host: vm, vm, vmIndex: this.nextVmIndex++, up: true,
    };
    this.vifs.push(info);
    this.vifs.sort((a, b) => a.idx - b.idx);
    this.byIp.set(vm.ip, { vif: info, fip: false });
    for (const f of vm.floatingIps) this.byIp.set(f.ip, { vif: info, fip: true });
    this.programVif(dp, info, hf);
    this.labelVm(dp, info);
    this.programRuntime(dp);
    for (const l of this.vmListeners) l(info, true);
    return info;
  }

  /**
   * Take a VM's vif off this node (`vif --delete`): its routes go, so new flows towards it find no route
   * and its existing flows age out. The caller deletes the vif in the datapath.
   */
  removeVm(dp: DpProgrammer, idx: number): VifInfo | undefined {
    const at = this.vifs.findIndex((v) => v.idx === idx);
    const v = this.vifs[at];
    if (at < 0 || !v.vm) return undefined;
    this.vifs.splice(at, 1);
    dp.rtDelete(v.vrf, ipKeyWord(v.vm.ip));
    this.byIp.delete(v.vm.ip);
    for (const f of v.vm.floatingIps) {
      dp.rtDelete(this.vrfOf(f.network), ipKeyWord(f.ip));
      this.byIp.delete(f.ip);
    }
    const label = this.labels.get(v.idx);
    if (label !== undefined) dp.mplsAdd(label, -1);
    this.labels.delete(v.idx);
    this.programRuntime(dp); // withdraws the routes leaked for it
    for (const l of this.vmListeners) l(v, false);
    return v;
  }

  /** What reconfigure() can change: routes leaked between connected networks, fat-flow lists. */
  programRuntime(dp: DpProgrammer): void {
    const leaked = new Set<string>();
    const partners = this.partners();
    for (const v of this.vifs) {
      if (!v.vm) continue;
      for (const other of partners.get(v.vm.network) ?? []) {
        const vrf = this.vrfOf(other.name);
        leaked.add(`${vrf}/${v.vm.ip}`);
        dp.rtAdd(vrf, ipKeyWord(v.vm.ip), v.nh, VR_RT_ARP_PROXY_FLAG);
      }
      dp.vifFatFlow(v.idx, this.fatRules(v));
    }
    // Remote VMs' routes leak the same way, routed: their MPLS label on the peer's MPLS tunnel.
    for (const rr of this.remote.values()) {
      if (!this.leaks(rr)) continue;
      for (const other of partners.get(rr.network) ?? []) {
        const vrf = this.vrfOf(other.name);
        leaked.add(`${vrf}/${rr.ip}`);
        this.leakInto(dp, rr, vrf);
      }
    }
    for (const k of this.leaked) {
      if (leaked.has(k)) continue;
      const [vrf, ip] = k.split('/').map(Number);
      dp.rtDelete(vrf, ipKeyWord(ip));
    }
    this.leaked = leaked;
  }

  private leaked = new Set<string>();

  /** The networks each network's routes leak into (the policies connect them both ways). */
  private partners(): Map<string, Network[]> {
    const m = new Map<string, Network[]>();
    for (const a of this.topo.networks) m.set(a.name, this.topo.networks.filter((b) => this.connected(a, b)));
    return m;
  }

  /** Whether a remote route leaks into connected networks: a VM's, with its MPLS label (routed). */
  private leaks(rr: RemoteRoute | undefined): rr is RemoteRoute {
    return rr !== undefined && this.overlay !== undefined && rr.kind === 'vm' && rr.mplsLabel >= 0;
  }

  /** The leaked copy of remote route `rr` in `vrf`: its MPLS label on the peer's MPLS tunnel. */
  private leakInto(dp: DpProgrammer, rr: RemoteRoute, vrf: number): void {
    const ov = this.overlay as Overlay;
    dp.rtAdd(vrf, ipKeyWord(rr.ip), this.tunnel(dp, rr.peer, ov.l3EncapFor(rr.peer)), VR_RT_ARP_PROXY_FLAG, rr.mplsLabel, null);
  }

  /** Leak (or stop leaking) the remote routes that changed, as programRuntime does for all of them. */
  private leakRemote(dp: DpProgrammer, changed: RemoteRoute[]): void {
    if (!this.overlay || changed.length === 0) return;
    const partners = this.partners();
    for (const rr of changed) {
      const now = this.remote.get(rr.ip);
      for (const other of partners.get(rr.network) ?? []) {
        const vrf = this.vrfOf(other.name);
        const k = `${vrf}/${rr.ip}`;
        if (this.leaks(now)) {
          this.leakInto(dp, now, vrf);
          this.leaked.add(k);
        } else if (this.leaked.delete(k)) {
          dp.rtDelete(vrf, ipKeyWord(rr.ip));
        }
      }
    }
  }

  /** Fat-flow rules of a vif as the datapath holds them ((proto << 16) | port). */
  private fatRules(v: VifInfo | undefined): number[] {
    return v?.vm ? v.vm.fatFlow.map(([p, port]) => (p << 16) | port) : [];
  }

  private vnIndex(name: string | undefined): number {
    return name === undefined ? -1 : this.topo.networks.findIndex((n) => n.name === name);
  }

  /** What flow export needs: network and interface names (`vrouterIp`: the router-id). */
  exportEnv(vrouterIp: string): ExportEnv {
    const vmis = new Map<number, { vm: string; vmiUuid: string }>();
    for (const v of this.vifs) if (v.vm) vmis.set(v.idx, { vm: v.vm.name, vmiUuid: nameUuid(`virtual-machine-interface:${v.vm.name}`) });
    return {
      vnName: (k) => this.vnNames[k],
      vmInterface: (idx) => vmis.get(idx),
      vrouterIp,
      underlay: (sw, dw) => {
        const r = this.remote.get(keyIp(sw)) ?? this.remote.get(keyIp(dw));
        if (!r || !this.overlay) return undefined;
        // The tunnel the flow takes: the route's, or the MPLS one for a leaked (routed) destination.
        const sameVn = this.remote.get(keyIp(sw)) ? true : this.byIp.get(keyIp(sw))?.vif.host?.network === r.network;
        const encap: Encap = sameVn ? r.encap : this.overlay.l3EncapFor(r.peer);
        return { peer: r.peer.ipStr, proto: ENCAP_TUN[encap] };
      },
    };
  }

  /** The flow module's view: the plan of each new flow. */
  flowEnv(): FlowEnv {
    return { plan: (vif, k0, k1, k2, k3, proto, vrf) => this.plan(vif, k0, k1, k2, k3, proto, vrf) };
  }

  /**
   * Plan a new flow trapped on vif `vifIdx` with key (k0..k3, proto) in `vrf`: where it goes, whether
   * policy lets it, NAT, and the reverse entry's key as the datapath will key the replies.
   */
  plan(vifIdx: number, k0: number, k1: number, k2: number, k3: number, proto: number, vrf: number): FlowPlan {
    const sip = keyIp(k1);
    const dip = keyIp(k2);
    const sport = keySport(k0);
    const dport = keyDport(k0);
    const inVif = this.vif(vifIdx);
    // From the fabric, the source is a remote host: its own network (a route leaked into this VRF when
    // the policies connect them), as the module's source route says.
    const srcRem = vifIdx === VIF_FABRIC ? this.remote.get(sip) : undefined;
    const srcNet = srcRem ? this.network(srcRem.network) : this.topo.networks[vrf - 1];
    const dst = this.byIp.get(dip);
    const plan: FlowPlan = {
      action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: VR_FLOW_DR_NO_DST_ROUTE, srcNh: k3 & 0xffff,
      rev: null, short: false, srcVn: srcNet ? this.vnIndex(srcNet.name) : -1, dstVn: -1, rule: UUID_NOT_EVALUATED, log: false, vms: [],
    };
    if (inVif?.vmIndex !== undefined && inVif.vmIndex >= 0) plan.vms.push(inVif.vmIndex);
    if (!srcNet) {
      plan.short = true;
      return plan;
    }
    // Where the destination is, and the reverse's key NH / VRF and NAT.
    let revNh = k3 >>> 0;
    let revVrf = vrf;
    let revSip = k2 >>> 0; // reverse key's source = forward's destination (before NAT)
    let revDip = k1 >>> 0;
    let dstNet: Network | undefined;
    let dstVif: VifInfo | undefined;
    let fwdFlags = 0;
    let revFlags = 0;
    let natFwdDvrf = 0;
    let natRevDvrf = 0;
    const gw = this.gateways.get(dip);
    // The source as policy sees it: the VM's network, or for SNAT the floating IP's (§7.6: the forward
    // flow's policy uses the FIP's source route).
    let policyNet = srcNet;
    let policySip = sip;
    if (dst && !dst.fip && dst.vif.vrf === vrf && dst.vif.vrf === this.vrfOf(srcNet.name)) {
      // Within the network (or to the outside host from the public network).
      dstVif = dst.vif;
      dstNet = srcNet;
    } else if (dst && !dst.fip && inVif?.vm && dst.vif.type === VIF_TYPE_GATEWAY && dst.vif.host &&
        inVif.vm.floatingIps.some((f) => f.network === dst.vif.host?.network)) {
      // SNAT: a VM to the outside host of a router-external network where it has a floating IP.
      const pubNet = dst.vif.host.network;
      const fip = inVif.vm.floatingIps.find((f) => f.network === pubNet);
      if (fip) {
        dstVif = dst.vif;
        dstNet = this.network(pubNet);
        policyNet = dstNet;
        policySip = fip.ip;
        plan.srcVn = this.vnIndex(pubNet);
        revDip = ipKeyWord(fip.ip) >>> 0;
        revVrf = dst.vif.vrf;
        fwdFlags = VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_VRFT;
        natFwdDvrf = dst.vif.vrf;
        revFlags = VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_VRFT;
        natRevDvrf = vrf;
      }
    } else if (dst && !dst.fip && dst.vif.host && this.connected(srcNet, this.network(dst.vif.host.network))) {
      // Another network that the policies connect: the route was leaked into this VRF.
      dstVif = dst.vif;
      dstNet = this.network(dst.vif.host.network);
    } else if (dst && dst.fip && dst.vif.vm) {
      // DNAT: to a floating IP, from its router-external network; the reverse is keyed in the VM's VRF.
      const vm = dst.vif.vm;
      const fip = vm.floatingIps.find((f) => f.ip === dip);
      if (fip && this.vrfOf(fip.network) === vrf) {
        dstVif = dst.vif;
        dstNet = this.network(vm.network);
        revSip = ipKeyWord(vm.ip) >>> 0;
        revVrf = dst.vif.vrf;
        fwdFlags = VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_VRFT;
        natFwdDvrf = dst.vif.vrf;
        revFlags = VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_VRFT;
        natRevDvrf = vrf;
      }
    }
    // A host on another node or behind a VTEP: its network's VRF, or one the policies connect (leaked,
    // VMs only). The replies come from the fabric keyed with the local VM's own nexthop (k3), which is
    // also the key of a flow that arrived from the fabric.
    const rem = dst === undefined ? this.remote.get(dip) : undefined;
    if (rem && !dstVif) {
      if (rem.vrf === vrf) dstNet = srcNet;
      else if (rem.kind === 'vm' && this.connected(srcNet, this.network(rem.network))) dstNet = this.network(rem.network);
    }
    if (gw === srcNet && !dstVif) {
      // The network's own gateway: routed to the agent (a receive nexthop), allowed for ICMP and DNS.
      dstNet = srcNet;
    }
    if (!dstNet) {
      plan.short = true;
      return plan;
    }
    plan.dstVn = this.vnIndex(dstNet.name);
    if (dstVif?.vmIndex !== undefined && dstVif.vmIndex >= 0 && !plan.vms.includes(dstVif.vmIndex)) plan.vms.push(dstVif.vmIndex);
    if (dstVif) revNh = dstVif.nh;

    // Policy: the source network's ACL, and the destination network's (out_policy) for a local VM.
    const src = { ip: policySip, vn: policyNet.fqName, port: sport };
    const dstIpPost = fwdFlags & VR_FLOW_FLAG_DNAT && dstVif?.host ? dstVif.host.ip : dip;
    const dstEp = { ip: dstIpPost, vn: dstNet.fqName, port: dport };
    const v1 = this.policy.match(policyNet.fqName, proto, src, dstEp, policyNet.gateway);
    let verdict = v1;
    let reason = VR_FLOW_DR_POLICY;
    if (v1.pass && dstNet !== policyNet && dstVif?.vm) {
      const v2 = this.policy.match(dstNet.fqName, proto, src, dstEp, dstNet.gateway);
      if (!v2.pass) {
        verdict = v2;
        reason = VR_FLOW_DR_OUT_POLICY;
      }
    }
    plan.rule = verdict.uuid;
    plan.log = verdict.log;
    const nat = fwdFlags !== 0;
    if (verdict.pass) {
      plan.action = nat ? VR_FLOW_ACTION_NAT : VR_FLOW_ACTION_FORWARD;
      plan.flags = fwdFlags;
      plan.dvrf = natFwdDvrf;
      plan.dropReason = 0;
    } else {
      plan.action = VR_FLOW_ACTION_DROP;
      plan.dropReason = reason;
    }
    // The reverse key, as the datapath keys the replies: IPs swapped (NAT-translated), ports swapped
    // except for ICMP, its NH the replying interface's, reduced by that interface's fat-flow list.
    let rk0 = keyReversePorts(k0, proto);
    const dstRules = this.fatRules(dstVif);
    if (dstRules.length > 0 || this.fatRules(inVif).length > 0) {
      rk0 = fatFlowReduce(rk0, proto, dstRules, this.fatRules(inVif)) >>> 0;
    }
    // RPF (fe_src_nh_index): a flow from the fabric names its sender's tunnel, a flow to a remote host
    // has its reverse name the tunnel the replies come through.
    if (srcRem) plan.srcNh = srcRem.vrf === vrf ? srcRem.nh : this.overlay?.tunnelNh(srcRem.peer, this.overlay.l3EncapFor(srcRem.peer)) ?? srcRem.nh;
    plan.rev = {
      k0: rk0, k1: revSip, k2: revDip, k3: revNh, proto, vrf: revVrf,
      action: verdict.pass ? (nat ? VR_FLOW_ACTION_NAT : VR_FLOW_ACTION_FORWARD) : VR_FLOW_ACTION_DROP,
      flags: verdict.pass ? revFlags : 0,
      dvrf: verdict.pass ? natRevDvrf : 0,
      dropReason: verdict.pass ? 0 : plan.dropReason,
      srcNh: rem ? (rem.vrf === vrf || !this.overlay ? rem.nh : this.overlay.tunnelNh(rem.peer, this.overlay.l3EncapFor(rem.peer))) : revNh & 0xffff,
      vif: dstVif?.idx ?? -1,
    };
    return plan;
  }
}

/** NH_FLAG_TUNNEL_* of each encapsulation (the agent's NHKSyncEntry::Encode). */
const TUNNEL_FLAGS: Record<Encap, number> = { MPLSoGRE: NH_FLAG_TUNNEL_GRE, MPLSoUDP: NH_FLAG_TUNNEL_UDP_MPLS, VXLAN: NH_FLAG_TUNNEL_VXLAN };

/**
 * A stable UUID for a configuration object named `name` (the emulator has no API server to assign one):
 * 128 bits of FNV-1a over the name and three salts, shaped as a version-4 UUID.
 */
export function nameUuid(name: string): string {
  let h = '';
  for (const salt of ['a', 'b', 'c', 'd']) {
    let x = 0x811c9dc5;
    const s = `${salt}:${name}`;
    for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193);
    h += (x >>> 0).toString(16).padStart(8, '0');
  }
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
