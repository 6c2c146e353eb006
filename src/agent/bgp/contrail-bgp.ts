/**
 * The routes a Contrail compute node stands for in BGP, and how routes from peers are read back: pure
 * functions between this node's VMs / networks and gobgp API paths (gobgp-api.ts's message shapes).
 *
 * What a VM gives (as the 2.22 control node advertised for an agent's routes; docs/facts-bgp-2.22.md):
 * - an EVPN type-2 MAC/IP route: RD `<fabric ip>:<vrf>`, ESI 0, ethernet tag 0, the VM's MAC and IP,
 *   the label field = the network's VNI (RFC 8365: the VNI rides in the label field), the network's
 *   route target, the encapsulations the node supports as tunnel-encapsulation extended communities,
 *   and the node's router MAC (vhost0's);
 * - an inet-vpn (L3VPN, VPNv4) route: the same RD, `<ip>/32`, the VM's MPLS label, the route target and
 *   the encapsulation communities;
 * and per network with a VM on the node, an EVPN type-3 inclusive-multicast route (originator = the
 * fabric IP, PMSI tunnel ingress replication with the VNI).
 *
 * Routes from peers are checked (VNI and label ranges, next hop on the fabric subnet, a route target of
 * one of the networks) and turned into `Learned` records; what fails gives a reason, counted by the caller.
 * @module
 */
import { ipParse } from '../../lib/ipv4';
import type { Encap, Network } from '../../lib/topology-types';
import { AnyOf, FAMILY_EVPN, FAMILY_VPNV4, Msg, pack, unpack } from './gobgp-api';

/** The first route-target number the schema transformer allocates to a virtual network (BGP_RTGT_MIN_ID). */
export const RT_FIRST = 8000000;
/** Contrail's default autonomous system (global-system-config autonomous_system). */
export const DEFAULT_AS = 64512;
/** The largest MPLS label (20 bits); labels below 16 are reserved. */
export const MPLS_LABEL_MAX = 0xfffff;
export const MPLS_LABEL_MIN = 16;
export const VNI_MAX = 0xffffff;

/**
 * BGP tunnel-encapsulation extended community tunnel types (RFC 5512 §4.5 / the IANA registry) of each
 * encapsulation, as Contrail's control node tags routes with the encapsulations the agent reported.
 */
export const ENCAP_TUNNEL_TYPE: Record<Encap, number> = { MPLSoGRE: 11, VXLAN: 8, MPLSoUDP: 13 };
/** The other codes peers use for the same encapsulations (MPLS-in-GRE is 11 in RFC 5512's registry). */
const TUNNEL_TYPE_ENCAP = new Map<number, Encap>([[2, 'MPLSoGRE'], [11, 'MPLSoGRE'], [8, 'VXLAN'], [13, 'MPLSoUDP']]);

/** PMSI tunnel type 6: ingress replication (RFC 6514 §5). */
export const PMSI_INGRESS_REPLICATION = 6;

/** The route target of network number `k` (0-based, in the topology's order): target:AS:(RT_FIRST + k + 1). */
export function routeTarget(as: number, k: number): { asn: number; local: number; text: string } {
  const local = RT_FIRST + k + 1;
  return { asn: as, local, text: `target:${as}:${local}` };
}

/** What this node announces for one VM. */
export interface LocalVm {
  ip: string;
  mac: string;
  vrf: number;
  vni: number;
  label: number;
  /** Index of its network in the topology (its route target). */
  vn: number;
}

export interface SpeakerIdentity {
  as: number;
  /** The fabric IP: router-id, next hop, RD administrator. */
  ip: string;
  routerMac: string;
  encaps: Encap[];
}

function rd(admin: string, assigned: number): Msg {
  return pack('RouteDistinguisherIPAddress', { admin, assigned });
}

function communities(me: SpeakerIdentity, vn: number, evpn: boolean): Msg {
  const rt = routeTarget(me.as, vn);
  const c: Msg[] = [pack('TwoOctetAsSpecificExtended', { is_transitive: true, sub_type: 0x02, asn: rt.asn, local_admin: rt.local })];
  for (const e of me.encaps) c.push(pack('EncapExtended', { tunnel_type: ENCAP_TUNNEL_TYPE[e] }));
  if (evpn) c.push(pack('RouterMacExtended', { mac: me.routerMac }));
  return pack('ExtendedCommunitiesAttribute', { communities: c });
}

function attrs(family: Msg, nlri: Msg, me: SpeakerIdentity, extra: Msg[]): Msg[] {
  return [
    pack('OriginAttribute', { origin: 0 }),
    pack('MpReachNLRIAttribute', { family, next_hops: [me.ip], nlris: [nlri] }),
    pack('LocalPrefAttribute', { local_pref: 100 }),
    ...extra,
  ];
}

/** The EVPN type-2 path of a VM. */
export function macIpPath(me: SpeakerIdentity, vm: LocalVm): Msg {
  const nlri = pack('EVPNMACIPAdvertisementRoute', {
    rd: rd(me.ip, vm.vrf), esi: { type: 0, value: Buffer.alloc(9) }, ethernet_tag: 0, mac_address: vm.mac, ip_address: vm.ip, labels: [vm.vni],
  });
  return { family: FAMILY_EVPN, nlri, pattrs: attrs(FAMILY_EVPN, nlri, me, [communities(me, vm.vn, true)]) };
}

/** The inet-vpn path of a VM. */
export function vpnPath(me: SpeakerIdentity, vm: LocalVm): Msg {
  const nlri = pack('LabeledVPNIPAddressPrefix', { labels: [vm.label], rd: rd(me.ip, vm.vrf), prefix_len: 32, prefix: vm.ip });
  return { family: FAMILY_VPNV4, nlri, pattrs: attrs(FAMILY_VPNV4, nlri, me, [communities(me, vm.vn, false)]) };
}

/** The EVPN type-3 path of a network with VMs on this node. */
export function imetPath(me: SpeakerIdentity, vrf: number, vni: number, vn: number): Msg {
  const nlri = pack('EVPNInclusiveMulticastEthernetTagRoute', { rd: rd(me.ip, vrf), ethernet_tag: 0, ip_address: me.ip });
  const pmsi = pack('PmsiTunnelAttribute', { flags: 0, type: PMSI_INGRESS_REPLICATION, label: vni, id: Buffer.from(me.ip.split('.').map(Number)) });
  return { family: FAMILY_EVPN, nlri, pattrs: attrs(FAMILY_EVPN, nlri, me, [pmsi, communities({ ...me, encaps: ['VXLAN'] }, vn, false)]) };
}

/** A route from a peer, checked. */
export interface Learned {
  kind: 'mac-ip' | 'imet' | 'vpn';
  /** The identity of the path: the peer it came from and its NLRI (withdrawals carry the same). */
  key: string;
  /** Index of the network its route target names. */
  vn: number;
  nexthop: number;
  nexthopStr: string;
  ip: number;
  ipStr: string;
  mac: string;
  /** The VNI (EVPN) or MPLS label (inet-vpn). */
  label: number;
  encaps: Encap[];
  rd: string;
  neighbor: string;
  stale: boolean;
}

/** Why a path from a peer was not installed (the counters' labels). */
export type Reject = 'bad-vni' | 'bad-label' | 'nexthop-outside-fabric' | 'unknown-route-target' | 'malformed' | 'mac-only' | 'unsupported';

function rdText(a: AnyOf | undefined): string {
  if (!a) return '?';
  const v = a.value;
  if (a.type === 'RouteDistinguisherIPAddress') return `${v.admin}:${v.assigned}`;
  return `${v.admin}:${v.assigned}`;
}

/** The path attributes this module reads, each unpacked once (the others are left packed). */
const WANTED = new Set(['MpReachNLRIAttribute', 'NextHopAttribute', 'ExtendedCommunitiesAttribute', 'PmsiTunnelAttribute']);

function attrsOf(pattrs: Msg[]): Map<string, Msg> {
  const m = new Map<string, Msg>();
  for (const p of pattrs ?? []) {
    const url = typeof p?.type_url === 'string' ? p.type_url : '';
    if (!WANTED.has(url.slice(url.lastIndexOf('.') + 1))) continue;
    const u = unpack(p);
    if (u) m.set(u.type, u.value);
  }
  return m;
}

export interface Fabric {
  net: number;
  mask: number;
  /** Route target (local administrator, with the AS) → network index. */
  rts: Map<string, number>;
  /** The VNI of each network (0: none). */
  vnis: number[];
}

export function fabricOf(fabricIp: number, prefixLen: number, as: number, networks: Network[], vni: (n: Network) => number): Fabric {
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  const rts = new Map<string, number>();
  networks.forEach((_, k) => rts.set(`${as}:${routeTarget(as, k).local}`, k));
  return { net: (fabricIp & mask) >>> 0, mask, rts, vnis: networks.map(vni) };
}

/** Read one path of a WatchEvent / ListPath answer. @returns the route, or why it is refused. */
export function readPath(p: Msg, fab: Fabric): Learned | Reject {
  const n = unpack(p.nlri);
  if (!n) return 'malformed';
  const pattrs: Msg[] = p.pattrs ?? [];
  const at = p.is_withdraw ? new Map<string, Msg>() : attrsOf(pattrs);
  const mp = at.get('MpReachNLRIAttribute');
  const nhStr: string = mp?.next_hops?.[0] ?? at.get('NextHopAttribute')?.next_hop ?? '';
  const ext = at.get('ExtendedCommunitiesAttribute');
  const encaps: Encap[] = [];
  let vn = -1;
  for (const c of ext?.communities ?? []) {
    const u = unpack(c);
    if (!u) continue;
    if (u.type === 'EncapExtended') {
      const e = TUNNEL_TYPE_ENCAP.get(u.value.tunnel_type);
      if (e && !encaps.includes(e)) encaps.push(e);
    } else if ((u.type === 'TwoOctetAsSpecificExtended' || u.type === 'FourOctetAsSpecificExtended') && u.value.sub_type === 0x02 && vn < 0) {
      vn = fab.rts.get(`${u.value.asn}:${u.value.local_admin}`) ?? -1;
    }
  }
  const base = { neighbor: String(p.neighbor_ip ?? ''), stale: Boolean(p.stale), encaps };
  let kind: Learned['kind'];
  let ipStr = '';
  let mac = '';
  let label = 0;
  let key: string;
  const v = n.value;
  const rdS = rdText(unpack(v.rd));
  if (n.type === 'EVPNMACIPAdvertisementRoute') {
    kind = 'mac-ip';
    ipStr = v.ip_address ?? '';
    mac = String(v.mac_address ?? '').toLowerCase();
    label = v.labels?.[0] ?? 0;
    key = `2/${rdS}/${v.ethernet_tag}/${mac}/${ipStr}`;
  } else if (n.type === 'EVPNInclusiveMulticastEthernetTagRoute') {
    kind = 'imet';
    ipStr = v.ip_address ?? '';
    const pmsi = at.get('PmsiTunnelAttribute');
    label = pmsi?.label ?? 0;
    key = `3/${rdS}/${v.ethernet_tag}/${ipStr}`;
  } else if (n.type === 'LabeledVPNIPAddressPrefix') {
    kind = 'vpn';
    ipStr = v.prefix ?? '';
    label = v.labels?.[0] ?? 0;
    key = `v/${rdS}/${ipStr}/${v.prefix_len}`;
    if (v.prefix_len !== 32) return 'unsupported';
  } else {
    return 'unsupported';
  }
  // Each peer's path is held apart: with two reflectors, one's withdrawal leaves the other's path.
  key = `${base.neighbor} ${key}`;
  if (p.is_withdraw) {
    // A withdrawal names the NLRI only; the caller drops what it holds under the key.
    return { kind, key, vn, nexthop: 0, nexthopStr: nhStr, ip: 0, ipStr, mac, label, rd: rdS, ...base };
  }
  if (kind === 'mac-ip' && (ipStr === '' || ipStr === '0.0.0.0' || ipStr === '<nil>')) return 'mac-only';
  if (vn < 0) return 'unknown-route-target';
  const nexthop = ipParse(nhStr);
  if (nexthop < 0 || ((nexthop & fab.mask) >>> 0) !== fab.net) return 'nexthop-outside-fabric';
  const ip = kind === 'imet' ? 0 : ipParse(ipStr);
  if (ip < 0) return 'malformed';
  if (kind === 'vpn') {
    if (!(label >= MPLS_LABEL_MIN && label <= MPLS_LABEL_MAX)) return 'bad-label';
  } else if (!(label >= 1 && label <= VNI_MAX) || label !== fab.vnis[vn]) {
    return 'bad-vni';
  }
  return { kind, key, vn, nexthop, nexthopStr: nhStr, ip, ipStr, mac, label, rd: rdS, ...base };
}
