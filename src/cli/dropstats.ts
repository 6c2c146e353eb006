/**
 * `dropstats`: the per-reason drop counters as R2.22's utils/dropstats.c prints them (reference §6):
 * each label padded to 30 columns, then the count, groups separated by a blank line, a blank line at
 * the end. The groups and labels are the tool's; the codes are VP_DROP_* (dp/defs.ts).
 * @module
 */
import {
  VP_DROP_ARP_NO_ROUTE,
  VP_DROP_ARP_NO_WHERE_TO_GO,
  VP_DROP_CKSUM_ERR,
  VP_DROP_DISCARD,
  VP_DROP_FLOW_ACTION_DROP,
  VP_DROP_FLOW_ACTION_INVALID,
  VP_DROP_FLOW_INVALID_PROTOCOL,
  VP_DROP_FLOW_NAT_NO_RFLOW,
  VP_DROP_FLOW_NO_MEMORY,
  VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED,
  VP_DROP_FLOW_TABLE_FULL,
  VP_DROP_FLOW_UNUSABLE,
  VP_DROP_FRAGMENTS,
  VP_DROP_FRAGMENT_QUEUE_FAIL,
  VP_DROP_GARP_FROM_VM,
  VP_DROP_INTERFACE_DROP,
  VP_DROP_INTERFACE_RX_DISCARD,
  VP_DROP_INTERFACE_TX_DISCARD,
  VP_DROP_INVALID_ARP,
  VP_DROP_INVALID_IF,
  VP_DROP_INVALID_NH,
  VP_DROP_INVALID_PACKET,
  VP_DROP_INVALID_PROTOCOL,
  VP_DROP_INVALID_SOURCE,
  VP_DROP_L2_NO_ROUTE,
  VP_DROP_MISC,
  VP_DROP_NOWHERE_TO_GO,
  VP_DROP_NO_MEMORY,
  VP_DROP_PULL,
  VP_DROP_TRAP_NO_IF,
  VP_DROP_TTL_EXCEEDED,
} from '../dp/defs';
import type { Out } from './flow-list';

/** [label, VP_DROP code] in print order; null separates groups. */
export const DROPSTATS_LINES: readonly ([string, number] | null)[] = [
  ['GARP', VP_DROP_GARP_FROM_VM],
  ['ARP no where to go', VP_DROP_ARP_NO_WHERE_TO_GO],
  ['Invalid ARPs', VP_DROP_INVALID_ARP],
  null,
  ['Invalid IF', VP_DROP_INVALID_IF],
  ['Trap No IF', VP_DROP_TRAP_NO_IF],
  ['IF TX Discard', VP_DROP_INTERFACE_TX_DISCARD],
  ['IF Drop', VP_DROP_INTERFACE_DROP],
  ['IF RX Discard', VP_DROP_INTERFACE_RX_DISCARD],
  null,
  ['Flow Unusable', VP_DROP_FLOW_UNUSABLE],
  ['Flow No Memory', VP_DROP_FLOW_NO_MEMORY],
  ['Flow Table Full', VP_DROP_FLOW_TABLE_FULL],
  ['Flow NAT no rflow', VP_DROP_FLOW_NAT_NO_RFLOW],
  ['Flow Action Drop', VP_DROP_FLOW_ACTION_DROP],
  ['Flow Action Invalid', VP_DROP_FLOW_ACTION_INVALID],
  ['Flow Invalid Protocol', VP_DROP_FLOW_INVALID_PROTOCOL],
  ['Flow Queue Limit Exceeded', VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED],
  null,
  ['Discards', VP_DROP_DISCARD],
  ['TTL Exceeded', VP_DROP_TTL_EXCEEDED],
  ['Mcast Clone Fail', 30],
  ['Cloned Original', 38],
  null,
  ['Invalid NH', VP_DROP_INVALID_NH],
  ['Invalid Label', 22],
  ['Invalid Protocol', VP_DROP_INVALID_PROTOCOL],
  ['Rewrite Fail', 32],
  ['Invalid Mcast Source', 25],
  null,
  ['Push Fails', 19],
  ['Pull Fails', VP_DROP_PULL],
  ['Duplicated', 18],
  ['Head Alloc Fails', 26],
  ['Head Space Reserve Fails', 27],
  ['PCOW fails', 28],
  ['Invalid Packets', VP_DROP_INVALID_PACKET],
  null,
  ['Misc', VP_DROP_MISC],
  ['Nowhere to go', VP_DROP_NOWHERE_TO_GO],
  ['Checksum errors', VP_DROP_CKSUM_ERR],
  ['No Fmd', 37],
  ['Invalid VNID', 39],
  ['Fragment errors', VP_DROP_FRAGMENTS],
  ['Invalid Source', VP_DROP_INVALID_SOURCE],
  ['Jumbo Mcast Pkt with DF Bit', 29],
  ['ARP No Route', VP_DROP_ARP_NO_ROUTE],
  ['No L2 Route', VP_DROP_L2_NO_ROUTE],
  ['Memory Failures', VP_DROP_NO_MEMORY],
  ['Fragment Queueing Failures', VP_DROP_FRAGMENT_QUEUE_FAIL],
];

/** The dropstats label of a VP_DROP code. */
export function dropLabel(code: number): string {
  for (const l of DROPSTATS_LINES) if (l && l[1] === code) return l[0];
  return `drop reason ${code}`;
}

/** One counter line: label padded to 30 columns, then the value. */
export function dropstatsLine(label: string, value: number): string {
  return label.padEnd(30) + String(value) + '\n';
}

/** The full `dropstats` output from the counters (indexed by VP_DROP code). */
export function dropstats(drops: ArrayLike<number>, out: Out): void {
  for (const l of DROPSTATS_LINES) out(l ? dropstatsLine(l[0], drops[l[1]]) : '\n');
  out('\n');
}
