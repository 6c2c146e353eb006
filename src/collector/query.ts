/**
 * `vrouter-emu collector query`: the stored records, filtered, and the sums of their (normalized)
 * deltas per flow and per virtual-network pair — what sampling with normalization makes unbiased
 * estimates of the real traffic.
 * @module
 */
import * as path from 'path';
import { UserError } from '../errors';
import { ipParse, ipString } from '../lib/ipv4';
import { LOG_FILE, Stored, scanLog } from './store';

export interface QueryOptions {
  /** A network name (fq-name, or the last part of one) that is the source or the destination. */
  vn?: string;
  /** An address that is the source or the destination. */
  ip?: string;
  /** Records received at or after (epoch ms). */
  since?: number;
  /**
   * Keep only the last `keep` matching records in `records` (the text report's --limit): memory for
   * them, not for the log. Default: all of them (--json).
   */
  keep?: number;
}

export interface FlowTotal {
  flowuuid: string;
  direction: 'ingress' | 'egress';
  sourcevn: string;
  destvn: string;
  sourceip: string;
  destip: string;
  protocol: number;
  sport: number;
  dport: number;
  /** Σ diff_bytes and Σ diff_packets: the estimate of the flow's traffic. */
  bytes: number;
  packets: number;
  /** The last cumulative counters reported (true totals as the agent read them). */
  lastBytes: number;
  lastPackets: number;
  records: number;
  teardown: boolean;
}

export interface VnPairTotal {
  sourcevn: string;
  destvn: string;
  direction: 'ingress' | 'egress';
  bytes: number;
  packets: number;
  flows: number;
}

export interface QueryResult {
  file: string;
  /** Records stored (of complete batches). */
  stored: number;
  /** Records that match the filters. */
  matched: number;
  /** The matching records, the last `keep` of them when QueryOptions.keep is set. */
  records: Stored[];
  /** Lines of the log that are no stored record: damaged, of an incomplete batch, a torn tail the collector has not cut yet. */
  skipped: number;
  flows: FlowTotal[];
  vnPairs: VnPairTotal[];
}

/** `--since`: an ISO date, epoch milliseconds, or an age like 90s, 10m, 2h, 1d. */
export function parseSince(s: string, now = Date.now()): number {
  const rel = /^(\d+)(s|m|h|d)$/.exec(s);
  if (rel) return now - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d{12,}$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new UserError(`--since ${s}: expected an ISO date (2026-11-22T10:00:00Z), epoch milliseconds, or an age like 90s, 10m, 2h, 1d`);
  return t;
}

const port = (p: number): number => p & 0xffff;

export function query(dir: string, o: QueryOptions): QueryResult {
  const file = path.join(dir, LOG_FILE);
  let ip = -1;
  if (o.ip !== undefined) {
    ip = ipParse(o.ip);
    if (ip < 0) throw new UserError(`--ip ${o.ip}: not an IPv4 address`);
  }
  const vnMatch = (vn: string): boolean => o.vn === undefined || vn === o.vn || vn.endsWith(`:${o.vn}`);
  const keep = o.keep ?? Infinity;
  // The last `keep` matching records: a ring once it is full.
  const ring: Stored[] = [];
  let matched = 0;
  const flows = new Map<string, FlowTotal>();
  const scan = scanLog(file, (batch) => {
    for (const st of batch) {
      const r = st.r;
      if (o.since !== undefined && st.t < o.since) continue;
      if (o.vn !== undefined && !vnMatch(r.sourcevn) && !vnMatch(r.destvn)) continue;
      if (ip >= 0 && r.sourceip >>> 0 !== ip && r.destip >>> 0 !== ip) continue;
      if (keep > 0) {
        if (ring.length < keep) ring.push(st);
        else ring[matched % keep] = st;
      }
      matched++;
      let f = flows.get(r.flowuuid);
      if (!f) {
        f = {
          flowuuid: r.flowuuid, direction: r.direction_ing ? 'ingress' : 'egress', sourcevn: r.sourcevn, destvn: r.destvn,
          sourceip: ipString(r.sourceip >>> 0), destip: ipString(r.destip >>> 0), protocol: r.protocol, sport: port(r.sport), dport: port(r.dport),
          bytes: 0, packets: 0, lastBytes: 0, lastPackets: 0, records: 0, teardown: false,
        };
        flows.set(r.flowuuid, f);
      }
      f.bytes += r.diff_bytes;
      f.packets += r.diff_packets;
      f.lastBytes = Math.max(f.lastBytes, r.bytes);
      f.lastPackets = Math.max(f.lastPackets, r.packets);
      f.records++;
      if (r.teardown_time !== undefined) f.teardown = true;
    }
  });
  // The ring in order: oldest first.
  const records = ring.length < keep ? ring : [...ring.slice(matched % keep), ...ring.slice(0, matched % keep)];
  const pairs = new Map<string, VnPairTotal>();
  for (const f of flows.values()) {
    const k = `${f.sourcevn}\u0000${f.destvn}\u0000${f.direction}`;
    let p = pairs.get(k);
    if (!p) {
      p = { sourcevn: f.sourcevn, destvn: f.destvn, direction: f.direction, bytes: 0, packets: 0, flows: 0 };
      pairs.set(k, p);
    }
    p.bytes += f.bytes;
    p.packets += f.packets;
    p.flows++;
  }
  return { file, stored: scan.records, matched, records, skipped: scan.skipped + scan.torn, flows: [...flows.values()], vnPairs: [...pairs.values()] };
}

/** The text report: the last `limit` records, then the sums. */
export function queryText(q: QueryResult, limit: number): string {
  const out: string[] = [];
  out.push(`${q.matched} of ${q.stored} records in ${q.file}`);
  if (q.skipped > 0) out.push(`(${q.skipped} lines of the log skipped: damaged, or of a batch that was not stored whole)`);
  const shown = limit > 0 ? q.records.slice(-limit) : [];
  if (shown.length > 0) {
    out.push('');
    out.push(`${'received'.padEnd(24)} ${'dir'.padEnd(3)} ${'source'.padEnd(21)} ${'destination'.padEnd(21)} proto ${'diff bytes'.padStart(10)} ${'pkts'.padStart(6)}  action   flow`);
    for (const st of shown) {
      const r = st.r;
      out.push(
        `${new Date(st.t).toISOString().padEnd(24)} ${(r.direction_ing ? 'in' : 'out').padEnd(3)} ${`${ipString(r.sourceip >>> 0)}:${port(r.sport)}`.padEnd(21)} ` +
        `${`${ipString(r.destip >>> 0)}:${port(r.dport)}`.padEnd(21)} ${String(r.protocol).padEnd(5)} ${String(r.diff_bytes).padStart(10)} ${String(r.diff_packets).padStart(6)}  ` +
        `${r.action.padEnd(8)} ${r.flowuuid}${r.teardown_time !== undefined ? ' (teardown)' : ''}`,
      );
    }
  }
  if (q.matched > shown.length) out.push(`… ${q.matched - shown.length} earlier records not shown (--limit N, or --json for all)`);
  out.push('');
  out.push('Per flow (sums of the exported deltas; "last" is the cumulative count the agent last read):');
  out.push(`${'flow'.padEnd(36)} ${'dir'.padEnd(7)} ${'source'.padEnd(21)} ${'destination'.padEnd(21)} proto ${'est. bytes'.padStart(12)} ${'est. pkts'.padStart(10)} ${'last bytes'.padStart(12)} records`);
  for (const f of q.flows) {
    out.push(
      `${f.flowuuid.padEnd(36)} ${f.direction.padEnd(7)} ${`${f.sourceip}:${f.sport}`.padEnd(21)} ${`${f.destip}:${f.dport}`.padEnd(21)} ${String(f.protocol).padEnd(5)} ` +
      `${String(f.bytes).padStart(12)} ${String(f.packets).padStart(10)} ${String(f.lastBytes).padStart(12)} ${f.records}${f.teardown ? ' (ended)' : ''}`,
    );
  }
  out.push('');
  out.push('Per virtual-network pair:');
  out.push(`${'source vn'.padEnd(32)} ${'destination vn'.padEnd(32)} ${'dir'.padEnd(7)} ${'est. bytes'.padStart(12)} ${'est. pkts'.padStart(10)} flows`);
  for (const p of q.vnPairs) {
    out.push(`${p.sourcevn.padEnd(32)} ${p.destvn.padEnd(32)} ${p.direction.padEnd(7)} ${String(p.bytes).padStart(12)} ${String(p.packets).padStart(10)} ${p.flows}`);
  }
  return out.join('\n') + '\n';
}
