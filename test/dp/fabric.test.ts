import test from 'ava';
import fc from 'fast-check';
import { VIF_FABRIC, VIF_VHOST } from '../../src/agent/compute-node';
import { dpRx } from '../../src/dp/datapath';
import {
  VP_DROP_FRAGMENTS, VP_DROP_INVALID_LABEL, VP_DROP_INVALID_PACKET, VP_DROP_INVALID_PROTOCOL, VP_DROP_INVALID_VNID, VP_DROP_PULL,
  VP_DROP_TTL_EXCEEDED, VR_FLOW_ACTION_FORWARD, VR_VIF_MAC,
} from '../../src/dp/defs';
import { MPLSOUDP_PORT, VXLAN_PORT } from '../../src/dp/fabric';
import { FE_SIZE, FE_UDP_SPORT, feAction, feFlags, feKeyWord, feProto } from '../../src/dp/flow-table';
import { flowInfoNew } from '../../src/agent/flow-state';
import { VIFS_LEN, VIFS_TX_PACKETS, macString } from '../../src/dp/interface';
import { rd16, rd32 } from '../../src/dp/pkt';
import { RES_DROPPED, RES_HELD } from '../../src/dp/router';
import { arpRequest, icmpEcho, inetChecksum, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { FlowExport, FlowRecord } from '../../src/agent/flow-export';
import { xorshift32 } from '../../src/lib/xorshift';
import { mplsDump, nhList, rtDump, vxlanDump } from '../../src/cli/nh-list';
import { policy } from '../helpers/compute-node';
import { BMS_MAC, TestCluster, VTEP_IP, VTEP_MAC, clusterTopology } from '../helpers/cluster';

const VM1 = { src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:0a:01:01:03', dstMac: VR_VIF_MAC };
const VM2 = { src: '10.1.1.4', dst: '10.1.1.3', srcMac: '02:00:0a:01:01:04', dstMac: VR_VIF_MAC };
const VM_VIF = 3; // each node's first VM

function activeFlows(c: TestCluster, name: string): number[] {
  const r = c.node(name).r;
  const out: number[] = [];
  for (let i = 0; i < r.ft.total; i++) if (feFlags(r.ft, i) & 1) out.push(i);
  return out;
}

/** The IPv4 header at `o` checks. */
function ipOk(f: Uint8Array, o: number): boolean {
  return inetChecksum(f, o, (f[o] & 0xf) * 4) === 0;
}

for (const [encap, proto, port] of [['MPLSoGRE', 47, 0], ['MPLSoUDP', 17, MPLSOUDP_PORT]] as const) {
  test(`${encap}: vm1 on node1 pings vm2 on node2 and back; the label is vm2's, both nodes' flows forward`, (t) => {
    const c = new TestCluster(clusterTopology([encap]));
    c.settle(); // the tunnels resolve their destinations by ARP (answered by each node's vhost0)
    const n1 = c.node('node1');
    const n2 = c.node('node2');
    t.is(macString(n1.r.rt.nhs.find((h) => h?.dip === n2.ip)?.dmac as Uint8Array), macString(n2.mac), 'node1 learned node2\'s fabric MAC');
    c.wire.length = 0;
    const echo = icmpEcho(VM1, false, 7, 1);
    dpRx(n1.r, VM_VIF, echo, 0, echo.length);
    c.settle();
    const got = c.take(n2, VM_VIF);
    t.is(got.length, 1, 'vm2 got the echo request');
    const f = got[0];
    t.is(macString(f.subarray(0, 6)), VM1.dstMac === VR_VIF_MAC ? '02:00:0a:01:01:04' : '', 'to vm2\'s MAC');
    t.is(macString(f.subarray(6, 12)), VR_VIF_MAC, 'from the vRouter MAC');
    t.is(f[22], 63, 'routed once: TTL 64 → 63');
    t.true(ipOk(f, 14));
    t.is(f[34], 8, 'an echo request');
    // On the wire: outer headers as 2.22 wrote them.
    const w = c.wire.find((x) => x.from === 'node1' && rd16(x.data, 12) === 0x0800)?.data as Uint8Array;
    t.truthy(w);
    t.is(macString(w.subarray(0, 6)), macString(n2.mac));
    t.is(macString(w.subarray(6, 12)), macString(n1.mac));
    t.is(w[14], 0x45);
    t.is(w[22], 64, 'outer TTL 64');
    t.is(rd16(w, 20) & 0x4000, 0, 'DF clear');
    t.is(w[23], proto);
    t.is(rd32(w, 26), n1.ip);
    t.is(rd32(w, 30), n2.ip);
    t.true(ipOk(w, 14), 'outer IP checksum');
    let m = 34;
    if (proto === 47) {
      t.is(rd16(w, 34), 0, 'GRE without options');
      t.is(rd16(w, 36), 0x8847);
      m = 38;
    } else {
      t.is(rd16(w, 36), port);
      t.is(rd16(w, 40), 0, 'UDP checksum 0');
      const sport = rd16(w, 34);
      t.true(sport >= 49152 && sport <= 65535);
      const fwd = activeFlows(c, 'node1').find((i) => feKeyWord(n1.r.ft, i, 1) >>> 0 === 0x0301010a) as number; // sip 10.1.1.3
      t.is(sport, n1.r.ft.u16[fwd * (FE_SIZE >> 1) + (FE_UDP_SPORT >> 1)], 'the flow\'s fe_udp_src_port');
      m = 42;
    }
    const lw = rd32(w, m);
    t.is(lw >>> 12, 16, 'vm2\'s L3 label: the first label of node2 (MplsTable starts at 16)');
    t.is((lw >>> 8) & 1, 1, 'bottom of stack');
    t.is(lw & 0xff, 63, 'the label TTL is the routed inner TTL');
    t.is(w[m + 4] >> 4, 4, 'an inner IPv4 packet, no inner Ethernet');
    // The reply.
    const reply = icmpEcho(VM2, true, 7, 1);
    dpRx(n2.r, VM_VIF, reply, 0, reply.length);
    c.settle();
    const back = c.take(n1, VM_VIF);
    t.is(back.length, 1, 'vm1 got the reply');
    t.is(back[0][34], 0);
    for (const name of ['node1', 'node2']) {
      const fl = activeFlows(c, name);
      t.is(fl.length, 2, `${name}: a forward and a reverse flow`);
      for (const i of fl) t.is(feAction(c.node(name).r.ft, i), VR_FLOW_ACTION_FORWARD);
    }
    // Flow export sees the underlay.
    const env = n1.cn.exportEnv('192.168.50.11');
    const under = env.underlay?.(0x0301010a, 0x0401010a);
    t.deepEqual(under, { peer: '192.168.50.12', proto: encap === 'MPLSoGRE' ? 1 : 2 });
  });
}

test('VXLAN: ARP for a VM on the other node is answered with its own MAC; the frame is bridged with the VNI', (t) => {
  const c = new TestCluster(clusterTopology(['VXLAN']));
  c.settle();
  const n1 = c.node('node1');
  const n2 = c.node('node2');
  const arp = arpRequest(VM1.srcMac, '10.1.1.3', '10.1.1.4');
  dpRx(n1.r, VM_VIF, arp, 0, arp.length);
  const ans = c.take(n1, VM_VIF);
  t.is(ans.length, 1);
  t.is(macString(ans[0].subarray(22, 28)), '02:00:0a:01:01:04', 'the stitched MAC of vm2');
  c.wire.length = 0;
  const echo = icmpEcho({ ...VM1, dstMac: '02:00:0a:01:01:04' }, false, 9, 1);
  dpRx(n1.r, VM_VIF, echo, 0, echo.length);
  c.settle();
  const got = c.take(n2, VM_VIF);
  t.is(got.length, 1);
  t.is(got[0][22], 64, 'bridged: TTL kept');
  const w = c.wire.find((x) => x.from === 'node1' && rd16(x.data, 12) === 0x0800)?.data as Uint8Array;
  t.is(rd16(w, 36), VXLAN_PORT);
  t.is(w[42], 0x08, 'I flag');
  t.is(rd32(w, 46) >>> 8, 1, 'VNI = the network id (automatic mode)');
  t.is(macString(w.subarray(50, 56)), '02:00:0a:01:01:04', 'inner Ethernet to vm2');
  t.true(ipOk(w, 14));
  const reply = icmpEcho({ ...VM2, dstMac: VM1.srcMac }, true, 9, 1);
  dpRx(n2.r, VM_VIF, reply, 0, reply.length);
  c.settle();
  t.is(c.take(n1, VM_VIF).length, 1, 'the reply is bridged back');
});

test('VXLAN: configured mode uses the network\'s vxlan_network_identifier', (t) => {
  const topo = clusterTopology(['VXLAN'], {
    networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1', vxlan_network_identifier: 5001 }],
    global_vrouter_config: { encapsulation_priorities: { encapsulation: ['VXLAN'] }, vxlan_network_identifier_mode: 'configured' },
  });
  const c = new TestCluster(topo);
  c.settle();
  c.wire.length = 0;
  const echo = icmpEcho({ ...VM1, dstMac: '02:00:0a:01:01:04' }, false, 9, 1);
  dpRx(c.node('node1').r, VM_VIF, echo, 0, echo.length);
  c.settle();
  const w = c.wire.find((x) => rd16(x.data, 12) === 0x0800)?.data as Uint8Array;
  t.is(rd32(w, 46) >>> 8, 5001);
  t.is(c.take(c.node('node2'), VM_VIF).length, 1);
});

test('a bare-metal host behind a VTEP: stitched ARP answer, VXLAN to the VTEP, its ARP answered back through the tunnel', (t) => {
  const c = new TestCluster(clusterTopology(['MPLSoUDP', 'VXLAN']));
  c.settle();
  const n1 = c.node('node1');
  const arp = arpRequest(VM1.srcMac, '10.1.1.3', '10.1.1.20');
  dpRx(n1.r, VM_VIF, arp, 0, arp.length);
  t.is(macString(c.take(n1, VM_VIF)[0].subarray(22, 28)), BMS_MAC);
  const echo = icmpEcho({ src: '10.1.1.3', dst: '10.1.1.20', srcMac: VM1.srcMac, dstMac: BMS_MAC }, false, 3, 1);
  dpRx(n1.r, VM_VIF, echo, 0, echo.length);
  c.settle();
  const v = c.toVtep.find((f) => rd16(f, 12) === 0x0800) as Uint8Array;
  t.truthy(v, 'VXLAN to the VTEP (resolved by ARP)');
  t.is(rd32(v, 30), VTEP_IP);
  t.is(rd16(v, 36), VXLAN_PORT);
  t.is(macString(v.subarray(50, 56)), BMS_MAC);
  // The host's ARP for vm1 arrives flooded by the kernel VXLAN (inner broadcast).
  const inner = arpRequest(BMS_MAC, '10.1.1.20', '10.1.1.3');
  const outer = vxlanFrame(n1.mac, c.node('node1').ip, 1, inner);
  c.toVtep.length = 0;
  dpRx(n1.r, VIF_FABRIC, outer, 0, outer.length);
  c.settle();
  const ans = c.toVtep.find((f) => rd16(f, 12) === 0x0800) as Uint8Array;
  t.truthy(ans, 'answered through the tunnel');
  const a = 50 + 14;
  t.is(rd16(ans, a + 6), 2, 'an ARP reply');
  t.is(macString(ans.subarray(a + 8, a + 14)), VM1.srcMac, 'with vm1\'s own MAC');
  t.is(macString(ans.subarray(50, 56)), BMS_MAC);
  // The host's echo reply reaches vm1 (flows from the fabric keyed with vm1's nexthop).
  const rep = icmpEcho({ src: '10.1.1.20', dst: '10.1.1.3', srcMac: BMS_MAC, dstMac: VM1.srcMac }, true, 3, 1);
  const o2 = vxlanFrame(n1.mac, n1.ip, 1, rep);
  dpRx(n1.r, VIF_FABRIC, o2, 0, o2.length);
  c.settle();
  t.is(c.take(n1, VM_VIF).filter((f) => f[34] === 0).length, 1);
});

/** A VXLAN frame from the VTEP to (mac, ip) carrying `inner`. */
function vxlanFrame(dmac: Uint8Array, dip: number, vni: number, inner: Uint8Array): Uint8Array {
  const f = new Uint8Array(50 + inner.length);
  f.set(dmac, 0);
  f.set(VTEP_MAC, 6);
  f[12] = 8;
  const ipLen = 20 + 8 + 8 + inner.length;
  f.set([0x45, 0, ipLen >> 8, ipLen & 255, 0, 1, 0, 0, 64, 17, 0, 0], 14);
  f.set([192, 168, 50, 20], 26);
  f.set([dip >>> 24, (dip >>> 16) & 255, (dip >>> 8) & 255, dip & 255], 30);
  const c = inetChecksum(f, 14, 20);
  f[24] = c >> 8;
  f[25] = c & 255;
  f.set([0xc0, 0x01, VXLAN_PORT >> 8, VXLAN_PORT & 255, (ipLen - 20) >> 8, (ipLen - 20) & 255, 0, 0], 34);
  f.set([0x08, 0, 0, 0, vni >> 16, (vni >> 8) & 255, vni & 255, 0], 42);
  f.set(inner, 50);
  return f;
}

/** node1's tunnel frame of a ping to vm2, as built by the datapath (for mutating). */
function sampleTunnelFrame(encap: 'MPLSoGRE' | 'MPLSoUDP' | 'VXLAN'): { c: TestCluster; frame: Uint8Array } {
  const c = new TestCluster(clusterTopology([encap]));
  c.settle();
  c.wire.length = 0;
  const echo = icmpEcho({ ...VM1, dstMac: encap === 'VXLAN' ? '02:00:0a:01:01:04' : VR_VIF_MAC }, false, 1, 1);
  dpRx(c.node('node1').r, VM_VIF, echo, 0, echo.length);
  c.settle();
  return { c, frame: c.wire.find((x) => x.from === 'node1' && rd16(x.data, 12) === 0x0800)?.data.slice() as Uint8Array };
}

test('MPLSoUDP to the 2.2x port (51234) is received as well as to 6635', (t) => {
  const { c, frame } = sampleTunnelFrame('MPLSoUDP');
  const n2 = c.node('node2');
  c.take(n2, VM_VIF); // the sample's own ping
  const old = frame.slice();
  old[36] = 51234 >> 8;
  old[37] = 51234 & 255;
  dpRx(n2.r, VIF_FABRIC, old, 0, old.length);
  c.settle();
  t.is(c.take(n2, VM_VIF).length, 1, 'delivered to vm2');
});

test('bad tunnel frames are counted under their R2.22 labels and go nowhere', (t) => {
  const { c, frame } = sampleTunnelFrame('MPLSoGRE');
  const n2 = c.node('node2');
  c.take(n2, VM_VIF); // the sample's own ping
  const drops = n2.r.drops;
  const send = (f: Uint8Array): void => {
    dpRx(n2.r, VIF_FABRIC, f, 0, f.length);
    c.settle();
  };
  const fixIp = (f: Uint8Array): Uint8Array => {
    f[24] = 0;
    f[25] = 0;
    const s = inetChecksum(f, 14, 20);
    f[24] = s >> 8;
    f[25] = s & 255;
    return f;
  };
  const before = Array.from(drops);
  const label = frame.slice();
  label[38] = 0x00;
  label[39] = 0x10; // label 1: never programmed
  send(label);
  t.is(drops[VP_DROP_INVALID_LABEL] - before[VP_DROP_INVALID_LABEL], 1, 'Invalid Label');
  const big = frame.slice();
  big[38] = 0xff; // label 0xff..: beyond vr_mpls_labels
  send(big);
  t.is(drops[VP_DROP_INVALID_LABEL] - before[VP_DROP_INVALID_LABEL], 2);
  const gp = frame.slice();
  gp[36] = 0x08;
  gp[37] = 0x00; // GRE carrying IPv4: not MPLS
  send(gp);
  t.is(drops[VP_DROP_INVALID_PROTOCOL] - before[VP_DROP_INVALID_PROTOCOL], 1, 'Invalid Protocol');
  send(frame.slice(0, 36));
  t.is(drops[VP_DROP_PULL] - before[VP_DROP_PULL], 1, 'Pull Fails: the outer length beyond the frame');
  const ttl = frame.slice();
  ttl[41] = 1;
  send(ttl);
  t.is(drops[VP_DROP_TTL_EXCEEDED] - before[VP_DROP_TTL_EXCEEDED], 1, 'TTL Exceeded: label TTL 1');
  const frag = frame.slice();
  frag[20] = 0x20; // MF
  send(fixIp(frag));
  t.is(drops[VP_DROP_FRAGMENTS] - before[VP_DROP_FRAGMENTS], 1, 'Fragment errors');
  const ver = frame.slice();
  ver[34] = 0x00;
  ver[35] = 0x01; // GRE version 1
  send(ver);
  t.is(drops[VP_DROP_INVALID_PACKET] - before[VP_DROP_INVALID_PACKET], 1, 'Invalid Packets');
  t.is(c.take(n2, VM_VIF).length, 0, 'nothing reached the VM');

  const vx = sampleTunnelFrame('VXLAN');
  const m = vx.c.node('node2');
  const b2 = Array.from(m.r.drops);
  const vni = vx.frame.slice();
  vni[48] = 0x77; // VNI 0x000177
  dpRx(m.r, VIF_FABRIC, vni, 0, vni.length);
  const noI = vx.frame.slice();
  noI[42] = 0;
  dpRx(m.r, VIF_FABRIC, noI, 0, noI.length);
  t.is(m.r.drops[VP_DROP_INVALID_VNID] - b2[VP_DROP_INVALID_VNID], 2, 'Invalid VNID: unknown VNI, no I flag');
});

test('not a tunnel: the host\'s traffic on the fabric goes to vhost0, and vhost0\'s to the fabric', (t) => {
  const c = new TestCluster(clusterTopology(['MPLSoGRE']));
  const n1 = c.node('node1');
  const st = n1.r.vifs.stats;
  const vh0 = st[VIF_VHOST * VIFS_LEN + VIFS_TX_PACKETS];
  const ssh = udpFrame({ src: '192.168.50.12', dst: '192.168.50.11', dstMac: macString(n1.mac) }, { sport: 5000, dport: 22 });
  dpRx(n1.r, VIF_FABRIC, ssh, 0, ssh.length);
  t.is(st[VIF_VHOST * VIFS_LEN + VIFS_TX_PACKETS] - vh0, 1);
  const ph0 = st[VIF_FABRIC * VIFS_LEN + VIFS_TX_PACKETS];
  dpRx(n1.r, VIF_VHOST, ssh, 0, ssh.length);
  t.is(st[VIF_FABRIC * VIFS_LEN + VIFS_TX_PACKETS] - ph0, 1);
});

test('MTU: DF set → ICMP fragmentation needed from the gateway with the room left; DF clear → inner fragments; SYN MSS clamped', (t) => {
  const c = new TestCluster(clusterTopology(['MPLSoGRE']));
  c.settle();
  const n1 = c.node('node1');
  const n2 = c.node('node2');
  // Establish the flow first so that the big packets are forwarded at once.
  const small = udpFrame(VM1, { sport: 4000, dport: 5000, payload: 10 });
  dpRx(n1.r, VM_VIF, small, 0, small.length);
  c.settle();
  c.take(n2, VM_VIF);
  const big = udpFrame(VM1, { sport: 4000, dport: 5000, payload: 1472 }); // a 1500-byte IPv4 packet
  big[20] = 0x40; // DF
  big[24] = 0;
  big[25] = 0;
  const s = inetChecksum(big, 14, 20);
  big[24] = s >> 8;
  big[25] = s & 255;
  dpRx(n1.r, VM_VIF, big, 0, big.length);
  c.settle();
  const icmp = c.take(n1, VM_VIF);
  t.is(icmp.length, 1);
  t.is(icmp[0][23], 1);
  t.deepEqual([icmp[0][34], icmp[0][35]], [3, 4], 'destination unreachable, fragmentation needed');
  t.is(rd16(icmp[0], 40), 1500 - 28, 'next-hop MTU: 1500 − GRE overhead');
  t.is(rd32(icmp[0], 26), 0x0a010101, 'from the gateway');
  t.is(inetChecksum(icmp[0], 34, icmp[0].length - 34), 0);
  t.is(n1.r.pmtuSent, 1);
  const nodf = udpFrame(VM1, { sport: 4000, dport: 5000, payload: 1472 });
  dpRx(n1.r, VM_VIF, nodf, 0, nodf.length);
  c.settle();
  const frags = c.take(n2, VM_VIF);
  t.is(frags.length, 2, 'two inner fragments');
  t.is(rd16(frags[0], 16) + rd16(frags[1], 16) - 20, 1500, 'together the whole packet');
  t.true(frags.every((f) => ipOk(f, 14)));
  const syn = tcpFrame(VM1, { sport: 33000, dport: 80, flags: 'S' });
  // tcpFrame has no options: give it an MSS 1460 option by hand.
  const withMss = new Uint8Array(syn.length + 4);
  withMss.set(syn);
  withMss.set([2, 4, 0x05, 0xb4], syn.length);
  withMss[16] = (rd16(syn, 16) + 4) >> 8;
  withMss[17] = (rd16(syn, 16) + 4) & 255;
  withMss[46] = 0x60; // data offset 6
  withMss[24] = 0;
  withMss[25] = 0;
  const cs = inetChecksum(withMss, 14, 20);
  withMss[24] = cs >> 8;
  withMss[25] = cs & 255;
  withMss[50] = 0;
  withMss[51] = 0;
  const tl = withMss.length - 34;
  const pseudo = ((withMss[26] << 8) | withMss[27]) + ((withMss[28] << 8) | withMss[29]) + ((withMss[30] << 8) | withMss[31]) + ((withMss[32] << 8) | withMss[33]) + 6 + tl;
  const tc = inetChecksum(withMss, 34, tl, pseudo);
  withMss[50] = tc >> 8;
  withMss[51] = tc & 255;
  dpRx(n1.r, VM_VIF, withMss, 0, withMss.length);
  c.settle();
  const gotSyn = c.take(n2, VM_VIF);
  t.is(gotSyn.length, 1);
  t.is(rd16(gotSyn[0], 56), 1420, 'MSS 1460 → 1420 (physical MTU − 80)');
  const p2 = ((gotSyn[0][26] << 8) | gotSyn[0][27]) + ((gotSyn[0][28] << 8) | gotSyn[0][29]) + ((gotSyn[0][30] << 8) | gotSyn[0][31]) + ((gotSyn[0][32] << 8) | gotSyn[0][33]) + 6 + tl;
  t.is(inetChecksum(gotSyn[0], 34, tl, p2), 0, 'TCP checksum updated');
});

test('fuzz: 100 000 random and mutated fabric frames are each dropped (once, under a label), sent to vhost0, delivered or held — never a crash', (t) => {
  const samples = (['MPLSoGRE', 'MPLSoUDP', 'VXLAN'] as const).map((e) => sampleTunnelFrame(e));
  const c = samples[0].c;
  const n2 = c.node('node2');
  const frames = samples.map((s) => s.frame);
  const st = n2.r.vifs.stats;
  const txAll = (): number => {
    let s = 0;
    for (let v = 0; v < 8; v++) s += st[v * VIFS_LEN + VIFS_TX_PACKETS];
    return s;
  };
  const dropSum = (): number => n2.r.drops.reduce((a, b) => a + b, 0);
  let n = 0;
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.tuple(fc.integer({ min: 0, max: 2 }), fc.array(fc.tuple(fc.nat(120), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(200)).map(([k, muts, cut]) => {
          const f = frames[k].slice(0, Math.max(14, frames[k].length - cut));
          for (const [at, v] of muts) if (at < f.length) f[at] = v;
          return f;
        }),
      ),
      (f) => {
        n++;
        const d0 = dropSum();
        const r0 = n2.r.results[RES_DROPPED];
        const tx0 = txAll();
        const h0 = n2.r.results[RES_HELD];
        dpRx(n2.r, VIF_FABRIC, f, 0, f.length);
        const dropped = dropSum() - d0;
        t.is(dropped, n2.r.results[RES_DROPPED] - r0, 'every drop has its reason counted');
        t.true(dropped <= 1, 'dropped at most once');
        t.true(dropped + (txAll() - tx0) + (n2.r.results[RES_HELD] - h0) >= 1, 'accounted for');
        if ((n & 1023) === 0) c.settle(1);
      },
    ),
    { numRuns: 100_000 },
  );
  t.is(n, 100_000);
});

test('flow records of a flow across the fabric: the peer vrouter, the underlay type and the outer source port; one record (not local)', (t) => {
  const c = new TestCluster(clusterTopology(['MPLSoUDP']));
  c.settle();
  const n1 = c.node('node1');
  const recs: FlowRecord[] = [];
  n1.agent.sampler = new FlowExport(n1.agent, n1.r.ft, n1.cn.exportEnv('192.168.50.11'), { rate: -1, disable: false }, () => n1.host.now, xorshift32(3), (r) => recs.push(r));
  const u = udpFrame(VM1, { sport: 4000, dport: 5000, payload: 10 });
  dpRx(n1.r, VM_VIF, u, 0, u.length);
  c.settle();
  for (const n of c.nodes) n.host.now += 1000;
  c.settle();
  const fwd = recs.filter((r) => r.sourceip === 0x0a010103);
  t.is(fwd.length, 1, 'one record: the other end is another vrouter\'s');
  const fe = activeFlows(c, 'node1').find((i) => feKeyWord(n1.r.ft, i, 1) >>> 0 === 0x0301010a) as number;
  t.like(fwd[0], {
    direction_ing: 1, sourcevn: 'default-domain:admin:demo', destvn: 'default-domain:admin:demo', vrouter_ip: '192.168.50.11',
    other_vrouter_ip: '192.168.50.12', underlay_proto: 2, underlay_source_port: n1.r.ft.u16[fe * (FE_SIZE >> 1) + (FE_UDP_SPORT >> 1)],
  });
  t.true(fwd[0].underlay_source_port >= 49152);
});

test('nh --list, mpls --dump, vxlan --dump, rt --dump: the tables node1 programmed, in the R2.2x tools\' layout', (t) => {
  const c = new TestCluster(clusterTopology(['MPLSoUDP', 'VXLAN']));
  c.settle();
  const n1 = c.node('node1');
  // What the datapath learned by ARP, reported to the mirror as the worker does.
  for (const nh of n1.r.rt.tunnels) if (nh.dmac.some((x) => x !== 0)) n1.mirror.resolved(nh.id, nh.dmac);
  const text = (f: (out: (s: string) => void) => void): string => {
    let s = '';
    f((x) => (s += x));
    return s;
  };
  const nh = text((o) => nhList(n1.mirror, (idx) => n1.cn.vif(idx)?.mac, o));
  t.regex(nh, /^Id:000  Type:Drop      Fmly: AF_INET  Flags:Valid, {3}Rid:0  Ref_cnt:\d+\n\n/);
  t.regex(nh, /Id:010  Type:Encap     Fmly: AF_INET  Flags:Valid, Policy, {3}Rid:0  Ref_cnt:\d+\n\tEncapFmly:0806 Oif:3 Len:14 Data:02 00 0a 01 01 03 00 00 5e 00 01 00 08 00 \n/);
  t.regex(nh, /Id:5002  Type:Tunnel    Fmly: AF_INET  Flags:Valid, MPLSoUDP, {3}Rid:0  Ref_cnt:\d+\n\tOif:0 Len:14 Flags Valid, MPLSoUDP, {2}Data:02 fa 00 00 00 02 02 fa 00 00 00 01 08 00 \n\tVrf:0 {2}Sip:192\.168\.50\.11 {2}Dip:192\.168\.50\.12\n/);
  t.regex(nh, /Id:9001  Type:Vrf_Translate  Fmly:AF_BRIDGE  Flags:Valid, {3}Rid:0  Ref_cnt:2\n\tVrf:1\n/);
  t.regex(nh, /Type:Tunnel    Fmly: AF_INET  Flags:Valid, Vxlan, .*\n.*\n\tVrf:0  Sip:192\.168\.50\.11  Dip:192\.168\.50\.20/, 'the VXLAN tunnel to the bare-metal VTEP');
  t.is(text((o) => mplsDump(n1.mirror, o)), 'MPLS Input Label Map\n\n   Label    NextHop\n-------------------\n      16        10\n');
  t.is(text((o) => vxlanDump(n1.mirror, o)), 'VXLAN Table\n\n VNID    NextHop\n----------------\n      1    9001\n');
  const rt = text((o) => rtDump(n1.mirror, 1, false, o));
  t.regex(rt, /^Vrouter inet4 routing table 0\/1\/unicast\nFlags: L=Label Valid, P=Proxy ARP, T=Trap ARP, F=Flood ARP\n\nDestination {11}PPL {8}Flags {8}Label {9}Nexthop {4}Stitched MAC\(Index\)\n/);
  t.regex(rt, /10\.1\.1\.4\/32 {11}32 {9}LP {11}16 {12}5002 {7}-\n/, 'vm2 on node2: label 16 over MPLSoUDP');
  t.regex(rt, /10\.1\.1\.20\/32 {10}32 {9}LP {11}1 {13}5007 {7}2:0:a:1:1:14\n/, 'the bare-metal host: VNI 1, stitched');
  t.regex(text((o) => rtDump(n1.mirror, 1, true, o)), /2:0:a:1:1:14 {10}L {10}1 {13}5007\n/);
});

test('networks a policy connects, across nodes: the leaked route is routed over MPLS even when VXLAN comes first; the policy decides on both nodes', (t) => {
  const topo = clusterTopology(['VXLAN', 'MPLSoUDP'], {
    networks: [
      { name: 'blue', subnet: '10.2.0.0/24', gateway: '10.2.0.1', network_policy_refs: [{ to: ['default-domain', 'admin', 'web'] }] },
      { name: 'red', subnet: '10.3.0.0/24', gateway: '10.3.0.1', network_policy_refs: [{ to: ['default-domain', 'admin', 'web'] }] },
    ],
    vms: [
      { name: 'b1', ip: '10.2.0.10', network: 'blue', node: 'node1' },
      { name: 'r1', ip: '10.3.0.10', network: 'red', node: 'node2' },
    ],
    bare_metal: [],
    network_policies: [policy],
  });
  const c = new TestCluster(topo);
  c.settle();
  const n1 = c.node('node1');
  const n2 = c.node('node2');
  const B1 = { src: '10.2.0.10', dst: '10.3.0.10', srcMac: '02:00:0a:02:00:0a', dstMac: VR_VIF_MAC };
  c.wire.length = 0;
  const syn = tcpFrame(B1, { sport: 40000, dport: 80, flags: 'S' });
  dpRx(n1.r, VM_VIF, syn, 0, syn.length);
  c.settle();
  const got = c.take(n2, VM_VIF);
  t.is(got.length, 1, 'blue → red port 80 passes (the rule), across the fabric');
  t.is(got[0][22], 63, 'routed');
  const w = c.wire.find((x) => x.from === 'node1' && rd16(x.data, 12) === 0x0800)?.data as Uint8Array;
  t.is(rd16(w, 36), MPLSOUDP_PORT, 'MPLSoUDP: routed traffic needs a label');
  t.is(rd32(w, 42) >>> 12, 16, 'r1\'s label');
  // ICMP between the networks is denied by the policy: dropped on node1 (its flow says so).
  const echo = icmpEcho(B1, false, 5, 1);
  dpRx(n1.r, VM_VIF, echo, 0, echo.length);
  c.settle();
  t.is(c.take(n2, VM_VIF).length, 0, 'ICMP blue → red is denied');
  // Node2's flow for the SYN (from the fabric) names blue as its source network, red as its destination.
  const fi = activeFlows(c, 'node2').find((i) => feKeyWord(n2.r.ft, i, 1) >>> 0 === 0x0a00020a && feProto(n2.r.ft, i) === 6) as number;
  t.is(feAction(n2.r.ft, fi), VR_FLOW_ACTION_FORWARD, 'node2 lets blue\'s port-80 traffic in');
  const info = n2.agent.flows.read(fi, flowInfoNew());
  t.deepEqual([n2.cn.vnNames[info.srcVn], n2.cn.vnNames[info.dstVn]], ['default-domain:admin:blue', 'default-domain:admin:red']);
});
