/**
 * The overlay of a cluster as one compute node's agent sees it: its peers on the fabric (the other
 * compute nodes, and the VXLAN VTEPs of bare-metal hosts), the encapsulation it sends to each, and the
 * remote routes — every VM on another node and every bare-metal host — with their labels and VNIs.
 *
 * In 2.22 the agent learns remote routes from the control node over XMPP; here they come from a
 * RouteSource. `StaticRoutes` derives them from the topology file every node reads, deterministically,
 * so both ends agree without a control plane; a BGP-fed source can replace it behind the same interface.
 *
 * The derivations (all from the file, in the file's order):
 * - MPLS labels: the agent's MplsTable hands out labels from 16 (kStartLabel); a VM's L3 label is
 *   16 + its position among its node's VMs.
 * - VNIs (vxlan_network_identifier_mode): automatic → the network id, here the network's position + 1
 *   (its VRF); configured → the network's vxlan_network_identifier.
 * - The encapsulation towards a peer: the first of encapsulation_priorities the peer supports, else
 *   DEFAULT.tunnel_type (vrouter-agent.md §6). VXLAN carries bridged traffic: a remote VM reached over
 *   VXLAN gets a stitched route (ARP is answered with its own MAC) and a bridge entry behind the tunnel.
 *   Routed traffic to another network needs a label: it takes the first MPLS encapsulation of the
 *   priorities the peer supports (MPLSoGRE if none), as L3VPN routes did in 2.22.
 * - Nexthop ids: tunnels from NH_FIRST_TUNNEL (4 per peer, by TUN_*), the VXLAN table's VRF nexthops
 *   from NH_FIRST_VXLAN_VRF + VRF.
 * @module
 */
import { TUN_MPLSOGRE, TUN_MPLSOUDP, TUN_VXLAN } from '../dp/fabric';
import type { Encap, NodeSpec } from '../lib/topology-types';
import type { Topology } from './topology';
import { ipString } from '../lib/ipv4';

/** MplsTable::kStartLabel: labels below 16 are reserved. */
export const MPLS_FIRST_LABEL = 16;
export const NH_FIRST_TUNNEL = 5000;
export const NH_FIRST_VXLAN_VRF = 9000;

export const ENCAP_TUN: Record<Encap, number> = { MPLSoGRE: TUN_MPLSOGRE, MPLSoUDP: TUN_MPLSOUDP, VXLAN: TUN_VXLAN };

/** A tunnel endpoint on the fabric. */
export interface Peer {
  name: string;
  kind: 'node' | 'vtep';
  ip: number;
  ipStr: string;
  /** What it decapsulates. */
  encaps: Encap[];
  /** Position among the peers (its tunnel nexthops). */
  index: number;
}

/** A host on another node or behind a VTEP, and how this node reaches it. */
export interface RemoteRoute {
  name: string;
  kind: 'vm' | 'bare-metal';
  ip: number;
  ipStr: string;
  mac: Uint8Array;
  network: string;
  /** Its network's VRF on this node. */
  vrf: number;
  peer: Peer;
  /** Bridged over VXLAN (stitched route + bridge entry), else routed with an MPLS label. */
  l2: boolean;
  encap: Encap;
  /** The tunnel nexthop, and the label (MPLS label or VNI) it carries. */
  nh: number;
  label: number;
  /** Its MPLS label, for routes leaked into connected networks (routed, so MPLS); −1 for bare metal. */
  mplsLabel: number;
}

/** Where a route source delivers: adds and removals, then commit() once per batch (routes leaked between networks follow). */
export interface RouteSink {
  add(r: RemoteRoute): void;
  remove(r: RemoteRoute): void;
  commit(): void;
}

/** Where remote routes come from (the control node's XMPP in 2.22; the topology file, or BGP). */
export interface RouteSource {
  readonly name: string;
  /** Deliver the routes; a source that connects somewhere resolves once it runs. */
  start(sink: RouteSink): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** This node's part of a cluster topology. */
export class Overlay {
  readonly node: NodeSpec;
  readonly peers: Peer[] = [];

  constructor(readonly topo: Topology, nodeName: string, readonly tunnelType: Encap) {
    const node = topo.nodes.find((n) => n.name === nodeName);
    if (!node) throw new Error(`node ${nodeName} is not in the topology`);
    this.node = node;
    for (const n of topo.nodes) {
      if (n !== node) this.peers.push({ name: n.name, kind: 'node', ip: n.fabricIp, ipStr: n.fabricIpStr, encaps: n.encapsulations, index: this.peers.length });
    }
    for (const b of topo.bareMetal) {
      if (!this.peers.some((p) => p.ip === b.vtepIp)) {
        this.peers.push({ name: `vtep-${b.name}`, kind: 'vtep', ip: b.vtepIp, ipStr: b.vtepIpStr, encaps: ['VXLAN'], index: this.peers.length });
      }
    }
  }

  /** The VRF of a network (as ComputeNode numbers them: position + 1). */
  vrfOf(network: string): number {
    return this.topo.networks.findIndex((n) => n.name === network) + 1;
  }

  /** The VNI of a network, 0 when it has none (configured mode without vxlan_network_identifier). */
  vni(network: string): number {
    const k = this.topo.networks.findIndex((n) => n.name === network);
    if (k < 0) return 0;
    return this.topo.global.vxlanMode === 'configured' ? this.topo.networks[k].vxlanId : k + 1;
  }

  /** The L3 label of VM `name` on its node, −1 if it is not a VM of the topology. */
  label(name: string): number {
    const vm = this.topo.vms.find((v) => v.name === name);
    if (!vm) return -1;
    return MPLS_FIRST_LABEL + this.topo.vms.filter((v) => v.node === vm.node).indexOf(vm);
  }

  /** The encapsulation this node sends to `peer` with (a VTEP decapsulates VXLAN only). */
  encapFor(peer: Peer): Encap {
    if (peer.kind === 'vtep' && !peer.encaps.some((e) => e !== 'VXLAN')) return 'VXLAN';
    return this.topo.global.encapsulationPriorities.find((e) => peer.encaps.includes(e)) ?? this.tunnelType;
  }

  /** The encapsulation of routed (labelled) traffic to `peer`: the first MPLS one it supports. */
  l3EncapFor(peer: Peer): Encap {
    const first = this.encapFor(peer);
    if (first !== 'VXLAN') return first;
    return this.topo.global.encapsulationPriorities.find((e) => e !== 'VXLAN' && peer.encaps.includes(e)) ??
      (this.tunnelType !== 'VXLAN' ? this.tunnelType : 'MPLSoGRE');
  }

  /** The id of the tunnel nexthop to `peer` with `encap`. */
  tunnelNh(peer: Peer, encap: Encap): number {
    return NH_FIRST_TUNNEL + peer.index * 4 + ENCAP_TUN[encap];
  }

  /** Every tunnel nexthop this node needs: per peer, its encapsulation and (for VMs' leaked routes) its MPLS one. */
  tunnels(): { peer: Peer; encap: Encap; nh: number }[] {
    const out: { peer: Peer; encap: Encap; nh: number }[] = [];
    for (const p of this.peers) {
      const encs = new Set<Encap>([this.encapFor(p)]);
      if (p.kind === 'node') encs.add(this.l3EncapFor(p));
      for (const e of encs) out.push({ peer: p, encap: e, nh: this.tunnelNh(p, e) });
    }
    return out;
  }

  /** The peer that owns fabric address `ip`. */
  peerAt(ip: number): Peer | undefined {
    return this.peers.find((p) => p.ip === ip);
  }

  /**
   * The peer at fabric address `ip`, made when a learned route names one the topology does not (a VTEP
   * known only from BGP). `encaps`, when the route lists its tunnel encapsulations, become what the peer
   * is known to decapsulate.
   */
  peerFor(ip: number, encaps: Encap[]): Peer {
    let p = this.peerAt(ip);
    if (!p) {
      p = { name: `vtep-${ipString(ip)}`, kind: 'vtep', ip, ipStr: ipString(ip), encaps: ['VXLAN'], index: this.peers.length };
      this.peers.push(p);
    }
    if (encaps.length > 0) p.encaps = [...encaps];
    return p;
  }
}

/** Remote routes derived from the topology file (no control plane: every node reads the same file). */
export class StaticRoutes implements RouteSource {
  readonly name = 'topology';
  private routes: RemoteRoute[] = [];

  constructor(private readonly ov: Overlay) {}

  /** The routes this source gives (for the tests and the banner). */
  derive(): RemoteRoute[] {
    const ov = this.ov;
    const out: RemoteRoute[] = [];
    for (const vm of ov.topo.vms) {
      if (vm.node === ov.node.name) continue;
      const peer = ov.peers.find((p) => p.kind === 'node' && p.name === vm.node);
      if (!peer) continue;
      const encap = ov.encapFor(peer);
      const l2 = encap === 'VXLAN' && ov.vni(vm.network) > 0;
      const use = l2 ? encap : ov.l3EncapFor(peer);
      const mplsLabel = ov.label(vm.name);
      out.push({
        name: vm.name, kind: 'vm', ip: vm.ip, ipStr: vm.ipStr, mac: vm.mac, network: vm.network, vrf: ov.vrfOf(vm.network), peer, l2,
        encap: use, nh: ov.tunnelNh(peer, use), label: l2 ? ov.vni(vm.network) : mplsLabel, mplsLabel,
      });
    }
    for (const b of ov.topo.bareMetal) {
      const peer = ov.peerAt(b.vtepIp);
      const vni = ov.vni(b.network);
      if (!peer || vni === 0) continue;
      out.push({
        name: b.name, kind: 'bare-metal', ip: b.ip, ipStr: b.ipStr, mac: b.mac, network: b.network, vrf: ov.vrfOf(b.network), peer,
        l2: true, encap: 'VXLAN', nh: ov.tunnelNh(peer, 'VXLAN'), label: vni, mplsLabel: -1,
      });
    }
    return out;
  }

  start(sink: RouteSink): void {
    this.routes = this.derive();
    for (const r of this.routes) sink.add(r);
    sink.commit();
  }

  stop(): void {
    this.routes = [];
  }
}

/**
 * The part of a cluster topology that runs on node `name`: its VMs and outside hosts (the others are
 * remote routes), everything else shared. Without nodes, the topology itself.
 */
export function localTopology(topo: Topology, name: string | undefined): Topology {
  if (topo.nodes.length === 0 || name === undefined) return topo;
  return { ...topo, vms: topo.vms.filter((v) => v.node === name), outside: topo.outside.filter((h) => h.node === name) };
}
