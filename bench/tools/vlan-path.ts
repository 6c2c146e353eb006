/**
 * The datapath's own cost of vCenter mode's frame path, without system calls: nanoseconds per 64-byte
 * frame through dpRx → flow → vifTx for a plain VM vif (the TAP path), against the same frame tagged
 * by the ESXi switch (dvswitch.tag), demultiplexed from the trunk to its VLAN sub-interface, sent on
 * the other sub-interface (tagged again by vifTx's parent branch) and untagged for the switch port's
 * batch (as the datapath thread's txQueue does). The host's tx copies each frame into a slab as
 * txQueue does; the reads are a set() into the rx slab for both. Alternating, median of 7.
 *
 * Run: node scripts/bench.cjs tools/vlan-path    (no root)
 */
import { VR_VIF_MAC } from '../../src/dp/defs';
import { VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_PHYSICAL, VIF_TYPE_VIRTUAL, VIFS_LEN, VIFS_TX_PACKETS, macParse } from '../../src/dp/interface';
import { createDatapath, dpBurstEnd, dpRx } from '../../src/dp/datapath';
import { NH_ENCAP, NH_RCV, VR_RT_ARP_PROXY_FLAG, bridgeAdd, nhAdd, nhMake, rtAdd } from '../../src/dp/nexthop';
import { reqSubVifAdd, reqVifAdd } from '../../src/dp/request';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { ipKeyWord, ipParse } from '../../src/agent/topology';
import { udpFrame } from '../../src/io/frame-build';
import { DvSwitch } from '../../src/esxi/dvswitch';
import { ManualHost } from '../../src/dp/manual-host';
import { testAgent } from '../../test/helpers/test-host';

const SLOT = 9216 + 32;
const BURST = 64;
const N = 1_000_000;
const TRUNK = 3;
const slab = new Uint8Array(BURST * SLOT);
let sent = 0;
const dvs = new DvSwitch();
dvs.set(101, 99, TRUNK);
dvs.set(102, 98, TRUNK);

/** tx as the datapath thread's txQueue: a copy into the slab; for the trunk, untagged for its VLAN's port. */
class SlabHost extends ManualHost {
  override tx(vif: number, buf: Uint8Array, off: number, len: number): void {
    if (vif === TRUNK && dvs.vlanOf(buf, off, len) < 0) return;
    const o = (sent++ & (BURST - 1)) * SLOT;
    slab.set(buf.subarray(off, off + len), o);
    if (vif === TRUNK) slab.copyWithin(o + 4, o, o + 12);
  }
}

const host = new SlabHost({ now: 1_000_000, seed: 1 });
const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 4096, vr_oflow_entries: 512 });
const flags = VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED;
const vrmac = macParse(VR_VIF_MAC) as Uint8Array;
// VRF 1: trunk vif0/3 with sub-interfaces vif0/4 (VLAN 101) and vif0/5 (VLAN 102); VRF 2: plain vif0/6, vif0/7.
reqVifAdd(r, TRUNK, VIF_TYPE_PHYSICAL, 0, 0, VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED, 1514, Uint8Array.from([0, 0x50, 0x56, 0, 0, 1]));
reqSubVifAdd(r, 4, TRUNK, 101, 101, 1, 10, flags, 1500, vrmac);
reqSubVifAdd(r, 5, TRUNK, 102, 102, 1, 11, flags, 1500, vrmac);
reqVifAdd(r, 6, VIF_TYPE_VIRTUAL, 2, 12, flags, 1500, vrmac);
reqVifAdd(r, 7, VIF_TYPE_VIRTUAL, 2, 13, flags, 1500, vrmac);
const MAC1 = '02:00:00:00:00:01';
const MAC2 = '02:00:00:00:00:02';
nhAdd(r.rt, nhMake(1, NH_RCV, 2, new Uint8Array(6)));
const ip3 = ipKeyWord(ipParse('10.1.1.3'));
const ip4 = ipKeyWord(ipParse('10.1.1.4'));
// Nexthops: VRF 1 → 10 (vif0/4, 10.1.1.3), 11 (vif0/5, 10.1.1.4); VRF 2 → 12 (vif0/6), 13 (vif0/7).
for (const [vrf, va, vb, nha, nhb] of [[1, 4, 5, 10, 11], [2, 6, 7, 12, 13]]) {
  nhAdd(r.rt, nhMake(nha, NH_ENCAP, va, macParse(MAC1) as Uint8Array));
  nhAdd(r.rt, nhMake(nhb, NH_ENCAP, vb, macParse(MAC2) as Uint8Array));
  rtAdd(r.rt, vrf, ip3, { nh: nha, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  rtAdd(r.rt, vrf, ip4, { nh: nhb, flags: VR_RT_ARP_PROXY_FLAG, label: -1, mac: null });
  bridgeAdd(r.rt, vrf, macParse(MAC1) as Uint8Array, va);
  bridgeAdd(r.rt, vrf, macParse(MAC2) as Uint8Array, vb);
}
const { run } = testAgent(r, host, { reverseNh: (vrf, _s, d, nh) => (d === ip4 ? (vrf === 1 ? 11 : 13) : d === ip3 ? (vrf === 1 ? 10 : 12) : nh) });
const udp = udpFrame({ src: '10.1.1.3', dst: '10.1.1.4', srcMac: MAC1, dstMac: VR_VIF_MAC }, { sport: 40021, dport: 9, payload: 18 });
const rxSlab = new Uint8Array(BURST * SLOT + 4);

function tapFrame(f: number): void {
  rxSlab.set(udp, f * SLOT);
  dpRx(r, 6, rxSlab, f * SLOT, udp.length);
}

/** As rxPort: read 4 bytes in, tagged by the switch, into the datapath on the trunk. */
function vlanFrame(f: number): void {
  rxSlab.set(udp, f * SLOT + 4);
  const off = dvs.tag(rxSlab, f * SLOT, udp.length, 101);
  dpRx(r, TRUNK, rxSlab, off, udp.length + 4);
}

function nsPerFrame(one: (f: number) => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i += BURST) {
    for (let f = 0; f < BURST; f++) one(f);
    dpBurstEnd(r);
  }
  return Number(process.hrtime.bigint() - t0) / N;
}

// The flows first (trap → agent → FLOW_SET), then the measured rounds.
for (const one of [tapFrame, vlanFrame]) for (let k = 0; k < 2; k++) {
  one(0);
  dpBurstEnd(r);
  run();
}
const tx0 = [r.vifs.stats[5 * VIFS_LEN + VIFS_TX_PACKETS], r.vifs.stats[7 * VIFS_LEN + VIFS_TX_PACKETS]];
const tap: number[] = [];
const vlan: number[] = [];
for (let k = 0; k < 7; k++) {
  tap.push(nsPerFrame(tapFrame));
  vlan.push(nsPerFrame(vlanFrame));
}
const med = (x: number[]): number => [...x].sort((a, b) => a - b)[x.length >> 1];
const fwd = [r.vifs.stats[5 * VIFS_LEN + VIFS_TX_PACKETS] - tx0[0], r.vifs.stats[7 * VIFS_LEN + VIFS_TX_PACKETS] - tx0[1]];
if (fwd[0] !== 7 * N || fwd[1] !== 7 * N) throw new Error(`not every frame was forwarded: ${fwd.join(' / ')} of ${7 * N}`);
console.log(`per 64-byte frame, datapath code only: TAP path ${med(tap).toFixed(0)} ns   vCenter path ${med(vlan).toFixed(0)} ns   extra ${(med(vlan) - med(tap)).toFixed(0)} ns`);
console.log(`  (runs ${tap.map((x) => x.toFixed(0)).join(', ')} / ${vlan.map((x) => x.toFixed(0)).join(', ')})`);
console.log(JSON.stringify({ bench: 'vlan-path', tapNs: +med(tap).toFixed(1), vlanNs: +med(vlan).toFixed(1), extraNs: +(med(vlan) - med(tap)).toFixed(1) }));
