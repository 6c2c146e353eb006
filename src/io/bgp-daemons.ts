/**
 * The control-plane daemons of a testbed with route_source "bgp", from Debian packages: the route
 * reflector (gobgpd, in the fabric namespace; Contrail's control node in this role) and the FRR EVPN
 * gateways on bare-metal hosts' VTEPs (zebra + bgpd, programming the kernel's VXLAN device and bridge
 * from EVPN routes). This module writes their configuration and starts them; cluster.ts records and
 * stops them.
 * @module
 */
import * as fs from 'fs';
import { execFileSync } from 'child_process';
import type { ChildProcess } from 'child_process';
import type { BgpPlan, VtepPlan } from './cluster';
import { UserError } from '../errors';

export const GOBGPD_BIN = '/usr/bin/gobgpd';
/** Where Debian's frr package puts the daemons. */
export const FRR_DIR = '/usr/lib/frr';

const AFI_SAFIS = ['l2vpn-evpn', 'l3vpn-ipv4-unicast'];

/**
 * The reflector's gobgpd configuration (TOML, gobgpd's config keys): the cluster's AS, listening on its
 * fabric address only, every client a route-reflector client for EVPN and VPNv4, with graceful restart
 * when the topology's graceful_restart_time is not 0.
 */
export function reflectorToml(b: BgpPlan): string {
  const l: string[] = [
    '# written by vrouter-emu testbed: the route reflector of route_source "bgp"',
    '[global.config]',
    `  as = ${b.as}`,
    `  router-id = "${b.reflector}"`,
    '  port = 179',
    `  local-address-list = ["${b.reflector}"]`,
  ];
  const frr = new Set(b.frrClients ?? []);
  for (const c of b.clients) {
    l.push('', '[[neighbors]]', '  [neighbors.config]', `    neighbor-address = "${c}"`, `    peer-as = ${b.as}`);
    l.push('  [neighbors.transport.config]', `    local-address = "${b.reflector}"`);
    l.push('  [neighbors.timers.config]', `    hold-time = ${b.holdTime}`, `    keepalive-interval = ${Math.max(1, Math.floor(b.holdTime / 3))}`, '    connect-retry = 1');
    l.push('  [neighbors.route-reflector.config]', '    route-reflector-client = true', `    route-reflector-cluster-id = "${b.reflector}"`);
    if (b.restartTime > 0) l.push('  [neighbors.graceful-restart.config]', '    enabled = true', `    restart-time = ${b.restartTime}`);
    // An FRR gateway only speaks EVPN: a family it never sends End-of-RIB for would hold a restarted
    // reflector's updates back until its deferral time (6 minutes).
    for (const f of frr.has(c) ? ['l2vpn-evpn'] : AFI_SAFIS) {
      l.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${f}"`);
      if (b.restartTime > 0) l.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    }
  }
  return l.join('\n') + '\n';
}

/** FRR's runtime directory: each gateway's pathspace (-N NAME) is a directory in it. */
export const FRR_RUN_DIR = '/var/run/frr';

/**
 * bgpd's configuration of an FRR EVPN gateway: iBGP to the reflector(s) for l2vpn evpn only,
 * advertise-all-vni (zebra reports the kernel's VXLAN devices and the MACs and neighbours behind them),
 * and for the gateway's VNI the route target of its network as the emulator derives it, imported and
 * exported — as a data-centre gateway is configured with a virtual network's route target.
 */
export function frrBgpdConf(v: VtepPlan, b: BgpPlan, reflectors: string[]): string {
  const f = v.frr as NonNullable<VtepPlan['frr']>;
  const l = [
    `hostname ${f.pathspace}`,
    '!',
    `router bgp ${b.as}`,
    ` bgp router-id ${v.vtepIp}`,
    ' no bgp default ipv4-unicast',
    ...(b.restartTime > 0 ? [' bgp graceful-restart', ` bgp graceful-restart restart-time ${b.restartTime}`] : []),
  ];
  for (const r of reflectors) l.push(` neighbor ${r} remote-as ${b.as}`, ` neighbor ${r} update-source ${v.vtepIp}`, ` neighbor ${r} timers connect 1`);
  l.push(' !', ' address-family l2vpn evpn');
  for (const r of reflectors) l.push(`  neighbor ${r} activate`);
  l.push('  advertise-all-vni', `  vni ${v.vni}`, `   rd ${v.vtepIp}:${v.vni}`, `   route-target import ${f.rt}`, `   route-target export ${f.rt}`, '  exit-vni', ' exit-address-family', 'exit', '!');
  return l.join('\n') + '\n';
}

export function frrZebraConf(v: VtepPlan): string {
  const f = v.frr as NonNullable<VtepPlan['frr']>;
  return `hostname ${f.pathspace}\n!\n`;
}

/**
 * Start the FRR gateway of VTEP `v`: zebra, then bgpd, in the foreground (so that the spawned process is
 * the daemon, recorded and stopped by pid), as root (their config files are the testbed's, root's only),
 * in their own pathspace so that they never meet another FRR on this host.
 */
export function startFrr(v: VtepPlan, b: BgpPlan, spawn: (name: string, argv: string[], log: string) => ChildProcess): void {
  const f = v.frr as NonNullable<VtepPlan['frr']>;
  // The daemons drop to user frr: their directory (config, logs, pid files, vty sockets) is frr's.
  const { uid, gid } = frrUser();
  fs.mkdirSync(f.dir, { recursive: true, mode: 0o750 });
  const zconf = `${f.dir}/zebra.conf`;
  const bconf = `${f.dir}/bgpd.conf`;
  fs.writeFileSync(zconf, frrZebraConf(v), { mode: 0o600 });
  fs.writeFileSync(bconf, frrBgpdConf(v, b, [b.reflector]), { mode: 0o600 });
  for (const x of [f.dir, zconf, bconf]) fs.chownSync(x, uid, gid);
  // -P 0: no TCP vty port (vtysh -N reaches the daemons by their sockets); the log from the command line
  // (a `log file` line in the config is not honoured when the daemon starts unprivileged).
  const common = (d: string, conf: string): string[] => [`${FRR_DIR}/${d}`, '-N', f.pathspace, '-f', conf, '-i', `${f.dir}/${d}.pid`, '-P', '0', '--log', `file:${f.dir}/${d}.log`];
  spawn(`${v.name}-zebra`, common('zebra', zconf), `${f.dir}/zebra.out`);
  spawn(`${v.name}-bgpd`, common('bgpd', bconf), `${f.dir}/bgpd.out`);
}

/** The frr user's ids (Debian's frr package creates it). */
function frrUser(): { uid: number; gid: number } {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('frr:'));
  if (!line) throw new UserError('the frr user does not exist: is FRR installed? apt-get install -y frr');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** `vtysh -N NAME -c CMD`'s output ('' when it fails). */
export function vtysh(pathspace: string, cmd: string, timeoutMs = 5000): string {
  try {
    return execFileSync('vtysh', ['-N', pathspace, '-c', cmd], { stdio: ['ignore', 'pipe', 'ignore'], timeout: timeoutMs }).toString();
  } catch {
    return '';
  }
}

/** Wait (up to `ms`) until every gateway's bgpd answers on its vty. @throws UserError naming the one that does not. */
export async function waitFrr(vteps: VtepPlan[], ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (const v of vteps) {
    const f = v.frr as NonNullable<VtepPlan['frr']>;
    while (!vtysh(f.pathspace, 'show bgp l2vpn evpn summary json').includes('{')) {
      if (Date.now() > end) throw new UserError(`the FRR gateway of ${v.name} (bgpd, pathspace ${f.pathspace}) did not answer within ${ms / 1000} s; see ${f.dir}/bgpd.out and bgpd.log`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
