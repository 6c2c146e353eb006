/**
 * A routed datapath (routing on, as in the TAP testbed) with two VMs: vif0/3 10.1.1.3 and vif0/4
 * 10.1.1.4 in VRF 1, and the default agent; forwarded frames reach `host.tx`.
 */
import { createDatapath } from '../../src/dp/datapath';
import { VR_VIF_MAC } from '../../src/dp/defs';
import { VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_VIRTUAL, macParse, vifAdd } from '../../src/dp/interface';
import { NH_ENCAP, NH_RCV, VR_RT_ARP_PROXY_FLAG, bridgeAdd, nhAdd, nhMake, rtAdd } from '../../src/dp/nexthop';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { ipKeyWord, ipParse } from '../../src/agent/topology';
import { testAgent } from './test-host';
import type { ManualHost } from '../../src/dp/manual-host';

export const MAC1 = '02:00:0a:01:01:03';
export const MAC2 = '02:00:0a:01:01:04';
/** IP options of a frame from VM 1 to VM 2 through the vRouter. */
export const VM1_TO_VM2 = { src: '10.1.1.3', dst: '10.1.1.4', srcMac: MAC1, dstMac: VR_VIF_MAC };

export function routedPair<H extends ManualHost>(host: H) {
  const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 256, vr_oflow_entries: 32 });
  const vrmac = macParse(VR_VIF_MAC) as Uint8Array;
  const flags = VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED;
  vifAdd(r.vifs, { idx: 3, type: VIF_TYPE_VIRTUAL, name: 'tap3', vrf: 1, nh: 10, flags, mtu: 1500, mac: vrmac, up: true, ip: 0 });
  vifAdd(r.vifs, { idx: 4, type: VIF_TYPE_VIRTUAL, name: 'tap4', vrf: 1, nh: 11, flags, mtu: 1500, mac: vrmac, up: true, ip: 0 });
  nhAdd(r.rt, nhMake(1, NH_RCV, 2, new Uint8Array(6)));
  nhAdd(r.rt, nhMake(10, NH_ENCAP, 3, macParse(MAC1) as Uint8Array));
  nhAdd(r.rt, nhMake(11, NH_ENCAP, 4, macParse(MAC2) as Uint8Array));
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.1')), { nh: 1, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null }); // the gateway
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.3')), { nh: 10, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.4')), { nh: 11, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  bridgeAdd(r.rt, 1, macParse(MAC1) as Uint8Array, 3);
  bridgeAdd(r.rt, 1, macParse(MAC2) as Uint8Array, 4);
  const ip4 = ipKeyWord(ipParse('10.1.1.4'));
  const ip3 = ipKeyWord(ipParse('10.1.1.3'));
  const agent = testAgent(r, host, { reverseNh: (_v, _s, d, nh) => (d === ip4 ? 11 : d === ip3 ? 10 : nh) });
  return { r, host, ...agent };
}
