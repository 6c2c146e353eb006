/**
 * `vrouter --info`: the module's build line and table limits as R2.22's utils/vrouter.c prints them
 * (reference §7.3): labels padded to 29 columns, values from vrouter_ops (vo_interfaces, vo_vrfs, …).
 * @module
 */
import * as os from 'os';
import { VR_MAX_INTERFACES } from '../dp/interface';
import { VR_MAX_MIRROR_INDICES } from '../dp/defs';
import type { ModuleParams } from '../params/module-params';
import type { Out } from './flow-list';

declare const __BUILD_INFO__: { version: string; user: string; host: string; time: string } | undefined;

/** build-version, build-user, build-hostname, build-time of this emulator build. */
export function buildInfo(): { version: string; user: string; host: string; time: string } {
  if (typeof __BUILD_INFO__ !== 'undefined') return __BUILD_INFO__;
  return { version: '2.22-vrouter-emu-dev', user: os.userInfo().username, host: os.hostname(), time: 'source tree' };
}

export function vrouterInfo(p: ModuleParams, out: Out): void {
  const b = buildInfo();
  out(`vRouter module version       ${b.version} (Built by ${b.user}@${b.host} on ${b.time})\n`);
  const rows: [string, number][] = [
    ['Interfaces limit', VR_MAX_INTERFACES],
    ['VRF tables limit', p.vr_vrfs],
    ['NextHops limit', p.vr_nexthops],
    ['MPLS Labels limit', p.vr_mpls_labels],
    ['Bridge Table limit', p.vr_bridge_entries],
    ['Bridge Table Overflow limit', p.vr_bridge_oentries],
    ['Flow Table limit', p.vr_flow_entries],
    ['Flow Table overflow limit', p.vr_oflow_entries],
    ['Mirror entries limit', VR_MAX_MIRROR_INDICES],
  ];
  for (const [label, v] of rows) out(label.padEnd(29) + String(v) + '\n');
}
