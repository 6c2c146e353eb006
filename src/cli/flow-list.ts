/**
 * `flow -l`: the R2.22 listing of the flow table (utils/flow.c; reference §7.1). Reads a table view (the
 * live shared table or a snapshot) and writes text through `out`, line by line, so that a full 512K
 * table streams instead of piling up in one string.
 * @module
 */
import {
  IPPROTO_TCP,
  VR_FLOW_ACTION_DROP,
  VR_FLOW_ACTION_NAT,
  VR_FLOW_DR_NAMES,
  VR_FLOW_FLAG_ACTIVE,
  VR_FLOW_FLAG_DELETE_MARKED,
  VR_FLOW_FLAG_DNAT,
  VR_FLOW_FLAG_DPAT,
  VR_FLOW_FLAG_EVICTED,
  VR_FLOW_FLAG_EVICT_CANDIDATE,
  VR_FLOW_FLAG_LINK_LOCAL,
  VR_FLOW_FLAG_MIRROR,
  VR_FLOW_FLAG_MODIFIED,
  VR_FLOW_FLAG_NEW_FLOW,
  VR_FLOW_FLAG_SNAT,
  VR_FLOW_FLAG_SPAT,
  VR_FLOW_FLAG_VRFT,
  VR_FLOW_TCP_DEAD,
  VR_FLOW_TCP_ESTABLISHED,
  VR_FLOW_TCP_ESTABLISHED_R,
  VR_FLOW_TCP_FIN,
  VR_FLOW_TCP_FIN_R,
  VR_FLOW_TCP_HALF_CLOSE,
  VR_FLOW_TCP_RST,
  VR_FLOW_TCP_SYN,
  VR_FLOW_TCP_SYN_R,
  VR_MAX_MIRROR_INDICES,
  flowActionLetter,
} from '../dp/defs';
import {
  FE_BYTES,
  FE_PACKETS,
  FE_SIZE,
  FTI_ACTION_COUNT,
  FTI_ADDED,
  FTI_CPUS,
  FTI_HOLD_COUNT,
  FTI_OFLOWS,
  FTI_OFLOW_USED,
  FlowTable,
  feAction,
  feDropReason,
  feDvrf,
  feEcmp,
  feFlags,
  feKeyWord,
  feMirror,
  feProto,
  feRflow,
  feSecMirror,
  feSrcNh,
  feTcpFlags,
  feUdpSport,
  feVrf,
  flowCreatedCount,
  htNext,
} from '../dp/flow-table';
import { keyDport, keyIpString, keySport } from '../dp/proto-ip';

export type Out = (s: string) => void;

const padL = (s: string | number, w: number): string => String(s).padStart(w);
const padR = (s: string | number, w: number): string => String(s).padEnd(w);

/** The header block: table size, entries, per-CPU created counts, legend, column titles. */
export function flowListHeader(t: FlowTable, out: Out): void {
  const info = t.info;
  const created = flowCreatedCount(t);
  const perCpu: string[] = [];
  for (let c = 0; c < info[FTI_CPUS]; c++) perCpu.push(String(info[FTI_HOLD_COUNT + c]));
  out(`Flow table(size ${t.total * FE_SIZE}, entries ${t.total})\n\n`);
  out(`Entries: Created ${created} Added ${info[FTI_ADDED]} Processed ${info[FTI_ACTION_COUNT]} Used Overflow entries ${info[FTI_OFLOW_USED]}\n`);
  out(`(Created Flows/CPU: ${perCpu.join(' ')})(oflows ${info[FTI_OFLOWS]})\n\n`);
  out('Action:F=Forward, D=Drop N=NAT(S=SNAT, D=DNAT, Ps=SPAT, Pd=DPAT, L=Link Local Port)\n');
  out(' Other:K(nh)=Key_Nexthop, S(nh)=RPF_Nexthop, M=Mirror Index\n');
  out(' Flags:E=Evicted, Ec=Evict Candidate, N=New Flow, M=Modified Dm=Delete Marked\n');
  out('TCP(r=reverse):S=SYN, F=FIN, R=RST, C=HalfClose, E=Established, D=Dead\n\n');
  out(' Index              Source:Port           Destination:Port    \tProto(V)\n');
  out('-'.repeat(73) + '\n');
}

/** Letters of set bits, in the given order. */
function letters(v: number, table: readonly (readonly [number, string])[]): string {
  let s = '';
  for (const [bit, l] of table) if (v & bit) s += l;
  return s;
}

const NAT_LETTERS = [
  [VR_FLOW_FLAG_SNAT, 'S'], [VR_FLOW_FLAG_SPAT, 'Ps'], [VR_FLOW_FLAG_DNAT, 'D'], [VR_FLOW_FLAG_DPAT, 'Pd'],
  [VR_FLOW_FLAG_LINK_LOCAL, 'L'],
] as const;
const FLAG_LETTERS = [
  [VR_FLOW_FLAG_EVICTED, 'E'], [VR_FLOW_FLAG_EVICT_CANDIDATE, 'Ec'], [VR_FLOW_FLAG_NEW_FLOW, 'N'],
  [VR_FLOW_FLAG_MODIFIED, 'M'], [VR_FLOW_FLAG_DELETE_MARKED, 'Dm'],
] as const;
const TCP_LETTERS = [
  [VR_FLOW_TCP_SYN, 'S'], [VR_FLOW_TCP_SYN_R, 'Sr'], [VR_FLOW_TCP_ESTABLISHED, 'E'], [VR_FLOW_TCP_ESTABLISHED_R, 'Er'],
  [VR_FLOW_TCP_FIN, 'F'], [VR_FLOW_TCP_FIN_R, 'Fr'], [VR_FLOW_TCP_RST, 'R'], [VR_FLOW_TCP_HALF_CLOSE, 'C'],
  [VR_FLOW_TCP_DEAD, 'D'],
] as const;

/** TCP state letters of a flow as `flow -l` prints them (e.g. "SSrEEr"). */
export function tcpLetters(tcpFlags: number): string {
  return letters(tcpFlags, TCP_LETTERS);
}

/** The two lines of one entry. */
export function flowListEntry(t: FlowTable, i: number): string {
  const f = feFlags(t, i);
  const rf = feRflow(t, i);
  const k0 = feKeyWord(t, i, 0);
  const proto = feProto(t, i);
  let s = padL(i, 6);
  s += rf >= 0 ? '<=>' + padR(rf, 6) : ' '.repeat(9);
  s += '   ' + padL(keyIpString(feKeyWord(t, i, 1)), 12) + ':' + padR(keySport(k0), 5) + '    ';
  s += padL(keyIpString(feKeyWord(t, i, 2)), 16) + ':' + padR(keyDport(k0), 5) + '    ';
  s += `${proto} (${feVrf(t, i)}`;
  if (f & VR_FLOW_FLAG_VRFT) s += `->${feDvrf(t, i)}`;
  s += ')\n';

  const a = feAction(t, i);
  s += `\t(K(nh):${feKeyWord(t, i, 3)}, Action:${flowActionLetter(a)}`;
  if (a === VR_FLOW_ACTION_NAT) s += `(${letters(f, NAT_LETTERS)})`;
  if (a === VR_FLOW_ACTION_DROP) {
    const dr = feDropReason(t, i);
    s += `(${dr < VR_FLOW_DR_NAMES.length ? VR_FLOW_DR_NAMES[dr] : dr})`;
  }
  s += `, Flags:${letters(f, FLAG_LETTERS)}, `;
  if (proto === IPPROTO_TCP) s += `TCP:${tcpLetters(feTcpFlags(t, i))}, `;
  const e = feEcmp(t, i);
  if (e >= 0) s += `E:${e}, `;
  // The 32-bit counters, as R2.22's flow -l prints them (the overflow bytes are not joined in).
  s += `S(nh):${feSrcNh(t, i)}, Stats:${t.u32[(i * FE_SIZE + FE_PACKETS) >> 2]}/${t.u32[(i * FE_SIZE + FE_BYTES) >> 2]}, `;
  if (f & VR_FLOW_FLAG_MIRROR) {
    const m = feMirror(t, i);
    const m2 = feSecMirror(t, i);
    s += 'M:' + (m < VR_MAX_MIRROR_INDICES ? m : '') + (m2 < VR_MAX_MIRROR_INDICES ? `, ${m2}` : '') + ', ';
  }
  s += `SPort:${feUdpSport(t, i)})\n`;
  return s;
}

/** The overflow chain hanging off main slot `i`, or '' when it has none. */
function flowListChain(t: FlowTable, i: number, active: boolean): string {
  let o = htNext(t, i);
  if (o < 0) return '';
  let s = active ? '     |->[' : padL(i, 6) + '->[';
  let col = s.length;
  let first = true;
  while (o >= 0) {
    const item = (first ? '' : ' ') + o;
    if (col + item.length > 65) {
      s += '\n\t';
      col = 8;
    }
    s += item;
    col += item.length;
    first = false;
    o = htNext(t, o);
  }
  return s + ']\n';
}

export interface FlowListOptions {
  /** --show-evicted: list EVICTED entries too. */
  showEvicted?: boolean;
}

/**
 * The listing in chunks of `slice` table indices: the header first, then every active entry in index
 * order with its bucket's overflow chain. A server yields between chunks so that a 512K table never
 * holds up the thread that formats it.
 */
export function* flowListChunks(t: FlowTable, opts: FlowListOptions = {}, slice = 4096): Generator<string> {
  const head: string[] = [];
  flowListHeader(t, (s) => head.push(s));
  yield head.join('');
  for (let from = 0; from < t.total; from += slice) {
    const parts: string[] = [];
    const to = Math.min(t.total, from + slice);
    for (let i = from; i < to; i++) {
      const f = feFlags(t, i);
      const shown = (f & VR_FLOW_FLAG_ACTIVE) !== 0 && (opts.showEvicted || (f & VR_FLOW_FLAG_EVICTED) === 0);
      const chain = i < t.entries ? flowListChain(t, i, shown) : '';
      if (!shown && chain === '') continue;
      parts.push((shown ? flowListEntry(t, i) : '') + chain + '\n');
    }
    if (parts.length > 0) yield parts.join('');
  }
}

/** The whole listing, written through `out`. */
export function flowList(t: FlowTable, out: Out, opts: FlowListOptions = {}): void {
  for (const chunk of flowListChunks(t, opts)) out(chunk);
}
