/**
 * What the agent has programmed into the datapath — nexthops, the MPLS label map, the VXLAN table,
 * routes and bridge entries — kept beside the requests, for the tools that list them (`nh --list`,
 * `mpls --dump`, `vxlan --dump`, `rt --dump`). The real tools ask the module over netlink; here the
 * tables live in the datapath thread, so the agent keeps this copy of what it asked for, and the
 * datapath reports the one thing it learns on its own: the MAC of each tunnel's destination (ARP).
 * @module
 */
import type { DpProgrammer } from './dp-channel';
import { NH_DISCARD } from '../dp/nexthop';
import { macString } from '../dp/interface';

export interface MirroredNh {
  id: number;
  type: number;
  vif: number;
  dmac: Uint8Array;
  flags: number;
  sip: number;
  dip: number;
  vrf: number;
}

export interface MirroredRoute {
  nh: number;
  flags: number;
  label: number;
  mac: Uint8Array | null;
}

export interface MirroredBridge {
  mac: Uint8Array;
  vif: number;
  nh: number;
  label: number;
}

/** A DpProgrammer that forwards to `inner` and keeps what it was told. */
export class DpMirror implements DpProgrammer {
  readonly nhs = new Map<number, MirroredNh>([[0, { id: 0, type: NH_DISCARD, vif: -1, dmac: new Uint8Array(6), flags: 0, sip: 0, dip: 0, vrf: 0 }]]);
  readonly labels = new Map<number, number>();
  readonly vxlan = new Map<number, number>();
  /** Per VRF: the /32's key word → route. */
  readonly routes = new Map<number, Map<number, MirroredRoute>>();
  /** Per VRF: the MAC (as text) → entry. */
  readonly bridge = new Map<number, Map<string, MirroredBridge>>();
  /** Tunnel nexthops whose destination MAC the datapath has learned. */
  readonly resolvedNhs = new Set<number>();

  constructor(private readonly inner: DpProgrammer) {}

  vifAdd(idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array, io: number, ip?: number): void {
    this.inner.vifAdd(idx, fd, type, vrf, nh, flags, mtu, mac, io, ip);
  }

  subVifAdd(idx: number, parent: number, vlan: number, ovlan: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array): void {
    this.inner.subVifAdd(idx, parent, vlan, ovlan, vrf, nh, flags, mtu, mac);
  }

  nhAdd(id: number, type: number, vif: number, dmac: Uint8Array, flags = 0, sip = 0, dip = 0, vrf = 0): void {
    this.nhs.set(id, { id, type, vif, dmac: Uint8Array.from(dmac), flags, sip, dip, vrf });
    this.inner.nhAdd(id, type, vif, dmac, flags, sip, dip, vrf);
  }

  rtAdd(vrf: number, ipWord: number, nh: number, flags: number, label = -1, mac: Uint8Array | null = null): void {
    let m = this.routes.get(vrf);
    if (!m) this.routes.set(vrf, (m = new Map()));
    m.set(ipWord | 0, { nh, flags, label, mac: mac ? Uint8Array.from(mac) : null });
    this.inner.rtAdd(vrf, ipWord, nh, flags, label, mac);
  }

  rtDelete(vrf: number, ipWord: number): void {
    this.routes.get(vrf)?.delete(ipWord | 0);
    this.inner.rtDelete(vrf, ipWord);
  }

  bridgeAdd(vrf: number, mac: Uint8Array, vif: number, nh = -1, label = -1): void {
    let m = this.bridge.get(vrf);
    if (!m) this.bridge.set(vrf, (m = new Map()));
    if (vif < 0 && nh < 0) m.delete(macString(mac));
    else m.set(macString(mac), { mac: Uint8Array.from(mac), vif, nh, label });
    this.inner.bridgeAdd(vrf, mac, vif, nh, label);
  }

  vifFatFlow(idx: number, rules: number[]): void {
    this.inner.vifFatFlow(idx, rules);
  }

  mplsAdd(label: number, nh: number): void {
    if (nh < 0) this.labels.delete(label);
    else this.labels.set(label, nh);
    this.inner.mplsAdd(label, nh);
  }

  vxlanAdd(vni: number, nh: number): void {
    if (nh < 0) this.vxlan.delete(vni);
    else this.vxlan.set(vni, nh);
    this.inner.vxlanAdd(vni, nh);
  }

  /** The datapath learned tunnel `id`'s destination MAC (the agent's ARP entry in 2.22). */
  resolved(id: number, mac: Uint8Array): void {
    const nh = this.nhs.get(id);
    if (!nh) return;
    nh.dmac = Uint8Array.from(mac);
    this.resolvedNhs.add(id);
  }
}
