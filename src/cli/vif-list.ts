/**
 * `vif --list`: the vRouter interface table as R2.22's utils/vif.c prints it (reference §7.4): the
 * header and flag legend, then per vif the `vif0/N  OS: name` line and four lines indented 12.
 * @module
 */
import { ipKeyWord } from '../agent/topology';
import { VIFS_RX_BYTES, VIFS_RX_ERRORS, VIFS_RX_PACKETS, VIFS_TX_BYTES, VIFS_TX_ERRORS, VIFS_TX_PACKETS, VIFS_LEN, VIF_TYPE_NAMES, VIF_TYPE_PHYSICAL, macString } from '../dp/interface';
import type { VifInfo } from '../agent/compute-node';
import type { Out } from './flow-list';

/** [symbol, name] in the order of the VIF_FLAG_* bits. */
const FLAGS: [string, string][] = [
  ['P', 'Policy'], ['X', 'Cross Connect'], ['S', 'Service Chain'], ['Mr', 'Receive Mirror'],
  ['Mt', 'Transmit Mirror'], ['Tc', 'Transmit Checksum Offload'], ['L3', 'Layer 3'], ['L2', 'Layer 2'],
  ['D', 'DHCP'], ['Vp', 'Vhost Physical'], ['Pr', 'Promiscuous'], ['Vnt', 'Native Vlan Tagged'],
  ['Mnp', 'No MAC Proxy'], ['Dpdk', 'DPDK PMD Interface'], ['Rfl', 'Receive Filtering Offload'], ['Mon', 'Interface is Monitored'],
  ['Uuf', 'Unknown Unicast Flood'],
];

export function vifFlagString(flags: number): string {
  let s = '';
  FLAGS.forEach(([sym], bit) => {
    if (flags & (1 << bit)) s += sym;
  });
  return s || 'NULL';
}

export function vifList(vifs: VifInfo[], stats: Float64Array, out: Out): void {
  out('Vrouter Interface Table\n\n');
  let legend = 'Flags: ';
  FLAGS.forEach(([sym, name], k) => {
    legend += `${sym}=${name}`;
    if (k === FLAGS.length - 1) legend += '\n';
    else if (k % 4 === 3) legend += '\n       ';
    else legend += ', ';
  });
  out(legend + '\n');
  const ind = ' '.repeat(12);
  for (const v of [...vifs].sort((a, b) => a.idx - b.idx)) {
    const s = v.idx * VIFS_LEN;
    // A physical vif shows its link (utils/vif.c: when the speed is known); IPaddr is vifr_ip printed as
    // the hex of the 32-bit value in memory (network order read little-endian), 0 when unset.
    const link = v.type === VIF_TYPE_PHYSICAL && v.speed !== undefined && v.speed >= 0
      ? ` (Speed ${v.speed}${v.duplex !== undefined && v.duplex >= 0 ? `, Duplex ${v.duplex}` : ''})` : '';
    const ipHex = v.ip ? (ipKeyWord(v.ip) >>> 0).toString(16) : '0';
    // A VLAN sub-interface shows its outer/inner VLAN, its bridge index (0: no source MAC) and its
    // parent (2.x vif.c); it has no OS interface of its own, so its OS name is NULL.
    const vlan = v.parent !== undefined ? ` Vlan(o/i)(,S): ${v.ovlan}/${v.vlan} Bridge Index: 0 Parent:vif0/${v.parent}` : '';
    out(`vif0/${v.idx}`.padEnd(12) + `OS: ${v.up && v.parent === undefined ? v.os : 'NULL'}${link}${vlan}\n`);
    out(`${ind}Type:${VIF_TYPE_NAMES[v.type] ?? 'Invalid'} HWaddr:${macString(v.mac)} IPaddr:${ipHex}\n`);
    out(`${ind}Vrf:${v.vrf} Flags:${vifFlagString(v.flags)} MTU:${v.mtu} Ref:${v.vm ? 2 : 1}\n`);
    out(`${ind}RX packets:${stats[s + VIFS_RX_PACKETS]}  bytes:${stats[s + VIFS_RX_BYTES]} errors:${stats[s + VIFS_RX_ERRORS]}\n`);
    out(`${ind}TX packets:${stats[s + VIFS_TX_PACKETS]}  bytes:${stats[s + VIFS_TX_BYTES]} errors:${stats[s + VIFS_TX_ERRORS]}\n\n`);
  }
}
