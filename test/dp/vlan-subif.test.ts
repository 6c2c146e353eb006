/**
 * VLAN sub-interfaces (vCenter mode): a trunk vif without a VRF, sub-interfaces that own its VLANs.
 * Frames tagged with a sub-interface's VLAN are that sub-interface's (its VRF, its nexthop in the flow
 * key); what a sub-interface sends leaves on the trunk with its outer VLAN; what nobody claims drops.
 */
import test from 'ava';
import fc from 'fast-check';
import { VP_DROP_INTERFACE_DROP, VR_FLOW_FLAG_ACTIVE, VR_VIF_MAC } from '../../src/dp/defs';
import { feFlags, feKeyWord } from '../../src/dp/flow-table';
import {
  VIFS_LEN, VIFS_RX_ERRORS, VIFS_RX_PACKETS, VIFS_TX_PACKETS, VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_PHYSICAL, VIF_TYPE_VIRTUAL, macParse,
} from '../../src/dp/interface';
import { createDatapath } from '../../src/dp/datapath';
import { NH_ENCAP, NH_RCV, VR_RT_ARP_PROXY_FLAG, bridgeAdd, nhAdd, nhMake, rtAdd } from '../../src/dp/nexthop';
import { reqSubVifAdd, reqVifAdd, reqVifDelete } from '../../src/dp/request';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { ipKeyWord, ipParse } from '../../src/agent/topology';
import { arpRequest, udpFrame } from '../../src/io/frame-build';
import { rx, testAgent, testHost } from '../helpers/test-host';
import { MAC1, MAC2 } from '../helpers/routed';

const TRUNK = 3;
const flags = VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED;
const vrmac = macParse(VR_VIF_MAC) as Uint8Array;

/** A trunk (vif0/3, the VMware NIC: physical, no address) with sub-interfaces vif0/4 (VLAN 101, 10.1.1.3) and vif0/5 (VLAN 102, 10.1.1.4) in VRF 1. */
function trunked() {
  const host = testHost();
  const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 256, vr_oflow_entries: 32 });
  reqVifAdd(r, TRUNK, VIF_TYPE_PHYSICAL, 0, 0, VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED, 1514, Uint8Array.from([0, 0x50, 0x56, 0, 0, 1]));
  const a = reqSubVifAdd(r, 4, TRUNK, 101, 101, 1, 10, flags, 1500, vrmac);
  const b = reqSubVifAdd(r, 5, TRUNK, 102, 102, 1, 11, flags, 1500, vrmac);
  nhAdd(r.rt, nhMake(1, NH_RCV, 2, new Uint8Array(6)));
  nhAdd(r.rt, nhMake(10, NH_ENCAP, 4, macParse(MAC1) as Uint8Array));
  nhAdd(r.rt, nhMake(11, NH_ENCAP, 5, macParse(MAC2) as Uint8Array));
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.1')), { nh: 1, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.3')), { nh: 10, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  rtAdd(r.rt, 1, ipKeyWord(ipParse('10.1.1.4')), { nh: 11, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  bridgeAdd(r.rt, 1, macParse(MAC1) as Uint8Array, 4);
  bridgeAdd(r.rt, 1, macParse(MAC2) as Uint8Array, 5);
  const ip3 = ipKeyWord(ipParse('10.1.1.3'));
  const ip4 = ipKeyWord(ipParse('10.1.1.4'));
  // The reverse flow is keyed by the nexthop of the interface its packets come in on (the agent's choice).
  const agent = testAgent(r, host, { reverseNh: (_v, _s, d, nh) => (d === ip4 ? 11 : d === ip3 ? 10 : nh) });
  return { r, host, added: [a, b], ...agent };
}

/** `f` with an 802.1Q tag (priority `pcp`) after the MACs. */
function tagged(f: Uint8Array, vlan: number, pcp = 0): Uint8Array {
  const t = new Uint8Array(f.length + 4);
  t.set(f.subarray(0, 12), 0);
  t.set([0x81, 0x00, (pcp << 5) | ((vlan >> 8) & 0x0f), vlan & 0xff], 12);
  t.set(f.subarray(12), 16);
  return t;
}

const vlanOf = (f: Uint8Array): number => (f[12] === 0x81 && f[13] === 0 ? ((f[14] & 0x0f) << 8) | f[15] : -1);
const st = (r: ReturnType<typeof trunked>['r'], vif: number, k: number): number => r.vifs.stats[vif * VIFS_LEN + k];

test('a tagged frame is its VLAN\'s sub-interface\'s: flows keyed by that vif\'s nexthop, the answer tagged with the other VLAN', (t) => {
  const { r, host, run, added } = trunked();
  t.deepEqual(added, [0, 0]);
  const udp = udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: MAC1, dstMac: VR_VIF_MAC }, { sport: 1000, dport: 2000, payload: 20 });
  rx(r, tagged(udp, 101, 5), TRUNK);
  run();
  t.is(host.sent.length, 1);
  const out = host.sent[0];
  t.is(out.vif, TRUNK, 'sent on the trunk');
  t.is(vlanOf(out.data), 102, 'tagged with the destination sub-interface\'s VLAN');
  t.is(out.data.length, udp.length + 4);
  t.deepEqual(Array.from(out.data.subarray(18 + 12, 18 + 20)), Array.from(udp.subarray(14 + 12, 14 + 20)), 'the addresses are the packet\'s');
  t.is(st(r, 4, VIFS_RX_PACKETS), 1, 'the sub-interface counted it');
  t.is(st(r, 5, VIFS_TX_PACKETS), 1);
  t.is(st(r, TRUNK, VIFS_TX_PACKETS), 1);
  // The flow's key nexthop is the sub-interface's (10), not the trunk's.
  const nhs: number[] = [];
  for (let i = 0; i < r.ft.total; i++) if (feFlags(r.ft, i) & VR_FLOW_FLAG_ACTIVE) nhs.push(feKeyWord(r.ft, i, 3));
  t.deepEqual(nhs.sort(), [10, 11], 'forward keyed by vif0/4\'s nexthop, reverse by vif0/5\'s');
});

test('untagged frames and VLANs without a sub-interface drop as IF Drop on the trunk; ARP from a port is answered on its VLAN', (t) => {
  const { r, host } = trunked();
  rx(r, arpRequest(MAC1, '10.1.1.3', '10.1.1.1'), TRUNK);
  rx(r, tagged(arpRequest(MAC1, '10.1.1.3', '10.1.1.1'), 999), TRUNK);
  t.is(r.drops[VP_DROP_INTERFACE_DROP], 2);
  t.is(st(r, TRUNK, VIFS_RX_ERRORS), 2);
  t.is(host.sent.length, 0);
  rx(r, tagged(arpRequest(MAC1, '10.1.1.3', '10.1.1.1'), 101), TRUNK);
  t.is(host.sent.length, 1);
  t.is(vlanOf(host.sent[0].data), 101, 'the ARP reply goes back tagged 101');
  t.is((host.sent[0].data[18 + 6] << 8) | host.sent[0].data[18 + 7], 2, 'an ARP reply');
});

test('sub-interface requests: no parent, a sub-interface as parent and bad VLANs are EINVAL; a VLAN taken is EEXIST; delete frees it', (t) => {
  const { r } = trunked();
  t.is(reqSubVifAdd(r, 6, 9, 103, 103, 1, 12, flags, 1500, vrmac), -22, 'no vif0/9');
  t.is(reqSubVifAdd(r, 6, 4, 103, 103, 1, 12, flags, 1500, vrmac), -22, 'vif0/4 is a sub-interface, not a physical vif');
  reqVifAdd(r, 7, VIF_TYPE_VIRTUAL, 1, 13, flags, 1500, vrmac);
  t.is(reqSubVifAdd(r, 6, 7, 103, 103, 1, 12, flags, 1500, vrmac), -22, 'a VM vif takes no sub-interfaces');
  t.is(reqSubVifAdd(r, 6, TRUNK, 4096, 4096, 1, 12, flags, 1500, vrmac), -22);
  t.is(reqSubVifAdd(r, 6, TRUNK, 101, 101, 1, 12, flags, 1500, vrmac), -17, 'VLAN 101 is vif0/4\'s');
  reqVifDelete(r, 4);
  t.is(r.vifs.vifs[TRUNK]?.subVifs?.[101], -1);
  t.is(reqSubVifAdd(r, 6, TRUNK, 101, 101, 1, 12, flags, 1500, vrmac), 0, 'free again');
  t.is(r.vifs.vifs[TRUNK]?.subVifs?.[101], 6);
});

test('property: any frame on the trunk is claimed by its VLAN\'s sub-interface or dropped, never thrown', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.constantFrom(-1, 101, 102, 0, 4095, 777), (body, vlan) => {
      const { r } = trunked();
      const f = vlan < 0 ? body : tagged(body.length >= 12 ? body : new Uint8Array(12), vlan);
      rx(r, f, TRUNK);
      const claimed = st(r, 4, VIFS_RX_PACKETS) + st(r, 5, VIFS_RX_PACKETS);
      const mine = vlan === 101 || vlan === 102;
      return f.length >= 18 && mine ? claimed === 1 : claimed === 0;
    }),
  );
  t.pass();
});

test('a broadcast from one port is flooded to the other ports of its network, each tagged with its own VLAN', (t) => {
  const { r, host } = trunked();
  rx(r, tagged(arpRequest(MAC1, '10.1.1.3', '10.1.1.99'), 101), TRUNK); // nobody's address: flooded
  t.deepEqual(host.sent.map((s) => [s.vif, vlanOf(s.data)]), [[TRUNK, 102]]);
  t.is(st(r, 5, VIFS_TX_PACKETS), 1);
});
