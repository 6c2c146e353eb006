/**
 * `vrouter-emu bgp`: a node's BGP speaker as `gobgp neighbor` and `gobgp global rib` show theirs — the
 * sessions (state, time in it, routes received / accepted / advertised), then the routes this node
 * sends and those it receives (EVPN in gobgp's bracket notation, inet-vpn as RD:prefix), the route
 * target and network of each, and how many were installed or refused (with the reason).
 * @module
 */
import type { BgpStatus, RouteRow } from '../agent/bgp/bgp-routes';

function hms(s: number): string {
  const d = Math.floor(s / 86400);
  const t = `${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return d > 0 ? `${d}d ${t}` : t;
}

/** gobgp's short state names (`gobgp neighbor`). */
const SHORT: Record<string, string> = { ESTABLISHED: 'Establ', ACTIVE: 'Active', IDLE: 'Idle', CONNECT: 'Connect', OPENSENT: 'Sent', OPENCONFIRM: 'Confirm' };

export function routeText(r: RouteRow): string {
  if (r.type === '2') {
    const [mac, ip] = r.prefix.split(' ');
    return `[type:macadv][rd:${r.rd}][etag:0][mac:${mac}][ip:${ip}]`;
  }
  if (r.type === '3') return `[type:multicast][rd:${r.rd}][etag:0][ip:${r.prefix}]`;
  return `${r.rd}:${r.prefix}`;
}

function routes(title: string, rows: RouteRow[], out: (s: string) => void): void {
  out(`${title} (${rows.length}):\n`);
  if (rows.length === 0) return;
  const w = Math.max(...rows.map((r) => routeText(r).length), 7);
  out(`   ${'Network'.padEnd(w)}  ${'Labels'.padEnd(10)} ${'Next Hop'.padEnd(16)} ${'Route target'.padEnd(22)} VN\n`);
  for (const r of rows) {
    out(`${r.stale ? 'S>' : '*>'} ${routeText(r).padEnd(w)}  ${`[${r.label}]`.padEnd(10)} ${r.nexthop.padEnd(16)} ${r.rt.padEnd(22)} ${r.network}\n`);
  }
}

export function bgpShow(st: BgpStatus, out: (s: string) => void): void {
  out(`BGP speaker of ${st.node}: AS ${st.as}, router-id ${st.routerId} (gobgpd)\n`);
  out(`${'Peer'.padEnd(16)} ${'AS'.padStart(6)}  ${'Up/Down'.padStart(8)} ${'State'.padEnd(8)}|${'#Received'.padStart(10)} ${'Accepted'.padStart(9)} ${'Advertised'.padStart(10)}\n`);
  for (const p of st.peers) {
    out(`${p.address.padEnd(16)} ${String(p.as).padStart(6)}  ${(p.since > 0 ? hms(p.since) : 'never').padStart(8)} ${(SHORT[p.state] ?? p.state).padEnd(8)}|${String(p.received).padStart(10)} ${String(p.accepted).padStart(9)} ${String(p.advertised).padStart(10)}\n`);
  }
  if (st.sent.length > 0 || st.received.length > 0 || st.learned === 0) {
    routes('Routes sent', st.sent, out);
    routes('Routes received', st.received, out);
  } else {
    out(`Routes received: ${st.learned}\n`);
  }
  const refused = Object.entries(st.rejected).filter(([, n]) => (n ?? 0) > 0).map(([k, n]) => `${k} ${n}`);
  out(`Remote routes installed: ${st.installed}; refused: ${refused.length > 0 ? refused.join(', ') : 'none'}\n`);
}
