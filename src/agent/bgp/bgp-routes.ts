/**
 * Remote routes learned over BGP (`route_source: "bgp"`): the RouteSource that replaces the topology's
 * derivation. In 2.22 the agent speaks XMPP to two control nodes, which speak BGP for it; here each
 * node's agent runs its own gobgpd as that BGP speaker (router-id and next hop = the node's fabric
 * address, no listening port), configures it over its gRPC API, and peers it with the route
 * reflector(s) in the underlay.
 *
 * Why a gobgpd per node rather than the agent peering with the reflector itself: the agent would then
 * need a BGP implementation of its own (a home-made control plane); gobgpd's API lets the agent add and
 * withdraw its paths and watch what its peers send and the sessions, as the agent's XMPP channel does.
 *
 * The speaker keeps no table of the routes it learns: an import policy rejects every iBGP path, and the
 * agent reads what the reflectors sent from gobgpd's Adj-RIB-In (WatchEvent, pre-policy). The agent is
 * what chooses and installs routes (as 2.22's agent chooses among its XMPP peers' routes), so a RIB in
 * the speaker was only a cost — and a large one: gobgpd 3.10 checks every EVPN MAC/IP path it imports
 * for MAC mobility against its whole EVPN table (TableManager.handleMacMobility), O(table) per route
 * (bench:bgp, BENCHMARKS.md). A rejected path never reaches that check.
 *
 * What goes out (contrail-bgp.ts): per local VM an EVPN type-2 MAC/IP and an inet-vpn route, per
 * network an EVPN type-3; withdrawn when the VM goes. What comes in: best paths, checked, merged per
 * (network, IP) into the overlay's RemoteRoutes — over VXLAN when the encapsulation chosen towards the
 * peer is VXLAN (the MAC/IP route's VNI), else routed with the inet-vpn label — and given to the sink
 * in batches (one commit per burst of updates).
 *
 * A session that drops: the agent keeps the routes learned over it (stale) for up to
 * `graceful_restart_time` seconds, so established flows keep forwarding — 2.22's headless mode — and
 * withdraws those the reflector does not re-advertise once it is back (peerState says how). gobgpd's
 * own graceful restart is off in the speaker: gobgpd 3.10 crashes with it (see start()).
 * @module
 */
import * as fs from 'fs';
import { ChildProcess, spawn } from 'child_process';
import { UserError } from '../../errors';
import type { BgpSpec, Encap } from '../../lib/topology-types';
import { macParse, macString } from '../../dp/interface';
import type { Overlay, RemoteRoute, RouteSink, RouteSource } from '../overlay';
import { FAMILY_EVPN, FAMILY_VPNV4, GobgpClient, Msg, POLICY_IMPORT, ROUTE_ACCEPT, ROUTE_REJECT, ROUTE_TYPE_INTERNAL, SESSION_ESTABLISHED, SESSION_STATES, TABLE_GLOBAL, WATCH_ADJIN } from './gobgp-api';
import { Fabric, Learned, LocalVm, Reject, SpeakerIdentity, fabricOf, imetPath, macIpPath, readPath, routeTarget, vpnPath } from './contrail-bgp';

/** A VM of this node as the route source sees it (ComputeNode's VifInfo has these). */
export interface LocalVif {
  idx: number;
  vm?: { name: string; ipStr: string; macStr: string; network: string };
}

/** One peer session as `vrouter-emu bgp` shows it. */
export interface PeerRow {
  address: string;
  as: number;
  state: string;
  /** Seconds since the last state change (up or down). */
  since: number;
  received: number;
  accepted: number;
  advertised: number;
}

export interface RouteRow {
  family: 'evpn' | 'inet-vpn';
  type: string;
  rd: string;
  prefix: string;
  label: number;
  nexthop: string;
  rt: string;
  network: string;
  stale: boolean;
}

export interface BgpStatus {
  node: string;
  as: number;
  routerId: string;
  peers: PeerRow[];
  sent: RouteRow[];
  received: RouteRow[];
  /** Paths held from peers (stale ones too), remote routes installed now, and installs so far (adds and changes). */
  learned: number;
  installed: number;
  installs: number;
  /** When the installed routes last changed, ms since the epoch (0: never). */
  lastChange: number;
  rejected: Partial<Record<Reject, number>>;
}

/** After a session comes back, how long the reflector has to re-advertise a stale route before it goes. */
export const STALE_FLUSH_MS = 10_000;

/** How long `start` waits for the first session with a reflector. */
export const SESSION_WAIT_MS = 20_000;

/** The gobgpd binary (Debian's gobgpd package). */
export const GOBGPD = '/usr/bin/gobgpd';

/** How the node reaches this source: the VMs it has now, and a log line. */
export interface BgpHost {
  vifs(): LocalVif[];
  log(line: string): void;
}

export class BgpRoutes implements RouteSource {
  readonly name = 'bgp';
  private proc: ChildProcess | undefined;
  private client: GobgpClient | undefined;
  private watcher: { cancel(): void } | undefined;
  private sink: RouteSink | undefined;
  private readonly me: SpeakerIdentity;
  private readonly fab: Fabric;
  /** Paths from peers, by NLRI identity. */
  private readonly learned = new Map<string, Learned>();
  /** The learned routes of each (network, IP) (`${vn}/${ip}` → NLRI keys), and those changed since the last flush. */
  private readonly groups = new Map<string, Set<string>>();
  private readonly dirty = new Set<string>();
  /** What the sink has, by (network, IP), with the signature it was added with. */
  private readonly installed = new Map<string, { r: RemoteRoute; sig: string }>();
  /** The paths announced for each local vif, and the networks' type-3 paths by VRF. */
  private readonly announced = new Map<number, { vrf: number; uuids: Buffer[] }>();
  private readonly imet = new Map<number, Buffer>();
  readonly rejected: Partial<Record<Reject, number>> = {};
  private flushQueued = false;
  private stopping = false;
  /** Counters for the bench: routes installed (added or changed) in total. */
  installs = 0;
  /** Sessions by neighbour address: state, since when, when it last went down (0: never). */
  private readonly peers = new Map<string, { state: string; since: number; downAt: number }>();
  /** When the datapath's remote routes last changed (ms since the epoch, for the bench). */
  private lastChange = 0;

  constructor(
    private readonly ov: Overlay,
    private readonly spec: BgpSpec,
    private readonly host: BgpHost,
    private readonly pidFile: string,
    routerMac: Uint8Array,
  ) {
    const node = ov.node;
    this.me = { as: spec.as, ip: node.fabricIpStr, routerMac: macString(routerMac), encaps: node.encapsulations };
    this.fab = fabricOf(node.fabricIp, node.prefixLen, spec.as, ov.topo.networks, (n) => ov.vni(n.name));
  }

  /** Start gobgpd, configure it, announce the VMs and watch what is learned. */
  async start(sink: RouteSink): Promise<void> {
    this.sink = sink;
    if (!fs.existsSync(GOBGPD)) throw new UserError(`route_source "bgp": ${GOBGPD} is missing; install it with: apt-get install -y gobgpd`);
    const target = `127.0.0.1:${this.spec.apiPort}`;
    killLeftover(this.pidFile, target);
    const probe = new GobgpClient(target);
    const taken = await probe.ready(300).then(() => true, () => false);
    probe.close();
    if (taken) throw new UserError(`bgp.api_port ${this.spec.apiPort}: something answers on ${target} already (another gobgpd?); stop it, or give the topology another bgp.api_port`);
    // gobgpd's own log goes next to its pid file (SOCKET.gobgpd.log).
    const logFile = this.pidFile.replace(/\.pid$/, '.log');
    const out = fs.openSync(logFile, 'a', 0o600);
    let proc: ChildProcess;
    try {
      proc = spawn(GOBGPD, ['--api-hosts', target, '--pprof-disable', '-p', '-l', 'info'], { stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out);
    }
    this.proc = proc;
    proc.once('exit', (code, sig) => {
      if (!this.stopping) this.host.log(`vrouter-emu: gobgpd (pid ${proc.pid}) exited (${sig ?? `status ${code}`}): the node learns no more routes; see ${logFile}`);
    });
    if (proc.pid) fs.writeFileSync(this.pidFile, `${proc.pid}\n`);
    const c = new GobgpClient(target);
    this.client = c;
    try {
      await c.ready(10_000);
    } catch {
      throw new UserError(`gobgpd did not answer on ${target} within 10 s; see ${logFile}`);
    }
    await c.call('StartBgp', { global: { asn: this.spec.as, router_id: this.me.ip, listen_port: -1, listen_addresses: [this.me.ip] } });
    // Paths from the reflectors stay in the Adj-RIB-In, where the agent reads them; the agent's own
    // (local) paths are imported as before and advertised.
    await c.call('AddPolicy', { policy: { name: 'vrouter-agent-learns', statements: [{ name: 'ibgp-to-agent', conditions: { route_type: ROUTE_TYPE_INTERNAL }, actions: { route_action: ROUTE_REJECT } }] } });
    await c.call('AddPolicyAssignment', { assignment: { name: 'global', direction: POLICY_IMPORT, policies: [{ name: 'vrouter-agent-learns' }], default_action: ROUTE_ACCEPT } });
    for (const rr of this.spec.reflectorsStr) {
      await c.call('AddPeer', {
        peer: {
          conf: { neighbor_address: rr, peer_asn: this.spec.as, description: 'route reflector' },
          timers: { config: { hold_time: this.spec.holdTime, keepalive_interval: Math.max(1, Math.floor(this.spec.holdTime / 3)), connect_retry: 1, idle_hold_time_after_reset: 1 } },
          transport: { local_address: this.me.ip },
          // No graceful restart in the speaker: gobgpd 3.10 dereferences a nil pointer (handleMacMobility) when it
          // marks EVPN MAC/IP paths stale while it has local ones. The agent keeps the routes itself (below).
          graceful_restart: { enabled: false },
          afi_safis: [FAMILY_EVPN, FAMILY_VPNV4].map((family) => ({ config: { family, enabled: true } })),
        },
      });
    }
    this.watcher = c.watch('WatchEvent', { peer: {}, table: { filters: [{ type: WATCH_ADJIN, init: true }] } }, (ev) => this.onEvent(ev), (e) => {
      if (!this.stopping) this.host.log(`vrouter-emu: gobgpd's event stream ended${e ? ` (${e.message})` : ''}; routes stay as they are`);
    });
    for (const v of this.host.vifs()) await this.vmChanged(v, true);
    await this.waitSession();
  }

  /** Wait (up to SESSION_WAIT_MS) for a session with a reflector. @throws UserError naming the reflectors and their state. */
  private async waitSession(): Promise<void> {
    const c = this.client as GobgpClient;
    const end = Date.now() + SESSION_WAIT_MS;
    let states: string[] = [];
    for (;;) {
      const peers = await c.list('ListPeer', { address: '' });
      states = peers.map((r) => `${r.peer?.conf?.neighbor_address} ${SESSION_STATES[r.peer?.state?.session_state ?? 0] ?? '?'}`);
      if (established(peers).size > 0) return;
      if (Date.now() > end || this.proc?.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new UserError(`bgp.reflectors: no BGP session within ${SESSION_WAIT_MS / 1000} s (${states.join(', ') || 'gobgpd gone'}): is a route reflector running on that address and reachable over the fabric from ${this.me.ip}? (vrouter-emu testbed runs one for route_source "bgp")`);
  }

  /**
   * Announce (`up`) or withdraw a local VM's routes, and its network's type-3 when it is the first or
   * last VM of the network here. Paths are withdrawn by the uuid gobgpd gave them.
   */
  async vmChanged(v: LocalVif, up: boolean): Promise<void> {
    const c = this.client;
    if (!c || !v.vm) return;
    if (up) {
      const vm = this.localVm(v);
      if (!vm || this.announced.has(v.idx)) return;
      const uuids: Buffer[] = [];
      this.announced.set(v.idx, { vrf: vm.vrf, uuids });
      for (const path of [macIpPath(this.me, vm), vpnPath(this.me, vm)]) uuids.push((await c.call('AddPath', { table_type: TABLE_GLOBAL, path })).uuid);
      if (!this.imet.has(vm.vrf) && vm.vni > 0) {
        const r = await c.call('AddPath', { table_type: TABLE_GLOBAL, path: imetPath(this.me, vm.vrf, vm.vni, vm.vn) });
        this.imet.set(vm.vrf, r.uuid);
      }
    } else {
      const a = this.announced.get(v.idx);
      if (!a) return;
      this.announced.delete(v.idx);
      for (const uuid of a.uuids) await c.call('DeletePath', { table_type: TABLE_GLOBAL, uuid });
      const still = [...this.announced.values()].some((x) => x.vrf === a.vrf);
      const imet = this.imet.get(a.vrf);
      if (!still && imet) {
        this.imet.delete(a.vrf);
        await c.call('DeletePath', { table_type: TABLE_GLOBAL, uuid: imet });
      }
    }
  }

  private localVm(v: LocalVif): LocalVm | undefined {
    const vm = v.vm;
    if (!vm) return undefined;
    const vn = this.ov.topo.networks.findIndex((n) => n.name === vm.network);
    const label = this.labelOf(v.idx);
    if (vn < 0 || label < 0) return undefined;
    return { ip: vm.ipStr, mac: vm.macStr, vrf: vn + 1, vni: this.ov.vni(vm.network), label, vn };
  }

  /** The MPLS label of a local vif (set by the node before the VM is announced). */
  labelOf: (vifIdx: number) => number = () => -1;

  /**
   * gobgpd's events: a session's state, or the paths a peer sent (its UPDATE messages, as received:
   * advertisements and withdrawals). A session's loss withdraws nothing here: peerState decides what
   * happens to its routes.
   */
  private onEvent(ev: Msg): void {
    if (ev.peer) {
      const p = ev.peer.peer;
      const addr: string = p?.state?.neighbor_address ?? p?.conf?.neighbor_address ?? '';
      if (addr && ev.peer.type === 3) this.peerState(addr, SESSION_STATES[p?.state?.session_state ?? 0] ?? '?');
      return;
    }
    for (const p of ev.table?.paths ?? []) {
      const l = readPath(p, this.fab);
      if (typeof l === 'string') {
        if (!p.is_withdraw) this.rejected[l] = (this.rejected[l] ?? 0) + 1;
        continue;
      }
      // Our own paths (local, or reflected back) are not remote routes.
      if (p.neighbor_ip === '<nil>' || p.neighbor_ip === '' || l.nexthopStr === this.me.ip) continue;
      if (p.is_withdraw) this.deleteLearned(l.key);
      else this.setLearned(l);
    }
    this.queueFlush();
  }

  private peerState(addr: string, state: string): void {
    const now = Date.now();
    const prev = this.peers.get(addr);
    const p = prev ?? { state: '', since: now, downAt: 0 };
    if (p.state === state) return;
    const wasUp = p.state === 'ESTABLISHED';
    p.state = state;
    p.since = now;
    this.peers.set(addr, p);
    if (wasUp && state !== 'ESTABLISHED') {
      p.downAt = now;
      const keep = this.spec.restartTime;
      this.host.log(`vrouter-emu: BGP peer ${addr}: session down (${state.toLowerCase()})${keep > 0 ? `; the routes learned from it stay (stale) for up to ${keep} s` : '; the routes learned from it are withdrawn'}`);
      // The routes from this peer: stale (2.22's headless mode), or gone with the session (its default).
      for (const l of this.learned.values()) if (l.neighbor === addr) l.stale = true;
      if (keep === 0) this.dropStale(addr, `no session to ${addr}`);
      if (keep > 0) {
        // Only for this outage: a later one has its own timer.
        const t = setTimeout(() => {
          const q = this.peers.get(addr);
          if (q?.state !== 'ESTABLISHED' && q?.downAt === now) this.dropStale(addr, `no session to ${addr} for ${keep} s`);
        }, keep * 1000);
        t.unref();
      }
    } else if (state === 'ESTABLISHED') {
      this.host.log(`vrouter-emu: BGP peer ${addr}: established`);
      if (p.downAt > 0) {
        const t = setTimeout(() => {
          // Not if the session went down again meanwhile: its routes are that outage's stale ones.
          const q = this.peers.get(addr);
          if (q?.state === 'ESTABLISHED' && q.since === now) this.dropStale(addr, `not re-advertised by ${addr} within ${STALE_FLUSH_MS / 1000} s of the session's return`);
        }, STALE_FLUSH_MS);
        t.unref();
      }
    }
  }

  /** Withdraw the routes from `addr` still stale. */
  private dropStale(addr: string, why: string): void {
    let n = 0;
    for (const [k, l] of this.learned) {
      if (l.stale && l.neighbor === addr) {
        this.deleteLearned(k);
        n++;
      }
    }
    if (n > 0) this.host.log(`vrouter-emu: BGP: ${n} stale route${n === 1 ? '' : 's'} withdrawn (${why})`);
    this.queueFlush();
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** The (network, IP) a route is merged under. */
  private static group(l: Learned): string {
    return `${l.vn}/${l.ip}`;
  }

  private setLearned(l: Learned): void {
    const old = this.learned.get(l.key);
    if (old && BgpRoutes.group(old) !== BgpRoutes.group(l)) this.deleteLearned(l.key);
    this.learned.set(l.key, l);
    if (l.kind === 'imet') return;
    const g = BgpRoutes.group(l);
    let keys = this.groups.get(g);
    if (!keys) this.groups.set(g, (keys = new Set()));
    keys.add(l.key);
    this.dirty.add(g);
  }

  private deleteLearned(key: string): void {
    const l = this.learned.get(key);
    if (!l) return;
    this.learned.delete(key);
    if (l.kind === 'imet') return;
    const g = BgpRoutes.group(l);
    const keys = this.groups.get(g);
    keys?.delete(key);
    if (keys && keys.size === 0) this.groups.delete(g);
    this.dirty.add(g);
  }

  /**
   * The remote route of one (network, IP): over VXLAN (its MAC/IP route's VNI) when that is the
   * encapsulation chosen towards the peer or the only route, else routed with the inet-vpn label.
   */
  private routeOf(g: string): RemoteRoute | undefined {
    let macip: Learned | undefined;
    let vpn: Learned | undefined;
    for (const k of this.groups.get(g) ?? []) {
      const l = this.learned.get(k) as Learned;
      if (l.kind === 'mac-ip') macip ??= l;
      else vpn ??= l;
    }
    const first = macip ?? vpn;
    if (!first) return undefined;
    const ov = this.ov;
    const encaps: Encap[] = [...new Set([...(macip?.encaps ?? []), ...(vpn?.encaps ?? [])])];
    const peer = ov.peerFor(first.nexthop, encaps.length > 0 ? encaps : vpn ? ['MPLSoGRE'] : ['VXLAN']);
    const nw = ov.topo.networks[first.vn];
    const mac = macip ? macParse(macip.mac) : undefined;
    const l2 = macip !== undefined && mac !== undefined && (vpn === undefined || ov.encapFor(peer) === 'VXLAN');
    if (!l2 && !vpn) return undefined;
    const encap: Encap = l2 ? 'VXLAN' : ov.l3EncapFor(peer);
    return {
      name: `${first.ipStr}@${peer.ipStr}`, kind: vpn ? 'vm' : 'bare-metal', ip: first.ip, ipStr: first.ipStr, mac: mac ?? new Uint8Array(6), network: nw.name,
      vrf: first.vn + 1, peer, l2, encap, nh: ov.tunnelNh(peer, encap), label: l2 ? (macip as Learned).label : (vpn as Learned).label, mplsLabel: vpn?.label ?? -1,
    };
  }

  /** The remote routes of every learned (network, IP) (the tests, the bench). */
  routes(): RemoteRoute[] {
    return [...this.groups.keys()].map((g) => this.routeOf(g)).filter((r): r is RemoteRoute => r !== undefined);
  }

  /** Give the sink what changed since the last flush: the dirty (network, IP)s only. */
  private flush(): void {
    const sink = this.sink;
    if (!sink || this.stopping || this.dirty.size === 0) return;
    let changed = false;
    for (const g of this.dirty) {
      const r = this.routeOf(g);
      const sig = r ? `${r.peer.ip}/${r.l2}/${r.encap}/${r.label}/${r.mplsLabel}/${macString(r.mac)}` : '';
      const old = this.installed.get(g);
      if (old && old.sig === sig) continue;
      if (old) {
        sink.remove(old.r);
        this.installed.delete(g);
      }
      if (r) {
        sink.add(r);
        this.installed.set(g, { r, sig });
        this.installs++;
      }
      changed = true;
    }
    this.dirty.clear();
    if (changed) {
      sink.commit();
      this.lastChange = Date.now();
    }
  }

  /** The routes installed now (for the banner, the tests, the bench). */
  installedCount(): number {
    return this.installed.size;
  }

  /** Peers, routes sent and received, counters: what `vrouter-emu bgp` prints. */
  async status(nodeName: string, withRoutes = true): Promise<BgpStatus> {
    const c = this.client;
    const peers: PeerRow[] = [];
    const sent: RouteRow[] = [];
    const received: RouteRow[] = [];
    const nets = this.ov.topo.networks;
    if (c) {
      for (const r of await c.list('ListPeer', { address: '', enableAdvertised: true })) {
        const p = r.peer;
        // Received and advertised: gobgpd's counts for the session. Accepted: what the agent holds
        // from this peer after its checks (gobgpd itself imports none of them).
        let received = 0;
        let advertised = 0;
        for (const a of p.afi_safis ?? []) {
          received += Number(a.state?.received ?? 0);
          advertised += Number(a.state?.advertised ?? 0);
        }
        const address: string = p.state?.neighbor_address || p.conf?.neighbor_address;
        let accepted = 0;
        for (const l of this.learned.values()) if (l.neighbor === address && !l.stale) accepted++;
        const up = p.timers?.state?.uptime?.seconds;
        const down = p.timers?.state?.downtime?.seconds;
        const est = p.state?.session_state === SESSION_ESTABLISHED;
        const t = Number((est ? up : down ?? up) ?? 0);
        peers.push({
          address, as: p.conf?.peer_asn ?? this.spec.as, state: SESSION_STATES[p.state?.session_state ?? 0] ?? '?',
          since: t > 0 ? Math.max(0, Math.round(Date.now() / 1000 - t)) : 0, received, accepted, advertised,
        });
      }
      for (const family of withRoutes ? [FAMILY_EVPN, FAMILY_VPNV4] : []) {
        for (const d of await c.list('ListPath', { table_type: TABLE_GLOBAL, family })) {
          for (const p of d.destination?.paths ?? []) {
            const l = readPath(p, { ...this.fab, mask: 0, net: 0 });
            if (typeof l === 'string') continue;
            const local = p.neighbor_ip === '<nil>' || p.neighbor_ip === '';
            const row: RouteRow = {
              family: family === FAMILY_EVPN ? 'evpn' : 'inet-vpn', type: l.kind === 'mac-ip' ? '2' : l.kind === 'imet' ? '3' : 'vpn', rd: l.rd,
              prefix: l.kind === 'mac-ip' ? `${l.mac} ${l.ipStr}` : l.kind === 'imet' ? l.ipStr : `${l.ipStr}/32`, label: l.label, nexthop: l.nexthopStr,
              rt: l.vn >= 0 ? routeTarget(this.spec.as, l.vn).text : '?', network: l.vn >= 0 ? nets[l.vn].name : '?', stale: l.stale,
            };
            if (local) sent.push(row);
          }
        }
      }
    }
    // Received: what the agent holds (stale ones too, which gobgpd no longer has).
    for (const l of withRoutes ? this.learned.values() : []) {
      received.push({
        family: l.kind === 'vpn' ? 'inet-vpn' : 'evpn', type: l.kind === 'mac-ip' ? '2' : l.kind === 'imet' ? '3' : 'vpn', rd: l.rd,
        prefix: l.kind === 'mac-ip' ? `${l.mac} ${l.ipStr}` : l.kind === 'imet' ? l.ipStr : `${l.ipStr}/32`, label: l.label, nexthop: l.nexthopStr,
        rt: routeTarget(this.spec.as, l.vn).text, network: nets[l.vn].name, stale: l.stale,
      });
    }
    return {
      node: nodeName, as: this.spec.as, routerId: this.me.ip, peers, sent, received, learned: this.learned.size, installed: this.installed.size, installs: this.installs, lastChange: this.lastChange,
      rejected: { ...this.rejected },
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.watcher?.cancel();
    this.client?.close();
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          p.kill('SIGKILL');
          resolve();
        }, 3000);
        p.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        p.kill('SIGTERM');
      });
    }
    try {
      fs.unlinkSync(this.pidFile);
    } catch {
      /* not written */
    }
  }
}



/** The addresses of the peers with an established session, from ListPeer's answers. */
function established(peers: Msg[]): Set<string> {
  const up = new Set<string>();
  for (const r of peers) {
    if (r.peer?.state?.session_state === SESSION_ESTABLISHED) up.add(r.peer.state.neighbor_address || r.peer.conf?.neighbor_address);
  }
  return up;
}

/** A gobgpd that a killed instance left behind (its pid file names it, its command line has our API address). */
function killLeftover(pidFile: string, target: string): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (cmd[0].endsWith('gobgpd') && cmd.includes(target)) process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  fs.rmSync(pidFile, { force: true });
}
