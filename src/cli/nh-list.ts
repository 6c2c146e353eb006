/**
 * The R2.2x tools that show the forwarding tables: `nh --list` (utils/nh.c, the R2.0–2.2x layout),
 * `mpls --dump` (utils/mpls.c), `vxlan --dump` (utils/vxlan.c) and `rt --dump VRF [--family bridge]`
 * (utils/rt.c as R2.2x printed it), from what the agent programmed (agent/dp-mirror.ts).
 * @module
 */
import type { DpMirror, MirroredNh } from '../agent/dp-mirror';
import {
  NH_DISCARD, NH_ENCAP, NH_FLAG_POLICY_ENABLED, NH_FLAG_TUNNEL_GRE, NH_FLAG_TUNNEL_UDP_MPLS, NH_FLAG_TUNNEL_VXLAN, NH_RCV, NH_TUNNEL,
  NH_VRF_TRANSLATE, VR_RT_ARP_FLOOD_FLAG, VR_RT_ARP_PROXY_FLAG, VR_RT_ARP_TRAP_FLAG,
} from '../dp/nexthop';
import { VR_VIF_MAC } from '../dp/defs';
import { macParse } from '../dp/interface';
import { keyIp } from '../dp/proto-ip';
import { ipString } from '../lib/ipv4';

type Out = (s: string) => void;

// utils/nh.c's names, indexed by type ("Receieve" as that version spelled it).
const NH_TYPE_NAMES = ['Dead', 'Receieve', 'Encap', 'Tunnel', 'Resolve', 'Drop', 'Composite', 'Vrf_Translate'];

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0') + ' ').join('');
}

/** The nh.c flag string: each set flag followed by ", " ("None" for none). */
function nhFlags(nh: MirroredNh, valid: boolean): string {
  let s = '';
  let f = nh.flags;
  if (valid) s += 'Valid, ';
  if (nh.type === NH_ENCAP && nh.vif >= 0) f |= NH_FLAG_POLICY_ENABLED; // the agent's VM interface nexthops are policy-enabled
  if (f & NH_FLAG_POLICY_ENABLED) s += 'Policy, ';
  if (nh.type === NH_TUNNEL && f & NH_FLAG_TUNNEL_GRE) s += 'MPLSoGRE, ';
  if (nh.type === NH_TUNNEL && f & NH_FLAG_TUNNEL_UDP_MPLS) s += 'MPLSoUDP, ';
  if (f & NH_FLAG_TUNNEL_VXLAN) s += 'Vxlan, ';
  return s || 'None';
}

/** `nh --list`: every nexthop, ascending id. `vifMac(idx)`: a vif's MAC (the rewrite's source). */
export function nhList(m: DpMirror, vifMac: (idx: number) => Uint8Array | undefined, out: Out): void {
  const refs = new Map<number, number>();
  const ref = (id: number): void => {
    refs.set(id, (refs.get(id) ?? 0) + 1);
  };
  for (const r of m.routes.values()) for (const e of r.values()) ref(e.nh);
  for (const nh of m.labels.values()) ref(nh);
  for (const nh of m.vxlan.values()) ref(nh);
  for (const b of m.bridge.values()) for (const e of b.values()) if (e.nh >= 0) ref(e.nh);
  const vr = macParse(VR_VIF_MAC) as Uint8Array;
  for (const nh of [...m.nhs.values()].sort((a, b) => a.id - b.id)) {
    const valid = nh.type !== NH_TUNNEL || m.resolvedNhs.has(nh.id);
    const fmly = nh.type === NH_VRF_TRANSLATE ? 'AF_BRIDGE' : 'AF_INET';
    const flags = nhFlags(nh, valid);
    out(`Id:${String(nh.id).padStart(3, '0')}  Type:${(NH_TYPE_NAMES[nh.type] ?? 'Invalid').padEnd(8)}  Fmly:${fmly.padStart(8)}  Flags:${flags}  Rid:0  Ref_cnt:${(refs.get(nh.id) ?? 0) + 1}\n`);
    // The 14-byte rewrite: destination MAC, source MAC, IPv4 ethertype.
    const data = new Uint8Array(14);
    data.set(nh.dmac, 0);
    data.set((nh.type === NH_TUNNEL ? vifMac(nh.vif) : vr) ?? new Uint8Array(6), 6);
    data[12] = 0x08;
    if (nh.type === NH_TUNNEL) {
      out(`\tOif:${nh.vif} Len:14 Flags ${flags} Data:${hex(data)}\n\tVrf:0  Sip:${ipString(nh.sip)}  Dip:${ipString(nh.dip)}\n`);
    } else if (nh.type === NH_ENCAP) {
      out(`\tEncapFmly:0806 Oif:${nh.vif} Len:14 Data:${hex(data)}\n`);
    } else if (nh.type === NH_RCV) {
      out(`\tOif:${nh.vif}\n`);
    } else if (nh.type === NH_VRF_TRANSLATE) {
      out(`\tVrf:${nh.vrf}\n`);
    } else if (nh.type !== NH_DISCARD) {
      out('\n');
    }
    out('\n');
  }
}

/** `mpls --dump`: the incoming label map. */
export function mplsDump(m: DpMirror, out: Out): void {
  out('MPLS Input Label Map\n\n   Label    NextHop\n-------------------\n');
  for (const [label, nh] of [...m.labels].sort((a, b) => a[0] - b[0])) out(`${String(label & 0xffff).padStart(8)}    ${String(nh & 0xffff).padStart(6)}\n`);
}

/** `vxlan --dump`: the VXLAN table. */
export function vxlanDump(m: DpMirror, out: Out): void {
  out('VXLAN Table\n\n VNID    NextHop\n----------------\n');
  for (const [vni, nh] of [...m.vxlan].sort((a, b) => a[0] - b[0])) out(`${String(vni).padStart(7)}    ${nh}\n`);
}

/** A MAC as rt.c prints it (%x:%x:…, no zero padding). */
function macX(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16)).join(':');
}

/** `rt --dump VRF` (inet4 /32s) or `--family bridge` (the bridge table). */
export function rtDump(m: DpMirror, vrf: number, bridge: boolean, out: Out): void {
  if (bridge) {
    out(`Kernel L2 Bridge table 0/${vrf}\n\nFlags: L=Label Valid, Df=DHCP flood\n\n`);
    out(`${'Index'.padEnd(10)}${'DestMac'.padEnd(22)}${'Flags'.padEnd(11)}${'Label/VNID'.padEnd(14)}Nexthop\n`);
    let k = 0;
    for (const e of m.bridge.get(vrf)?.values() ?? []) {
      const label = e.label >= 0 ? String(e.label) : '-';
      out(`${String(k++).padEnd(10)}${macX(e.mac).padEnd(22)}${(e.label >= 0 ? 'L' : '').padEnd(11)}${label.padEnd(14)}${e.nh >= 0 ? e.nh : '-'}\n`);
    }
    return;
  }
  out(`Vrouter inet4 routing table 0/${vrf}/unicast\nFlags: L=Label Valid, P=Proxy ARP, T=Trap ARP, F=Flood ARP\n\n`);
  out(`${'Destination'.padEnd(22)}${'PPL'.padEnd(11)}${'Flags'.padEnd(13)}${'Label'.padEnd(14)}${'Nexthop'.padEnd(11)}Stitched MAC(Index)\n`);
  const rows = [...(m.routes.get(vrf) ?? new Map()).entries()].sort((a, b) => keyIp(a[0]) - keyIp(b[0]));
  for (const [w, r] of rows) {
    const flags = (r.label >= 0 ? 'L' : '') + (r.flags & VR_RT_ARP_PROXY_FLAG ? 'P' : '') + (r.flags & VR_RT_ARP_TRAP_FLAG ? 'T' : '') + (r.flags & VR_RT_ARP_FLOOD_FLAG ? 'F' : '');
    out(`${`${ipString(keyIp(w))}/32`.padEnd(22)}${'32'.padEnd(11)}${(flags || '-').padEnd(13)}${(r.label >= 0 ? String(r.label) : '-').padEnd(14)}${String(r.nh).padEnd(11)}${r.mac ? macX(r.mac) : '-'}\n`);
  }
}
